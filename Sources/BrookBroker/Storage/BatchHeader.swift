import BrookProtocol

/// The fields of a record batch v2 header that storage needs, read straight from bytes.
///
/// Storage keeps batches as the bytes they arrived as; it only looks at the 61-byte header to
/// frame, index and validate them, so this reads fixed positions rather than decoding records.
struct BatchHeader {
    static let size = 61
    /// Bytes before `batchLength` counts (baseOffset + batchLength itself).
    static let logOverhead = 12
    static let currentMagic: Int8 = 2

    enum Field {
        static let baseOffset = 0
        static let batchLength = 8
        static let partitionLeaderEpoch = 12
        static let magic = 16
        static let crc = 17
        static let attributes = 21
        static let lastOffsetDelta = 23
        static let baseTimestamp = 27
        static let maxTimestamp = 35
        static let producerId = 43
        static let recordCount = 57
    }

    /// Attribute bit 3: timestamps are the broker's log append time.
    static let logAppendTimeFlag: Int16 = 1 << 3
    static let compressionMask: Int16 = 0x07

    var baseOffset: Int64
    var batchLength: Int32
    var magic: Int8
    var crc: UInt32
    var attributes: Int16
    var lastOffsetDelta: Int32
    var baseTimestamp: Int64
    var maxTimestamp: Int64
    var recordCount: Int32

    /// Reads the header at `p` (61 readable bytes required).
    @inline(__always)
    init(_ p: UnsafeRawPointer) {
        baseOffset = Self.load(p, Field.baseOffset)
        batchLength = Self.load(p, Field.batchLength)
        magic = Int8(bitPattern: p.load(fromByteOffset: Field.magic, as: UInt8.self))
        crc = Self.load(p, Field.crc)
        attributes = Self.load(p, Field.attributes)
        lastOffsetDelta = Self.load(p, Field.lastOffsetDelta)
        baseTimestamp = Self.load(p, Field.baseTimestamp)
        maxTimestamp = Self.load(p, Field.maxTimestamp)
        recordCount = Self.load(p, Field.recordCount)
    }

    /// Size of the whole batch in bytes, including the 12-byte log overhead.
    var totalSize: Int { Int(batchLength) + Self.logOverhead }
    var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    var isCompressed: Bool { attributes & Self.compressionMask != 0 }
    var isLogAppendTime: Bool { attributes & Self.logAppendTimeFlag != 0 }

    /// Framing checks that need no checksum: enough length for a header, the v2 magic, and a
    /// non-negative offset delta. Cheap enough for every batch on every path.
    var isWellFramed: Bool {
        batchLength >= Int32(Self.size - Self.logOverhead) && magic == Self.currentMagic && lastOffsetDelta >= 0
    }

    @inline(__always)
    static func load<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ offset: Int, as: T.Type = T.self) -> T {
        T(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inline(__always)
    static func store<T: FixedWidthInteger>(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: T) {
        p.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    /// CRC-32C over attributes..end, the range the header's `crc` covers.
    @inline(__always)
    static func computeCRC(_ batch: UnsafeRawPointer, totalSize: Int) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(start: batch + Field.attributes, count: totalSize - Field.attributes))
    }

    /// Finds the first record of an uncompressed batch whose timestamp is >= `target` and whose
    /// offset is >= `minOffset`; returns (offset, timestamp). Nil if no record qualifies, the batch
    /// is compressed, or the records do not parse (the caller falls back to batch granularity).
    static func firstRecord(in batch: UnsafeRawBufferPointer, atOrAfter target: Int64, minOffset: Int64) -> (offset: Int64, timestamp: Int64)? {
        guard batch.count >= size, let base = batch.baseAddress else { return nil }
        let header = BatchHeader(base)
        guard !header.isCompressed, header.totalSize <= batch.count else { return nil }
        var reader = VarintReader(base: base, position: size, end: header.totalSize)
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
