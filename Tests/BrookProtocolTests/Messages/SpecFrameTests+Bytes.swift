import BrookProtocol
import NIOCore
import Testing

/// Byte builders for frames written out by hand from the protocol specification
/// (kafka.apache.org/protocol), so that the expected bytes never come from Brook's encoder.
///
/// Names follow the specification's types: `str` STRING / NULLABLE_STRING, `cstr` COMPACT_STRING /
/// COMPACT_NULLABLE_STRING, `bytes`/`cbytes` likewise, `arr`/`carr` the element count of an
/// ARRAY / COMPACT_ARRAY (nil = null), `tags` a TAG_BUFFER.
extension SpecFrameTests {
    func buf(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    func i8(_ v: Int8) -> [UInt8] { [UInt8(bitPattern: v)] }
    func i16(_ v: Int16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
    func i32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
    func i64(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
    func bool(_ v: Bool) -> [UInt8] { [v ? 1 : 0] }
    func uuid(_ u: KafkaUUID) -> [UInt8] {
        withUnsafeBytes(of: u.high.bigEndian, Array.init) + withUnsafeBytes(of: u.low.bigEndian, Array.init)
    }

    /// UNSIGNED_VARINT: seven bits a byte, least significant group first.
    func uvarint(_ v: Int) -> [UInt8] {
        var v = UInt32(v)
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        return out + [UInt8(v)]
    }

    /// STRING / NULLABLE_STRING: int16 length (-1 = null), then UTF-8.
    func str(_ s: String?) -> [UInt8] {
        guard let s else { return i16(-1) }
        return i16(Int16(s.utf8.count)) + Array(s.utf8)
    }
    /// COMPACT_STRING / COMPACT_NULLABLE_STRING: uvarint length+1 (0 = null), then UTF-8.
    func cstr(_ s: String?) -> [UInt8] {
        guard let s else { return [0] }
        return uvarint(s.utf8.count + 1) + Array(s.utf8)
    }
    /// BYTES / NULLABLE_BYTES: int32 length (-1 = null).
    func bytes(_ b: [UInt8]?) -> [UInt8] {
        guard let b else { return i32(-1) }
        return i32(Int32(b.count)) + b
    }
    /// COMPACT_BYTES / COMPACT_NULLABLE_BYTES: uvarint length+1 (0 = null).
    func cbytes(_ b: [UInt8]?) -> [UInt8] {
        guard let b else { return [0] }
        return uvarint(b.count + 1) + b
    }
    /// ARRAY count: int32 (-1 = null).
    func arr(_ n: Int?) -> [UInt8] { i32(Int32(n ?? -1)) }
    /// COMPACT_ARRAY count: uvarint N+1 (0 = null).
    func carr(_ n: Int?) -> [UInt8] { uvarint((n ?? -1) + 1) }

    /// An empty TAG_BUFFER.
    var noTags: [UInt8] { [0] }
    /// A TAG_BUFFER holding `fields` (tag, value bytes), in the given (ascending) order.
    func tags(_ fields: (Int, [UInt8])...) -> [UInt8] {
        uvarint(fields.count) + fields.flatMap { uvarint($0.0) + uvarint($0.1.count) + $0.1 }
    }

    /// Decodes a hand-built body, checks nothing is left over, re-encodes the decoded value and
    /// checks the bytes are identical: one frame checks both directions.
    func decodeExactly<M: KafkaMessage>(
        _: M.Type, version: Int16, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> M {
        var b = ByteBuffer(bytes: bytes)
        let m = try M(from: &b, version: version)
        #expect(b.readableBytes == 0, "\(M.self) v\(version) left \(b.readableBytes) bytes", sourceLocation: sourceLocation)
        var out = ByteBuffer()
        m.encode(into: &out, version: version)
        #expect(Array(out.readableBytesView) == bytes, "\(M.self) v\(version) re-encoded differently", sourceLocation: sourceLocation)
        return m
    }
}

/// `value` with `set` applied: spells out an expected message as a literal.
func with<T>(_ value: T, _ set: (inout T) -> Void) -> T {
    var v = value
    set(&v)
    return v
}

extension ByteBuffer {
    /// Shorthand for a buffer holding `bytes` (BYTES fields in expected values).
    static func of(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }
}
