import NIOCore

/// A Kafka request or response body (or a struct inside one), encodable at every supported version.
///
/// Conformances are generated from `protocol/definitions` by `scripts/gen_protocol.py`: one
/// description per API drives both directions for every version.
public protocol KafkaMessageStruct: Hashable, Sendable {
    init()
    func encode(into buf: inout ByteBuffer, version: Int16, flexible: Bool)
    mutating func decode(from buf: inout ByteBuffer, version: Int16, flexible: Bool) throws
    /// A random value carrying only what `version` can represent (tests, fuzz seeds).
    static func arbitrary(version: Int16, using rng: inout some RandomNumberGenerator) -> Self
}

public protocol KafkaMessage: KafkaMessageStruct {
    static var apiKey: APIKey { get }
}

public protocol KafkaRequestMessage: KafkaMessage {
    associatedtype Response: KafkaResponseMessage
}

public protocol KafkaResponseMessage: KafkaMessage {}

extension KafkaMessage {
    /// Encodes the body for `version`, choosing compact/tagged encodings for flexible versions.
    public func encode(into buf: inout ByteBuffer, version: Int16) {
        encode(into: &buf, version: version, flexible: Self.apiKey.isFlexible(version))
    }

    /// Decodes a body of `version`; throws `ProtocolError` on malformed input, never traps.
    public init(from buf: inout ByteBuffer, version: Int16) throws {
        guard Self.apiKey.versions.contains(version) else {
            throw ProtocolError.unsupportedVersion(apiKey: Self.apiKey.rawValue, version: version)
        }
        self.init()
        try decode(from: &buf, version: version, flexible: Self.apiKey.isFlexible(version))
    }
}

extension APIKey {
    public func isFlexible(_ version: Int16) -> Bool {
        guard let f = flexibleFrom else { return false }
        return version >= f
    }

    /// Request header version: v2 (tagged fields) for flexible versions, else v1.
    public func requestHeaderVersion(_ version: Int16) -> Int16 {
        isFlexible(version) ? 2 : 1
    }

    /// Response header version: v1 for flexible versions, except ApiVersions, whose response
    /// header stays v0 so that a client can always parse the version list.
    public func responseHeaderVersion(_ version: Int16) -> Int16 {
        if self == .apiVersions { return 0 }
        return isFlexible(version) ? 1 : 0
    }
}
