import BrookProtocol

/// Errors the client reports. Broker errors carry Kafka's error code and the resource they are about.
///
/// A struct with a ``Code`` rather than an enum (postgres-nio's `PSQLError` shape), so a new kind
/// of error can be added without breaking a user's exhaustive `switch`. Match on the kind:
///
/// ```swift
/// do { try await admin.createTopics(…) }
/// catch let e as KafkaClientError where e.code == .broker && e.errorCode == .topicAlreadyExists { … }
/// ```
public struct KafkaClientError: Error, Sendable, CustomStringConvertible {
    /// The kind of a ``KafkaClientError``. New kinds may be added; `switch` over it with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case broker, unreachable, connectionClosed, timedOut, invalidConfiguration
            case authenticationFailed, unsupportedVersion, protocolViolation, shutdown
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The broker answered with an error code (see ``KafkaClientError/errorCode``).
        public static let broker = Code(.broker)
        /// No broker could be reached.
        public static let unreachable = Code(.unreachable)
        /// The connection closed before the answer came.
        public static let connectionClosed = Code(.connectionClosed)
        /// The request or operation ran out of time.
        public static let timedOut = Code(.timedOut)
        /// The configuration is not usable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// SASL authentication failed.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// Neither side supports a common version of an API.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The broker sent something the protocol does not allow.
        public static let protocolViolation = Code(.protocolViolation)
        /// The client is shut down.
        public static let shutdown = Code(.shutdown)

        public var description: String {
            switch base {
            case .broker: return "broker"
            case .unreachable: return "unreachable"
            case .connectionClosed: return "connectionClosed"
            case .timedOut: return "timedOut"
            case .invalidConfiguration: return "invalidConfiguration"
            case .authenticationFailed: return "authenticationFailed"
            case .unsupportedVersion: return "unsupportedVersion"
            case .protocolViolation: return "protocolViolation"
            case .shutdown: return "shutdown"
            }
        }
    }

    /// The kind of error.
    public var code: Code
    /// Kafka's error code, when the broker sent one (only for ``Code/broker``).
    public var errorCode: ErrorCode?
    /// The topic, group or other resource a broker error is about, when known.
    public var resource: String?
    /// The broker's error message, or what went wrong for the other kinds.
    public var message: String?

    /// Makes an error of any kind; the static functions below name the usual ones.
    public init(code: Code, errorCode: ErrorCode? = nil, resource: String? = nil, message: String? = nil) {
        self.code = code
        self.errorCode = errorCode
        self.resource = resource
        self.message = message
    }

    /// The broker answered with an error code.
    public static func broker(_ errorCode: ErrorCode, resource: String?, message: String?) -> KafkaClientError {
        KafkaClientError(code: .broker, errorCode: errorCode, resource: resource, message: message)
    }
    /// No broker could be reached.
    public static func unreachable(_ message: String) -> KafkaClientError { KafkaClientError(code: .unreachable, message: message) }
    /// The connection closed before the answer came.
    public static func connectionClosed(_ message: String) -> KafkaClientError { KafkaClientError(code: .connectionClosed, message: message) }
    /// The request or operation ran out of time.
    public static func timedOut(_ message: String) -> KafkaClientError { KafkaClientError(code: .timedOut, message: message) }
    /// The configuration is not usable.
    public static func invalidConfiguration(_ message: String) -> KafkaClientError { KafkaClientError(code: .invalidConfiguration, message: message) }
    /// SASL authentication failed.
    public static func authenticationFailed(_ message: String) -> KafkaClientError { KafkaClientError(code: .authenticationFailed, message: message) }
    /// Neither side supports a common version of an API.
    public static func unsupportedVersion(_ message: String) -> KafkaClientError { KafkaClientError(code: .unsupportedVersion, message: message) }
    /// The broker sent something the protocol does not allow.
    public static func protocolViolation(_ message: String) -> KafkaClientError { KafkaClientError(code: .protocolViolation, message: message) }
    /// The client is shut down.
    public static var shutdown: KafkaClientError { KafkaClientError(code: .shutdown) }

    public var description: String {
        let s = message ?? ""
        switch code {
        case .broker:
            let ec = errorCode ?? .unknownServerError
            var d = "\(ec.name) (\(ec.rawValue))"
            if let resource { d += " for \(resource)" }
            if let message, !message.isEmpty { d += ": \(message)" }
            return d
        case .unreachable: return "cannot reach the cluster: \(s)"
        case .connectionClosed: return "connection closed: \(s)"
        case .timedOut: return "timed out: \(s)"
        case .invalidConfiguration: return "invalid configuration: \(s)"
        case .authenticationFailed: return "authentication failed: \(s)"
        case .unsupportedVersion: return "unsupported version: \(s)"
        case .protocolViolation: return "protocol violation: \(s)"
        case .shutdown: return "client is shut down"
        default: return "\(code): \(s)"
        }
    }

    /// Whether retrying (after a metadata refresh or backoff) can succeed.
    public var isRetriable: Bool {
        switch code {
        case .broker: return errorCode?.isRetriable ?? false
        case .unreachable, .connectionClosed, .timedOut: return true
        default: return false
        }
    }

    static func check(_ raw: Int16, resource: String? = nil, message: String? = nil) throws(KafkaClientError) {
        guard raw != 0 else { return }
        throw .broker(ErrorCode(rawValue: raw) ?? .unknownServerError, resource: resource, message: message)
    }
}
