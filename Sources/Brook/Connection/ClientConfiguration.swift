import Foundation

/// A broker address, `host:port`.
public struct BrokerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (IPv6 in brackets). Port defaults to 9092.
    public init(parsing s: String) throws {
        var text = s.trimmingCharacters(in: .whitespaces)
        if let scheme = text.range(of: "://") { text = String(text[scheme.upperBound...]) }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            port = rest.hasPrefix(":") ? Int(rest.dropFirst()) ?? -1 : 9092
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            port = Int(text[text.index(after: colon)...]) ?? -1
        } else {
            host = text
            port = 9092
        }
        guard !host.isEmpty, (1...65535).contains(port) else {
            throw KafkaClientError.invalidConfiguration("invalid broker address '\(s)': expected HOST:PORT")
        }
    }

    /// Parses a comma-separated bootstrap list.
    public static func list(_ s: String) throws -> [BrokerAddress] {
        try s.split(separator: ",").map { try BrokerAddress(parsing: String($0)) }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `security.protocol`.
public enum SecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT"
    case ssl = "SSL"
    case saslPlaintext = "SASL_PLAINTEXT"
    case saslSSL = "SASL_SSL"

    public var usesTLS: Bool { self == .ssl || self == .saslSSL }
    public var usesSASL: Bool { self == .saslPlaintext || self == .saslSSL }
}

/// `sasl.mechanism`.
public enum SASLMechanism: String, Sendable, CaseIterable {
    case plain = "PLAIN"
    case scramSHA256 = "SCRAM-SHA-256"
    case scramSHA512 = "SCRAM-SHA-512"
}

/// How to reach and authenticate to the cluster. Confluent Cloud: `.saslSSL` with `.plain`.
public struct SecurityConfiguration: Sendable {
    /// `security.protocol`. Default `.plaintext`.
    public var securityProtocol: SecurityProtocol = .plaintext
    /// `sasl.mechanism`. Default `.plain` (used only with a SASL security protocol).
    public var saslMechanism: SASLMechanism = .plain
    /// `sasl.username`. Default nil.
    public var saslUsername: String?
    /// `sasl.password`. Default nil.
    public var saslPassword: String?
    /// PEM file of trusted CAs (`ssl.ca.location`). Default nil: the system trust store.
    public var caFile: String?
    /// Verify the broker's certificate and host name (`enable.ssl.certificate.verification`).
    /// Default true.
    public var verifyCertificates: Bool = true
    public init() {}
}

/// Settings shared by producers, consumers and admin clients. Defaults follow Kafka's.
public struct ClientConfiguration: Sendable {
    /// `bootstrap.servers`: any subset of the cluster; the rest is discovered. No default: given
    /// to `init`.
    public var bootstrapServers: [BrokerAddress]
    /// `client.id`, sent in every request header and shown in broker logs and group listings.
    /// Default `brook`.
    public var clientId: String = "brook"
    /// TLS and SASL. Default: plaintext, no authentication.
    public var security = SecurityConfiguration()
    /// `request.timeout.ms`. Default 30 s.
    public var requestTimeout: Duration = .seconds(30)
    /// `socket.connection.setup.timeout.ms`. Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// `reconnect.backoff.ms`: first wait before reconnecting; grows exponentially, with jitter,
    /// up to ``reconnectBackoffMax``. Default 50 ms.
    public var reconnectBackoff: Duration = .milliseconds(50)
    /// `reconnect.backoff.max.ms`. Default 1 s.
    public var reconnectBackoffMax: Duration = .seconds(1)
    /// `retry.backoff.ms`. Default 100 ms.
    public var retryBackoff: Duration = .milliseconds(100)
    /// `metadata.max.age.ms`. Default 300 s.
    public var metadataMaxAge: Duration = .seconds(300)
    /// Largest response frame accepted. Default 256 MiB. Not a Kafka setting.
    public var maxResponseSize: Int = 256 * 1024 * 1024

    public init(bootstrapServers: [BrokerAddress]) {
        self.bootstrapServers = bootstrapServers
    }
}
