import NIOCore

// Kafka's primitive types, read and written directly on NIO's ByteBuffer.
// Readers throw `ProtocolError` instead of returning nil so that generated decoders stay linear.

extension ByteBuffer {
    // MARK: fixed-width integers (big endian)

    @inlinable
    public mutating func readKafkaInt<T: FixedWidthInteger>(_: T.Type = T.self, _ field: StaticString = "int") throws -> T {
        guard let v = self.readInteger(endianness: .big, as: T.self) else {
            throw ProtocolError.truncated(field: "\(field)")
        }
        return v
    }

    @inlinable
    public mutating func readKafkaBool(_ field: StaticString = "bool") throws -> Bool {
        let b: UInt8 = try readKafkaInt(UInt8.self, field)
        return b != 0
    }

    @inlinable
    public mutating func writeKafkaBool(_ v: Bool) {
        self.writeInteger(UInt8(v ? 1 : 0))
    }

    @inlinable
    public mutating func readKafkaFloat64(_ field: StaticString = "float64") throws -> Double {
        let bits: UInt64 = try readKafkaInt(UInt64.self, field)
        return Double(bitPattern: bits)
    }

    @inlinable
    public mutating func writeKafkaFloat64(_ v: Double) {
        self.writeInteger(v.bitPattern)
    }

    // MARK: varints

    /// Unsigned LEB128 varint of at most 32 bits (Kafka's UNSIGNED_VARINT).
    @inlinable
    public mutating func readUnsignedVarint() throws -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = self.readInteger(as: UInt8.self) else { throw ProtocolError.truncated(field: "uvarint") }
            if shift == 28 && byte > 0x0f { throw ProtocolError.varintTooLong }
            result |= UInt32(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Unsigned LEB128 varint of at most 64 bits.
    @inlinable
    public mutating func readUnsignedVarlong() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = self.readInteger(as: UInt8.self) else { throw ProtocolError.truncated(field: "uvarlong") }
            if shift == 63 && byte > 1 { throw ProtocolError.varintTooLong }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
            n += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: v))
        return n + 1
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
            n += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: v))
        return n + 1
    }

    /// Zig-zag encoded signed varint (Kafka's VARINT).
    @inlinable
    public mutating func readVarint() throws -> Int32 {
        let u = try readUnsignedVarint()
        return Int32(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarint(_ v: Int32) -> Int {
        writeUnsignedVarint(UInt32(bitPattern: (v << 1) ^ (v >> 31)))
    }

    /// Zig-zag encoded signed varlong (Kafka's VARLONG).
    @inlinable
    public mutating func readVarlong() throws -> Int64 {
        let u = try readUnsignedVarlong()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarlong(_ v: Int64) -> Int {
        writeUnsignedVarlong(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
    }

    // MARK: lengths

    /// Reads a length prefix in classic (int16/int32) or compact (uvarint N+1) form.
    /// Returns -1 for null. Validates against remaining bytes when `bytesPerElement > 0`.
    @inlinable
    public mutating func readKafkaLength(compact: Bool, wide: Bool, field: StaticString, minBytesPerElement: Int = 1) throws -> Int {
        let n: Int
        if compact {
            n = Int(try readUnsignedVarint()) - 1
        } else if wide {
            n = Int(try readKafkaInt(Int32.self, field))
        } else {
            n = Int(try readKafkaInt(Int16.self, field))
        }
        if n < -1 { throw ProtocolError.invalidLength(field: "\(field)", length: n) }
        if n > 0 && minBytesPerElement > 0 && n > self.readableBytes / minBytesPerElement {
            throw ProtocolError.invalidLength(field: "\(field)", length: n)
        }
        return n
    }

    @inlinable
    public mutating func writeKafkaLength(_ n: Int, compact: Bool, wide: Bool) {
        if compact {
            writeUnsignedVarint(UInt32(n + 1))
        } else if wide {
            writeInteger(Int32(n))
        } else {
            writeInteger(Int16(n))
        }
    }

    // MARK: strings

    @inlinable
    public mutating func readKafkaNullableString(compact: Bool, _ field: StaticString = "string") throws -> String? {
        let n = try readKafkaLength(compact: compact, wide: false, field: field)
        if n < 0 { return nil }
        guard let s = self.readString(length: n) else { throw ProtocolError.truncated(field: "\(field)") }
        return s
    }

    @inlinable
    public mutating func readKafkaString(compact: Bool, _ field: StaticString = "string") throws -> String {
        guard let s = try readKafkaNullableString(compact: compact, field) else {
            throw ProtocolError.unexpectedNull(field: "\(field)")
        }
        return s
    }

    @inlinable
    public mutating func writeKafkaString(_ s: String?, compact: Bool) {
        guard let s else {
            writeKafkaLength(-1, compact: compact, wide: false)
            return
        }
        let utf8 = s.utf8.count
        writeKafkaLength(utf8, compact: compact, wide: false)
        writeString(s)
    }

    // MARK: bytes

    @inlinable
    public mutating func readKafkaNullableBytes(compact: Bool, _ field: StaticString = "bytes") throws -> ByteBuffer? {
        let n = try readKafkaLength(compact: compact, wide: true, field: field)
        if n < 0 { return nil }
        guard let s = self.readSlice(length: n) else { throw ProtocolError.truncated(field: "\(field)") }
        return s
    }

    @inlinable
    public mutating func readKafkaBytes(compact: Bool, _ field: StaticString = "bytes") throws -> ByteBuffer {
        guard let b = try readKafkaNullableBytes(compact: compact, field) else {
            throw ProtocolError.unexpectedNull(field: "\(field)")
        }
        return b
    }

    @inlinable
    public mutating func writeKafkaBytes(_ b: ByteBuffer?, compact: Bool) {
        guard var b else {
            writeKafkaLength(-1, compact: compact, wide: true)
            return
        }
        writeKafkaLength(b.readableBytes, compact: compact, wide: true)
        writeBuffer(&b)
    }

    // MARK: UUID

    @inlinable
    public mutating func readKafkaUUID() throws -> KafkaUUID {
        guard let hi = readInteger(as: UInt64.self), let lo = readInteger(as: UInt64.self) else {
            throw ProtocolError.truncated(field: "uuid")
        }
        return KafkaUUID(high: hi, low: lo)
    }

    @inlinable
    public mutating func writeKafkaUUID(_ u: KafkaUUID) {
        writeInteger(u.high)
        writeInteger(u.low)
    }

    // MARK: tagged fields

    /// Reads a tagged-field section, handing each known tag to `handler` and keeping unknown ones.
    @inlinable
    public mutating func readTaggedFields(_ handler: (UInt32, inout ByteBuffer) throws -> Bool) throws -> [TaggedField] {
        let count = Int(try readUnsignedVarint())
        if count > readableBytes { throw ProtocolError.invalidLength(field: "tagged fields", length: count) }
        var unknown: [TaggedField] = []
        var lastTag: Int64 = -1
        for _ in 0..<count {
            let tag = try readUnsignedVarint()
            if Int64(tag) == lastTag { throw ProtocolError.invalidLength(field: "duplicate tagged field", length: Int(tag)) }
            lastTag = Int64(tag)
            let size = Int(try readUnsignedVarint())
            guard var slice = readSlice(length: size) else { throw ProtocolError.truncated(field: "tagged field") }
            if try !handler(tag, &slice) {
                unknown.append(TaggedField(tag: tag, data: slice))
            }
        }
        return unknown
    }

    /// Writes a tagged field whose body is produced by `body`.
    @inlinable
    public mutating func writeTaggedField(tag: UInt32, _ body: (inout ByteBuffer) -> Void) {
        var tmp = ByteBufferAllocator().buffer(capacity: 16)
        body(&tmp)
        writeUnsignedVarint(tag)
        writeUnsignedVarint(UInt32(tmp.readableBytes))
        writeBuffer(&tmp)
    }
}

/// A tagged field the decoder did not recognise; kept so re-encoding preserves it.
public struct TaggedField: Hashable, Sendable {
    public var tag: UInt32
    public var data: ByteBuffer
    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}

/// Kafka's 128-bit UUID (topic ids, member ids of the new protocol).
public struct KafkaUUID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
    public static let zero = KafkaUUID(high: 0, low: 0)
    public static func random() -> KafkaUUID {
        var g = SystemRandomNumberGenerator()
        // Version-4 style bits keep ids recognisable; never all-zero (the null id).
        let hi = (g.next() & 0xffff_ffff_ffff_0fff) | 0x4000
        let lo = (g.next() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000
        return KafkaUUID(high: hi, low: lo)
    }

    /// Kafka prints topic ids as URL-safe base64 without padding.
    public var description: String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for i in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: high >> (UInt64(i) * 8))) }
        for i in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: low >> (UInt64(i) * 8))) }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out = [UInt8]()
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = (b0 << 16) | (b1 << 8) | b2
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            if i + 1 < bytes.count { out.append(alphabet[Int((n >> 6) & 63)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(n & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
