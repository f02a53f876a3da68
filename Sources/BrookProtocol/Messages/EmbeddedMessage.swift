import NIOCore

/// A format carried inside other data rather than sent as a request: the consumer protocol
/// (JoinGroup metadata, SyncGroup assignments) and the `__consumer_offsets` keys and values.
///
/// Conformances are generated from `protocol/definitions/embedded` by `scripts/gen_protocol.py`.
/// Unlike an API body, the data starts with its own int16 version, and a value remembers it:
/// decoding sets ``version``, encoding writes ``version`` (a new value's default is the version
/// Brook writes).
public protocol KafkaEmbeddedMessage: KafkaMessageStruct {
    /// The versions whose layout is known.
    static var versions: ClosedRange<Int16> { get }
    /// First flexible version (compact encodings and tagged fields), or nil if none.
    static var flexibleFrom: Int16? { get }
    /// Whether a newer version is read with the latest known layout (its extra fields ignored),
    /// as Kafka's clients read the consumer protocol; otherwise a newer version is an error.
    static var readsNewerVersions: Bool { get }
    /// Whether empty data reads as the default value at the lowest version (some clients send
    /// an empty assignment to a member that got nothing).
    static var emptyIsDefault: Bool { get }
    /// The version at the start of the data.
    var version: Int16 { get set }
}

extension KafkaEmbeddedMessage {
    public static func isFlexible(_ version: Int16) -> Bool {
        guard let f = flexibleFrom else { return false }
        return version >= f
    }

    /// Writes the version prefix and the body at ``version``.
    public func encode(into buf: inout ByteBuffer) {
        encode(into: &buf, version: version)
    }

    /// Writes `version` as the prefix and the body in that version's layout (whatever
    /// ``version`` says: a record type is rewritten at the version Brook writes).
    public func encode(into buf: inout ByteBuffer, version: Int16) {
        buf.writeInteger(version)
        // A newer version than known is written in the latest known layout, as it is read.
        let layout = min(version, Self.versions.upperBound)
        encode(into: &buf, version: layout, flexible: Self.isFlexible(layout))
    }

    /// The encoding (version prefix and body) in a new buffer.
    public func encode() -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 64)
        encode(into: &buf)
        return buf
    }

    /// Decodes the whole of `bytes` (trailing bytes of a newer version are ignored).
    public init(decoding bytes: ByteBuffer) throws {
        var buf = bytes
        try self.init(from: &buf)
    }

    /// Decodes the version prefix and the body; throws `ProtocolError` on malformed input or a
    /// version outside ``versions`` (above it only when ``readsNewerVersions`` is false).
    public init(from buf: inout ByteBuffer) throws {
        self.init()
        if Self.emptyIsDefault && buf.readableBytes == 0 {
            version = Self.versions.lowerBound
            return
        }
        let v = try buf.readKafkaInt(Int16.self, "version")
        guard v >= Self.versions.lowerBound, v <= Self.versions.upperBound || Self.readsNewerVersions else {
            throw ProtocolError.invalidLength(field: "\(Self.self) version", length: Int(v))
        }
        version = v
        let layout = min(v, Self.versions.upperBound)
        try decode(from: &buf, version: layout, flexible: Self.isFlexible(layout))
    }
}
