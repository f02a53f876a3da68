import BrookProtocol

/// Errors the client reports. Broker errors carry Kafka's error code and the resource they are about.
public enum KafkaClientError: Error, Sendable, CustomStringConvertible {
    /// The broker answered with an error code.
    case broker(ErrorCode, resource: String?, message: String?)
    /// No broker could be reached.
    case unreachable(String)
    case connectionClosed(String)
    case timedOut(String)
    case invalidConfiguration(String)
    case authenticationFailed(String)
    /// Neither side supports a common version of an API.
    case unsupportedVersion(String)
    case protocolViolation(String)
    case shutdown

    public var description: String {
        switch self {
        case .broker(let code, let resource, let message):
            var s = "\(code.name) (\(code.rawValue))"
            if let resource { s += " for \(resource)" }
            if let message, !message.isEmpty { s += ": \(message)" }
            return s
        case .unreachable(let s): return "cannot reach the cluster: \(s)"
        case .connectionClosed(let s): return "connection closed: \(s)"
        case .timedOut(let s): return "timed out: \(s)"
        case .invalidConfiguration(let s): return "invalid configuration: \(s)"
        case .authenticationFailed(let s): return "authentication failed: \(s)"
        case .unsupportedVersion(let s): return "unsupported version: \(s)"
        case .protocolViolation(let s): return "protocol violation: \(s)"
        case .shutdown: return "client is shut down"
        }
    }

    /// Kafka's error code, when the broker sent one.
    public var code: ErrorCode? {
        if case .broker(let c, _, _) = self { return c }
        return nil
    }

    /// Whether retrying (after a metadata refresh or backoff) can succeed.
    public var isRetriable: Bool {
        switch self {
        case .broker(let c, _, _): return c.isRetriable
        case .unreachable, .connectionClosed, .timedOut: return true
        default: return false
        }
    }

    static func check(_ raw: Int16, resource: String? = nil, message: String? = nil) throws(KafkaClientError) {
        guard raw != 0 else { return }
        throw .broker(ErrorCode(rawValue: raw) ?? .unknownServerError, resource: resource, message: message)
    }
}
