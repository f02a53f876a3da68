import NIOCore

/// A record header: a string key and optional bytes.
public struct RecordHeader: Hashable, Sendable {
    public var key: String
    public var value: ByteBuffer?

    public init(key: String, value: ByteBuffer?) {
        self.key = key
        self.value = value
    }
}

/// One record inside a batch (magic 2).
///
/// ```
/// length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
/// keyLength varint | key | valueLength varint | value | headerCount varint |
/// [headerKeyLength varint | headerKey | headerValueLength varint | headerValue]
/// ```
/// Lengths of -1 mean null. Decoded keys and values are slices of the batch's (decompressed)
/// bytes, not copies.
public struct Record: Hashable, Sendable {
    /// Unused by Kafka so far; kept so re-encoding is byte-exact.
    public var attributes: Int8
    public var timestampDelta: Int64
    public var offsetDelta: Int32
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public init(
        attributes: Int8 = 0,
        timestampDelta: Int64 = 0,
        offsetDelta: Int32 = 0,
        key: ByteBuffer? = nil,
        value: ByteBuffer?,
        headers: [RecordHeader] = []
    ) {
        self.attributes = attributes
        self.timestampDelta = timestampDelta
        self.offsetDelta = offsetDelta
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// Bytes of the record after its length prefix.
    public var bodySize: Int {
        Record.bodySize(timestampDelta: timestampDelta, offsetDelta: offsetDelta, key: key, value: value, headers: headers)
    }

    /// Bytes of the record including its length prefix.
    public var encodedSize: Int {
        let body = bodySize
        return varintSize(Int32(body)) + body
    }

    /// Appends the encoded record (length prefix included) at the writer index of `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        Record.encode(
            into: &buffer, attributes: attributes, timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            key: key, value: value, headers: headers)
    }

    /// Reads one record at the reader index of `buffer`, advancing it. Keys and values are slices
    /// of `buffer`.
    public static func decode(from buffer: inout ByteBuffer) throws -> Record {
        let base = buffer.readerIndex
        let (layout, consumed) = try buffer.withUnsafeReadableBytes { raw in
            var reader = RawReader(raw)
            let layout = try RecordLayout.parse(&reader)
            return (layout, reader.position)
        }
        let record = Record(layout: layout, in: buffer, base: base)
        buffer.moveReaderIndex(forwardBy: consumed)
        return record
    }

    // MARK: - internals shared with the batch builder and reader

    @inlinable
    static func bytesFieldSize(_ b: ByteBuffer?) -> Int {
        guard let b else { return 1 }
        return varintSize(Int32(truncatingIfNeeded: b.readableBytes)) + b.readableBytes
    }

    @inlinable
    static func bodySize(timestampDelta: Int64, offsetDelta: Int32, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader]) -> Int {
        var size = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta)
        size += bytesFieldSize(key) + bytesFieldSize(value)
        size += varintSize(Int32(truncatingIfNeeded: headers.count))
        for h in headers {
            let k = h.key.utf8.count
            size += varintSize(Int32(truncatingIfNeeded: k)) + k + bytesFieldSize(h.value)
        }
        return size
    }

    /// Writes a record with a single capacity check and no intermediate copies.
    @inlinable
    static func encode(
        into buffer: inout ByteBuffer,
        attributes: Int8,
        timestampDelta: Int64,
        offsetDelta: Int32,
        key: ByteBuffer?,
        value: ByteBuffer?,
        headers: [RecordHeader]
    ) {
        let body = bodySize(timestampDelta: timestampDelta, offsetDelta: offsetDelta, key: key, value: value, headers: headers)
        let total = varintSize(Int32(truncatingIfNeeded: body)) + body
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { dst in
            var w = RawWriter(dst.baseAddress!)
            w.writeVarint(Int32(truncatingIfNeeded: body))
            w.writeByte(UInt8(bitPattern: attributes))
            w.writeVarlong(timestampDelta)
            w.writeVarint(offsetDelta)
            w.writeNullableBytes(key)
            w.writeNullableBytes(value)
            w.writeVarint(Int32(truncatingIfNeeded: headers.count))
            for h in headers {
                var k = h.key
                k.withUTF8 { utf8 in
                    w.writeVarint(Int32(truncatingIfNeeded: utf8.count))
                    w.writeBytes(UnsafeRawBufferPointer(utf8))
                }
                w.writeNullableBytes(h.value)
            }
            assert(w.position == total)
            return total
        }
    }

    /// Materialises a record from a parsed layout; `base` is the absolute index where the layout's
    /// positions start.
    @inlinable
    init(layout: RecordLayout, in buffer: ByteBuffer, base: Int) {
        self.attributes = layout.attributes
        self.timestampDelta = layout.timestampDelta
        self.offsetDelta = layout.offsetDelta
        self.key = layout.keyLength < 0 ? nil : buffer.getSlice(at: base + layout.keyStart, length: layout.keyLength)
        self.value = layout.valueLength < 0 ? nil : buffer.getSlice(at: base + layout.valueStart, length: layout.valueLength)
        self.headers = layout.headerCount == 0 ? [] : Record.decodeHeaders(layout, in: buffer, base: base)
    }

    @usableFromInline
    static func decodeHeaders(_ layout: RecordLayout, in buffer: ByteBuffer, base: Int) -> [RecordHeader] {
        // The layout was validated by RecordLayout.parse, so these reads cannot fail.
        var headers: [RecordHeader] = []
        headers.reserveCapacity(layout.headerCount)
        buffer.withUnsafeReadableBytes { raw in
            var r = RawReader(raw, position: base - buffer.readerIndex + layout.headersStart)
            for _ in 0..<layout.headerCount {
                guard let (ks, kl) = try? r.readNullableBytes("header key"),
                      let (vs, vl) = try? r.readNullableBytes("header value")
                else { return }
                let key = String(decoding: UnsafeRawBufferPointer(rebasing: raw[ks..<(ks + kl)]), as: UTF8.self)
                let value = vl < 0 ? nil : buffer.getSlice(at: buffer.readerIndex + vs, length: vl)
                headers.append(RecordHeader(key: key, value: value))
            }
        }
        return headers
    }
}
