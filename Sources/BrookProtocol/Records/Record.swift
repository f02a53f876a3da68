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

/// One record inside a batch (magic 2), owning slices of the batch's bytes.
///
/// For the tightest loops, ``RecordBatch/forEachRecord(maxUncompressedBytes:_:)`` hands out
/// ``RecordView``s instead, which skip reference counting altogether.
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

    @inlinable
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
    @inlinable
    public static func decode(from buffer: inout ByteBuffer) throws -> Record {
        let base = buffer.readerIndex
        let (layout, length) = try Record.layout(of: buffer)
        let record = Record(
            attributes: layout.attributes, timestampDelta: layout.timestampDelta, offsetDelta: layout.offsetDelta,
            key: layout.keyLength < 0 ? nil : buffer.getSlice(at: base &+ layout.keyStart, length: layout.keyLength),
            value: layout.valueLength < 0 ? nil : buffer.getSlice(at: base &+ layout.valueStart, length: layout.valueLength),
            headers: Record.headers(of: layout, in: buffer))
        buffer.moveReaderIndex(forwardBy: length)
        return record
    }

    /// Parses and checks the record at the reader index of `buffer` without building it: its
    /// fields' positions, relative to the reader index, and its encoded length. For readers that
    /// build a record type of their own from slices of `buffer`: building a `Record` first and
    /// copying its fields out would cost a retain and a release per field.
    @inlinable
    public static func layout(of buffer: ByteBuffer) throws -> (RecordLayout, length: Int) {
        try buffer.withUnsafeReadableBytes { raw in
            var reader = RawReader(raw)
            let layout = try RecordLayout.parse(&reader)
            return (layout, reader.position)
        }
    }

    /// The headers of the record at the reader index of `buffer`, as parsed by `layout(of:)`.
    @inlinable
    public static func headers(of layout: RecordLayout, in buffer: ByteBuffer) -> [RecordHeader] {
        layout.headerCount == 0 ? [] : decodeHeaders(layout, in: buffer, base: buffer.readerIndex)
    }

    // MARK: - internals shared with the batch builder and reader

    @inlinable @inline(__always)
    static func bytesFieldSize(_ b: ByteBuffer?) -> Int {
        guard let b else { return 1 }
        return varintSize(Int32(truncatingIfNeeded: b.readableBytes)) + b.readableBytes
    }

    @inlinable @inline(__always)
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

/// A record read in place: its key and value point into the batch's bytes and are valid only
/// during the ``RecordBatch/forEachRecord(maxUncompressedBytes:_:)`` callback that received it.
///
/// Exists because materialising ``Record``s costs reference-count traffic per key and value,
/// which at millions of records per second is most of the decoding time.
public struct RecordView {
    public let attributes: Int8
    public let timestampDelta: Int64
    public let offsetDelta: Int32
    public let key: UnsafeRawBufferPointer?
    public let value: UnsafeRawBufferPointer?
    public let headerCount: Int
    @usableFromInline let headerBytes: UnsafeRawBufferPointer

    @inlinable
    init(layout: RecordLayout, in raw: UnsafeRawBufferPointer, headersEnd: Int) {
        attributes = layout.attributes
        timestampDelta = layout.timestampDelta
        offsetDelta = layout.offsetDelta
        key = layout.keyLength < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[layout.keyStart..<(layout.keyStart &+ layout.keyLength)])
        value = layout.valueLength < 0 ? nil : UnsafeRawBufferPointer(rebasing: raw[layout.valueStart..<(layout.valueStart &+ layout.valueLength)])
        headerCount = layout.headerCount
        headerBytes = UnsafeRawBufferPointer(rebasing: raw[layout.headersStart..<headersEnd])
    }

    /// Calls `body` with each header's key (UTF-8) and value (nil for null).
    @inlinable
    public func forEachHeader(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) throws -> Void) rethrows {
        guard headerCount > 0 else { return }
        // The layout was validated when the record was parsed, so these reads cannot fail.
        var r = RawReader(headerBytes)
        for _ in 0..<headerCount {
            guard let (ks, kl) = try? r.readNullableBytes("header key"),
                  let (vs, vl) = try? r.readNullableBytes("header value")
            else { return }
            try body(
                UnsafeRawBufferPointer(rebasing: headerBytes[ks..<(ks &+ kl)]),
                vl < 0 ? nil : UnsafeRawBufferPointer(rebasing: headerBytes[vs..<(vs &+ vl)]))
        }
    }

    /// A copy as an owning ``Record``.
    public func materialize() -> Record {
        var headers: [RecordHeader] = []
        forEachHeader { k, v in
            headers.append(RecordHeader(key: String(decoding: k, as: UTF8.self), value: v.map { ByteBuffer(bytes: $0) }))
        }
        return Record(
            attributes: attributes, timestampDelta: timestampDelta, offsetDelta: offsetDelta,
            key: key.map { ByteBuffer(bytes: $0) }, value: value.map { ByteBuffer(bytes: $0) }, headers: headers)
    }
}
