import NIOCore

// Raw-pointer readers and writers for the record format. Records are the innermost loop of both
// the producer and the broker (millions per second), so they are parsed and written straight on
// the bytes with one bounds check per field, instead of through ByteBuffer's per-byte accessors.

/// Size in bytes of `value` as a zig-zag varint.
@inlinable
func varintSize(_ value: Int32) -> Int {
    unsignedVarintSize(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
}

/// Size in bytes of `value` as a zig-zag varlong.
@inlinable
func varlongSize(_ value: Int64) -> Int {
    unsignedVarintSize(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
}

@inlinable
func unsignedVarintSize(_ value: UInt64) -> Int {
    // 1 + floor(bits / 7), computed without a loop.
    let bits = 64 - (value | 1).leadingZeroBitCount
    return (bits + 6) / 7
}

/// A bounds-checked cursor over raw bytes.
@usableFromInline
struct RawReader {
    @usableFromInline let base: UnsafeRawPointer?
    @usableFromInline let end: Int
    @usableFromInline var position: Int

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.base = bytes.baseAddress
        self.end = bytes.count
        self.position = position
    }

    @inlinable
    var remaining: Int { end - position }

    @inlinable
    mutating func readInt8(_ field: StaticString) throws -> Int8 {
        guard position < end, let base else { throw ProtocolError.truncated(field: "\(field)") }
        let v = base.load(fromByteOffset: position, as: Int8.self)
        position += 1
        return v
    }

    @inlinable
    mutating func readUnsignedVarint(_ field: StaticString) throws -> UInt32 {
        guard let base else { throw ProtocolError.truncated(field: "\(field)") }
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            if shift == 28 && byte > 0x0f { throw ProtocolError.varintTooLong }
            result |= UInt32(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    mutating func readVarint(_ field: StaticString) throws -> Int32 {
        let u = try readUnsignedVarint(field)
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    @inlinable
    mutating func readVarlong(_ field: StaticString) throws -> Int64 {
        guard let base else { throw ProtocolError.truncated(field: "\(field)") }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw ProtocolError.truncated(field: "\(field)") }
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            if shift == 63 && byte > 1 { throw ProtocolError.varintTooLong }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1))) }
            shift += 7
        }
    }

    /// Reads a varint length (-1 = null) and skips that many bytes; returns the start and length.
    @inlinable
    mutating func readNullableBytes(_ field: StaticString) throws -> (start: Int, length: Int) {
        let n = Int(try readVarint(field))
        if n == -1 { return (position, -1) }
        guard n >= 0 else { throw ProtocolError.invalidLength(field: "\(field)", length: n) }
        guard n <= remaining else { throw ProtocolError.truncated(field: "\(field)") }
        let start = position
        position += n
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

    @inlinable
    mutating func writeByte(_ b: UInt8) {
        base.storeBytes(of: b, toByteOffset: position, as: UInt8.self)
        position += 1
    }

    @inlinable
    mutating func writeUnsignedVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            writeByte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeByte(UInt8(truncatingIfNeeded: v))
    }

    @inlinable
    mutating func writeVarint(_ v: Int32) {
        writeUnsignedVarint(UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
    }

    @inlinable
    mutating func writeVarlong(_ v: Int64) {
        writeUnsignedVarint(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    @inlinable
    mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        (base + position).copyMemory(from: src, byteCount: bytes.count)
        position += bytes.count
    }

    /// A varint length then the bytes, or -1 for nil.
    @inlinable
    mutating func writeNullableBytes(_ bytes: ByteBuffer?) {
        guard let bytes else {
            writeVarint(-1)
            return
        }
        writeVarint(Int32(bytes.readableBytes))
        bytes.withUnsafeReadableBytes { writeBytes($0) }
    }
}

/// Where the fields of one encoded record lie, relative to the start of the records area.
@usableFromInline
struct RecordLayout {
    @usableFromInline var attributes: Int8 = 0
    @usableFromInline var timestampDelta: Int64 = 0
    @usableFromInline var offsetDelta: Int32 = 0
    @usableFromInline var keyStart = 0
    @usableFromInline var keyLength = -1
    @usableFromInline var valueStart = 0
    @usableFromInline var valueLength = -1
    @usableFromInline var headersStart = 0
    @usableFromInline var headerCount = 0

    @inlinable init() {}

    /// Parses the record at the reader's position and checks that its fields fill exactly its
    /// declared length — the checks Kafka's `DefaultRecord.readFrom` makes.
    @inlinable
    static func parse(_ reader: inout RawReader) throws -> RecordLayout {
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
        return layout
    }
}

extension RawReader {
    @inlinable
    init(base: UnsafeRawPointer?, end: Int, position: Int) {
        self.base = base
        self.end = end
        self.position = position
    }
}
