import BrookProtocol

/// The fields of a record batch v2 header that storage needs, read straight from bytes.
///
/// Storage keeps batches as the bytes they arrived as; it only looks at the header to frame,
/// index and validate them, so this reads fixed positions from memory rather than decoding a
/// `ByteBuffer`. The layout (size, field offsets, attribute bits) is `RecordBatchHeader`'s, the
/// one definition of it.
struct BatchHeader {
    private typealias Layout = RecordBatchHeader

    var baseOffset: Int64
    var batchLength: Int32
    var magic: Int8
    var crc: UInt32
    var attributes: Int16
    var lastOffsetDelta: Int32
    var baseTimestamp: Int64
    var maxTimestamp: Int64
    var recordCount: Int32

    /// Reads the header at `p` (`RecordBatchHeader.size` readable bytes required).
    @inline(__always)
    init(_ p: UnsafeRawPointer) {
        baseOffset = BigEndian.load(p, Layout.baseOffsetOffset)
        batchLength = BigEndian.load(p, Layout.batchLengthOffset)
        magic = BigEndian.load(p, Layout.magicOffset)
        crc = BigEndian.load(p, Layout.crcOffset)
        attributes = BigEndian.load(p, Layout.attributesOffset)
        lastOffsetDelta = BigEndian.load(p, Layout.lastOffsetDeltaOffset)
        baseTimestamp = BigEndian.load(p, Layout.baseTimestampOffset)
        maxTimestamp = BigEndian.load(p, Layout.maxTimestampOffset)
        recordCount = BigEndian.load(p, Layout.recordCountOffset)
    }

    /// Size of the whole batch in bytes, including the log overhead (baseOffset, batchLength).
    var totalSize: Int { Int(batchLength) + Layout.logOverhead }
    var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    var isCompressed: Bool { attributes & Layout.compressionMask != 0 }
    var isLogAppendTime: Bool { attributes & Layout.timestampTypeBit != 0 }

    /// Framing checks that need no checksum: enough length for a header, the v2 magic, and a
    /// non-negative offset delta. Cheap enough for every batch on every path.
    var isWellFramed: Bool {
        batchLength >= Layout.minimumBatchLength && magic == Layout.currentMagic && lastOffsetDelta >= 0
    }

    /// CRC-32C over attributes..end, the range the header's `crc` covers.
    @inline(__always)
    static func computeCRC(_ batch: UnsafeRawPointer, totalSize: Int) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(start: batch + Layout.attributesOffset, count: totalSize - Layout.attributesOffset))
    }

    /// Finds the first record of an uncompressed batch whose timestamp is >= `target` and whose
    /// offset is >= `minOffset`; returns (offset, timestamp). Nil if no record qualifies, the batch
    /// is compressed, or the records do not parse (the caller falls back to batch granularity).
    static func firstRecord(in batch: UnsafeRawBufferPointer, atOrAfter target: Int64, minOffset: Int64) -> (offset: Int64, timestamp: Int64)? {
        guard batch.count >= Layout.size, let base = batch.baseAddress else { return nil }
        let header = BatchHeader(base)
        guard !header.isCompressed, header.totalSize <= batch.count else { return nil }
        var reader = VarintReader(base: base, position: Layout.size, end: header.totalSize)
        for _ in 0..<max(0, Int(header.recordCount)) {
            guard let length = reader.readVarint(), length >= 0 else { return nil }
            let recordStart = reader.position
            guard recordStart + Int(length) <= reader.end else { return nil }
            reader.position += 1  // attributes
            guard let tsDelta = reader.readVarint(), let offsetDelta = reader.readVarint() else { return nil }
            let offset = header.baseOffset + offsetDelta
            let ts = header.baseTimestamp + tsDelta
            if ts >= target && offset >= minOffset { return (offset, ts) }
            reader.position = recordStart + Int(length)
        }
        return nil
    }
}

/// Zig-zag varints as records use them, bounds-checked against `end`.
private struct VarintReader {
    let base: UnsafeRawPointer
    var position: Int
    let end: Int

    mutating func readVarint() -> Int64? {
        var raw: UInt64 = 0
        var shift: UInt64 = 0
        while position < end, shift < 64 {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            raw |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
            }
            shift += 7
        }
        return nil
    }
}
