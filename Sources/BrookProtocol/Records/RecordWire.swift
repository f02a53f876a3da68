import NIOCore

// Raw-pointer readers and writers for the record format. Records are the innermost loop of both
// the producer and the broker (millions per second), so they are parsed and written straight on
// the bytes with one bounds check per field, instead of through ByteBuffer's per-byte accessors.

/// Size in bytes of `value` as a zig-zag varint.
@inlinable @inline(__always)
func varintSize(_ value: Int32) -> Int {
    unsignedVarintSize(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
}

/// Size in bytes of `value` as a zig-zag varlong.
@inlinable @inline(__always)
func varlongSize(_ value: Int64) -> Int {
    unsignedVarintSize(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
}

@inlinable @inline(__always)
func unsignedVarintSize(_ value: UInt64) -> Int {
    // 1 + floor(bits / 7), computed without a loop.
    let bits = 64 - (value | 1).leadingZeroBitCount
    return (bits + 6) / 7
}

/// A bounds-checked cursor over raw bytes.
@usableFromInline
struct RawReader {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let end: Int
    @usableFromInline var position: Int

    @inlinable static var emptyBase: UnsafeRawPointer { UnsafeRawPointer(bitPattern: 0x10)! }

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        // An empty buffer may have no address; any non-nil pointer works since nothing is read.
        self.base = bytes.baseAddress ?? RawReader.emptyBase
        self.end = bytes.count
        self.position = position
    }

    @inlinable
    init(base: UnsafeRawPointer, end: Int, position: Int) {
        self.base = base
        self.end = end
        self.position = position
    }

    @inlinable
    var remaining: Int { end &- position }

    @inlinable @inline(__always)
    mutating func readInt8(_ field: StaticString) throws -> Int8 {
        guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
        let v = base.load(fromByteOffset: position, as: Int8.self)
        position &+= 1
        return v
    }

    @inlinable @inline(__always)
    mutating func readUnsignedVarint(_ field: StaticString) throws -> UInt32 {
        // One-byte values (lengths under 64, small deltas) are the common case.
        guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
        let first = base.load(fromByteOffset: position, as: UInt8.self)
        position &+= 1
        if first < 0x80 { return UInt32(first) }
        return try readUnsignedVarintSlow(UInt32(first & 0x7f), field)
    }

    @inlinable
    mutating func readUnsignedVarintSlow(_ low: UInt32, _ field: StaticString) throws -> UInt32 {
        var result = low
        var shift: UInt32 = 7
        while true {
            guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position &+= 1
            if shift == 28 && byte > 0x0f { throw ProtocolError.varintTooLong }
            result |= UInt32(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift &+= 7
        }
    }

    @inlinable @inline(__always)
    mutating func readVarint(_ field: StaticString) throws -> Int32 {
        let u = try readUnsignedVarint(field)
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    @inlinable @inline(__always)
    mutating func readVarlong(_ field: StaticString) throws -> Int64 {
        guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
        let first = base.load(fromByteOffset: position, as: UInt8.self)
        position &+= 1
        var result = UInt64(first)
        if first >= 0x80 {
            result = try readUnsignedVarlongSlow(UInt64(first & 0x7f), field)
        }
        return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1)))
    }

    @inlinable
    mutating func readUnsignedVarlongSlow(_ low: UInt64, _ field: StaticString) throws -> UInt64 {
        var result = low
        var shift: UInt64 = 7
        while true {
            guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position &+= 1
            if shift == 63 && byte > 1 { throw ProtocolError.varintTooLong }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift &+= 7
        }
    }

    /// Reads a varint length (-1 = null) and skips that many bytes; returns the start and length.
    @inlinable @inline(__always)
    mutating func readNullableBytes(_ field: StaticString) throws -> (start: Int, length: Int) {
        let n = Int(try readVarint(field))
        let start = position
        if n < 0 {
            guard n == -1 else { throw ProtocolError.invalidLength(field: "\(field)", length: n) }
            return (start, -1)
        }
        guard n <= end &- position else { throw ProtocolError.truncated(field: "\(field)") }
        position &+= n
        return (start, n)
    }
}

/// A cursor writing into memory already reserved for the exact size.
@usableFromInline
struct RawWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline var position = 0

    @inlinable
    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inlinable @inline(__always)
    mutating func writeByte(_ b: UInt8) {
        base.storeBytes(of: b, toByteOffset: position, as: UInt8.self)
        position += 1
    }

    @inlinable @inline(__always)
    mutating func writeUnsignedVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            writeByte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeByte(UInt8(truncatingIfNeeded: v))
    }

    @inlinable @inline(__always)
    mutating func writeVarint(_ v: Int32) {
        writeUnsignedVarint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
    }

    @inlinable @inline(__always)
    mutating func writeVarlong(_ v: Int64) {
        writeUnsignedVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    @inlinable @inline(__always)
    mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        (base + position).copyMemory(from: src, byteCount: bytes.count)
        position += bytes.count
    }

    /// A varint length then the bytes, or -1 for nil.
    @inlinable @inline(__always)
    mutating func writeNullableBytes(_ bytes: ByteBuffer?) {
        guard let bytes else {
            writeVarint(-1)
            return
        }
        writeVarint(Int32(bytes.readableBytes))
        bytes.withUnsafeReadableBytes { writeBytes($0) }
    }
}

/// Where the fields of one encoded record lie, relative to where the record starts (for
/// ``Record/layout(of:)``; for the batch reader, relative to the start of the records area).
/// Lengths are -1 for a null key or value.
public struct RecordLayout: Sendable {
    public var attributes: Int8 = 0
    public var timestampDelta: Int64 = 0
    public var offsetDelta: Int32 = 0
    public var keyStart = 0
    public var keyLength = -1
    public var valueStart = 0
    public var valueLength = -1
    public var headersStart = 0
    public var headerCount = 0

    @inlinable init() {}

    /// Parses the record at the reader's position and checks that its fields fill exactly its
    /// declared length — the checks Kafka's `DefaultRecord.readFrom` makes.
    @inlinable
    static func parse(_ reader: inout RawReader) throws -> RecordLayout {
        try parse(&reader, end: nil)
    }

    /// As `parse(_:)`; also reports where the record ends.
    @inlinable
    static func parse(_ reader: inout RawReader, end recordEnd: UnsafeMutablePointer<Int>?) throws -> RecordLayout {
        let length = Int(try reader.readVarint("record length"))
        guard length >= 0 else { throw ProtocolError.invalidLength(field: "record length", length: length) }
        guard length <= reader.remaining else { throw ProtocolError.truncated(field: "record") }
        let end = reader.position + length
        var r = RawReader(base: reader.base, end: end, position: reader.position)
        var layout = RecordLayout()
        layout.attributes = try r.readInt8("record attributes")
        layout.timestampDelta = try r.readVarlong("timestampDelta")
        layout.offsetDelta = try r.readVarint("offsetDelta")
        (layout.keyStart, layout.keyLength) = try r.readNullableBytes("record key")
        (layout.valueStart, layout.valueLength) = try r.readNullableBytes("record value")
        let count = Int(try r.readVarint("header count"))
        guard count >= 0, count <= r.remaining / 2 else {
            throw ProtocolError.invalidLength(field: "header count", length: count)
        }
        layout.headersStart = r.position
        layout.headerCount = count
        for _ in 0..<count {
            let (_, keyLength) = try r.readNullableBytes("header key")
            guard keyLength >= 0 else { throw ProtocolError.unexpectedNull(field: "header key") }
            _ = try r.readNullableBytes("header value")
        }
        guard r.position == end else {
            throw ProtocolError.corruptRecordBatch("record declares \(length) bytes but its fields use \(r.position - reader.position)")
        }
        reader.position = end
        recordEnd?.pointee = end
        return layout
    }
}
