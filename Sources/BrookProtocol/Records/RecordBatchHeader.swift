import NIOCore

/// Which clock a batch's timestamps come from (attributes bit 3).
public enum TimestampType: Int8, Sendable, Hashable {
    /// Set by the producer.
    case createTime = 0
    /// Set by the broker when it appended the batch; every record's timestamp is then the batch's
    /// `maxTimestamp`.
    case logAppendTime = 1
}

/// The fixed 61-byte header of a record batch (magic 2).
///
/// ```
/// baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
/// attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
/// producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32
/// ```
/// `batchLength` counts the bytes after itself; the CRC-32C covers `attributes` to the end of the
/// batch, so the broker can rewrite `baseOffset` and `partitionLeaderEpoch` without recomputing it.
public struct RecordBatchHeader: Hashable, Sendable {
    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32

    // MARK: layout

    public static let size = 61
    /// Bytes before `batchLength`'s count starts: baseOffset and batchLength themselves.
    public static let logOverhead = 12
    /// The smallest legal `batchLength` (a header and no records).
    public static let minimumBatchLength = Int32(size - logOverhead)
    public static let currentMagic: Int8 = 2

    public static let baseOffsetOffset = 0
    public static let batchLengthOffset = 8
    public static let partitionLeaderEpochOffset = 12
    public static let magicOffset = 16
    public static let crcOffset = 17
    public static let attributesOffset = 21
    public static let lastOffsetDeltaOffset = 23
    public static let baseTimestampOffset = 27
    public static let maxTimestampOffset = 35
    public static let producerIdOffset = 43
    public static let producerEpochOffset = 51
    public static let baseSequenceOffset = 53
    public static let recordCountOffset = 57

    // MARK: attribute bits

    public static let compressionMask: Int16 = 0x07
    public static let timestampTypeBit: Int16 = 0x08
    public static let transactionalBit: Int16 = 0x10
    public static let controlBit: Int16 = 0x20
    /// Set by compaction (Kafka 3.0+): baseTimestamp holds the delete horizon.
    public static let deleteHorizonBit: Int16 = 0x40

    public init(
        baseOffset: Int64 = 0,
        batchLength: Int32 = RecordBatchHeader.minimumBatchLength,
        partitionLeaderEpoch: Int32 = -1,
        magic: Int8 = RecordBatchHeader.currentMagic,
        crc: UInt32 = 0,
        attributes: Int16 = 0,
        lastOffsetDelta: Int32 = 0,
        baseTimestamp: Int64 = -1,
        maxTimestamp: Int64 = -1,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        recordCount: Int32 = 0
    ) {
        self.baseOffset = baseOffset
        self.batchLength = batchLength
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.lastOffsetDelta = lastOffsetDelta
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = maxTimestamp
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.recordCount = recordCount
    }

    /// Reads the header of the batch starting at absolute index `index` of `buffer`, without
    /// copying or moving the reader index. Only checks that 61 bytes are there; see
    /// ``RecordBatch`` and ``RecordBatch/validate(options:)`` for the rest.
    public init(parsing buffer: ByteBuffer, at index: Int) throws {
        let offset = index - buffer.readerIndex
        guard offset >= 0, buffer.readableBytes - offset >= Self.size else {
            throw ProtocolError.truncated(field: "record batch header")
        }
        self = buffer.withUnsafeReadableBytes { raw in
            @inline(__always) func load<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
                T(bigEndian: raw.loadUnaligned(fromByteOffset: offset + at, as: T.self))
            }
            return RecordBatchHeader(
                baseOffset: load(Self.baseOffsetOffset, Int64.self),
                batchLength: load(Self.batchLengthOffset, Int32.self),
                partitionLeaderEpoch: load(Self.partitionLeaderEpochOffset, Int32.self),
                magic: load(Self.magicOffset, Int8.self),
                crc: load(Self.crcOffset, UInt32.self),
                attributes: load(Self.attributesOffset, Int16.self),
                lastOffsetDelta: load(Self.lastOffsetDeltaOffset, Int32.self),
                baseTimestamp: load(Self.baseTimestampOffset, Int64.self),
                maxTimestamp: load(Self.maxTimestampOffset, Int64.self),
                producerId: load(Self.producerIdOffset, Int64.self),
                producerEpoch: load(Self.producerEpochOffset, Int16.self),
                baseSequence: load(Self.baseSequenceOffset, Int32.self),
                recordCount: load(Self.recordCountOffset, Int32.self))
        }
    }

    /// Writes the 61 header bytes exactly as the fields hold them (the CRC is not recomputed).
    public func write(to buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: Self.size)
        buffer.writeInteger(baseOffset)
        buffer.writeInteger(batchLength)
        buffer.writeInteger(partitionLeaderEpoch)
        buffer.writeInteger(magic)
        buffer.writeInteger(crc)
        buffer.writeInteger(attributes)
        buffer.writeInteger(lastOffsetDelta)
        buffer.writeInteger(baseTimestamp)
        buffer.writeInteger(maxTimestamp)
        buffer.writeInteger(producerId)
        buffer.writeInteger(producerEpoch)
        buffer.writeInteger(baseSequence)
        buffer.writeInteger(recordCount)
    }

    /// Overwrites the 61 bytes at absolute `index` of `buffer` with these fields (CRC as held).
    public func set(in buffer: inout ByteBuffer, at index: Int) {
        buffer.setInteger(baseOffset, at: index + Self.baseOffsetOffset)
        buffer.setInteger(batchLength, at: index + Self.batchLengthOffset)
        buffer.setInteger(partitionLeaderEpoch, at: index + Self.partitionLeaderEpochOffset)
        buffer.setInteger(magic, at: index + Self.magicOffset)
        buffer.setInteger(crc, at: index + Self.crcOffset)
        buffer.setInteger(attributes, at: index + Self.attributesOffset)
        buffer.setInteger(lastOffsetDelta, at: index + Self.lastOffsetDeltaOffset)
        buffer.setInteger(baseTimestamp, at: index + Self.baseTimestampOffset)
        buffer.setInteger(maxTimestamp, at: index + Self.maxTimestampOffset)
        buffer.setInteger(producerId, at: index + Self.producerIdOffset)
        buffer.setInteger(producerEpoch, at: index + Self.producerEpochOffset)
        buffer.setInteger(baseSequence, at: index + Self.baseSequenceOffset)
        buffer.setInteger(recordCount, at: index + Self.recordCountOffset)
    }

    // MARK: derived values

    /// Bytes of the whole batch, header included.
    @inlinable
    public var totalSize: Int { Int(batchLength) + Self.logOverhead }

    /// The codec from attributes bits 0–2; throws for the unused ids 5–7.
    public var codec: CompressionCodec {
        get throws { try CompressionCodec(attributes: attributes) }
    }

    @inlinable
    public var isCompressed: Bool { attributes & Self.compressionMask != 0 }

    @inlinable
    public var timestampType: TimestampType {
        attributes & Self.timestampTypeBit != 0 ? .logAppendTime : .createTime
    }

    @inlinable
    public var isTransactional: Bool { attributes & Self.transactionalBit != 0 }

    @inlinable
    public var isControl: Bool { attributes & Self.controlBit != 0 }

    @inlinable
    public var hasDeleteHorizon: Bool { attributes & Self.deleteHorizonBit != 0 }

    /// Whether the batch comes from an idempotent or transactional producer.
    @inlinable
    public var hasProducerId: Bool { producerId >= 0 }

    @inlinable
    public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }

    @inlinable
    public var nextOffset: Int64 { lastOffset &+ 1 }

    /// The sequence number of the last record, wrapping at Int32.max as Kafka's producers do.
    @inlinable
    public var lastSequence: Int32 {
        guard baseSequence >= 0 else { return -1 }
        let last = Int64(baseSequence) + Int64(lastOffsetDelta)
        return last > Int64(Int32.max) ? Int32(last - Int64(Int32.max) - 1) : Int32(last)
    }

    /// The timestamp of a record with the given delta: the batch's `maxTimestamp` under
    /// log-append time, `baseTimestamp + delta` otherwise.
    @inlinable
    public func timestamp(delta: Int64) -> Int64 {
        timestampType == .logAppendTime ? maxTimestamp : baseTimestamp &+ delta
    }

    /// Builds attributes from their parts.
    @inlinable
    public static func attributes(
        codec: CompressionCodec,
        timestampType: TimestampType = .createTime,
        isTransactional: Bool = false,
        isControl: Bool = false
    ) -> Int16 {
        var a = Int16(codec.rawValue)
        if timestampType == .logAppendTime { a |= timestampTypeBit }
        if isTransactional { a |= transactionalBit }
        if isControl { a |= controlBit }
        return a
    }
}

// MARK: - in-place patches

extension ByteBuffer {
    /// Sets the base offset of the batch at absolute `index`. Not covered by the CRC, so the
    /// broker assigns offsets on append without touching the checksum.
    @inlinable
    public mutating func setRecordBatchBaseOffset(_ baseOffset: Int64, batchAt index: Int) {
        setInteger(baseOffset, at: index + RecordBatchHeader.baseOffsetOffset)
    }

    /// Sets the partition leader epoch of the batch at absolute `index` (not covered by the CRC).
    @inlinable
    public mutating func setRecordBatchPartitionLeaderEpoch(_ epoch: Int32, batchAt index: Int) {
        setInteger(epoch, at: index + RecordBatchHeader.partitionLeaderEpochOffset)
    }

    /// Marks the batch at absolute `index` as log-append-time with the broker's `timestamp`:
    /// sets attributes bit 3 and `maxTimestamp`, then recomputes the CRC — what a broker does for
    /// topics with `message.timestamp.type=LogAppendTime`.
    public mutating func setRecordBatchLogAppendTime(_ timestamp: Int64, batchAt index: Int) throws {
        try setRecordBatchMaxTimestamp(timestamp, type: .logAppendTime, batchAt: index)
    }

    /// Sets the timestamp type and `maxTimestamp` of the batch at absolute `index` and recomputes
    /// its CRC (skipped when nothing changes).
    public mutating func setRecordBatchMaxTimestamp(_ timestamp: Int64, type: TimestampType, batchAt index: Int) throws {
        let header = try RecordBatchHeader(parsing: self, at: index)
        try checkBatchBounds(header, at: index)
        guard header.timestampType != type || header.maxTimestamp != timestamp else { return }
        var attributes = header.attributes & ~RecordBatchHeader.timestampTypeBit
        if type == .logAppendTime { attributes |= RecordBatchHeader.timestampTypeBit }
        setInteger(attributes, at: index + RecordBatchHeader.attributesOffset)
        setInteger(timestamp, at: index + RecordBatchHeader.maxTimestampOffset)
        try updateRecordBatchCRC(batchAt: index)
    }

    /// Recomputes and stores the CRC-32C of the batch at absolute `index`.
    @discardableResult
    public mutating func updateRecordBatchCRC(batchAt index: Int) throws -> UInt32 {
        let header = try RecordBatchHeader(parsing: self, at: index)
        try checkBatchBounds(header, at: index)
        let crc = CRC32C.checksum(self, range: (index + RecordBatchHeader.attributesOffset)..<(index + header.totalSize))
        setInteger(crc, at: index + RecordBatchHeader.crcOffset)
        return crc
    }

    @usableFromInline
    func checkBatchBounds(_ header: RecordBatchHeader, at index: Int) throws {
        guard header.batchLength >= RecordBatchHeader.minimumBatchLength else {
            throw ProtocolError.corruptRecordBatch("batch length \(header.batchLength) is below the minimum \(RecordBatchHeader.minimumBatchLength)")
        }
        guard index - readerIndex + header.totalSize <= readableBytes else {
            throw ProtocolError.truncated(field: "record batch")
        }
    }
}
