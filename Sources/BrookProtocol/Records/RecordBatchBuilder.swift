import NIOCore

/// Encodes one record batch (magic 2) record by record, straight into a `ByteBuffer`.
///
/// Uncompressed batches are written in place after a reserved header, so the only copies are the
/// keys and values themselves; compressed batches collect records in a scratch buffer and
/// compress it once in ``finish()``. The header (counts, timestamps, CRC-32C) is filled last.
///
/// ```swift
/// var builder = RecordBatchBuilder(codec: .zstd, producerId: 7, producerEpoch: 0, baseSequence: 42)
/// builder.append(timestamp: now, key: key, value: value)
/// let batch = try builder.finish()
/// ```
public struct RecordBatchBuilder: Sendable {
    public let codec: CompressionCodec
    public let compressionLevel: Int?
    public var baseOffset: Int64
    public var partitionLeaderEpoch: Int32
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var isTransactional: Bool
    public var isControl: Bool
    /// When set, the batch is marked log-append-time and this becomes its `maxTimestamp`.
    public var logAppendTime: Int64?
    /// When set, the header keeps this `lastOffsetDelta` whatever records remain: compaction
    /// rewrites a batch with fewer records but the same offset span (and producer sequence range).
    public var preservedLastOffsetDelta: Int32?

    /// Everything before the batch, then (uncompressed) the header placeholder and the records.
    private var output: ByteBuffer
    /// Records awaiting compression (compressed codecs only).
    private var scratch: ByteBuffer
    private let batchStart: Int
    private var baseTimestamp: Int64?
    private var maxTimestamp: Int64 = -1
    private var lastOffsetDelta: Int32 = -1
    public private(set) var recordCount: Int32 = 0

    /// - Parameters:
    ///   - producerId: -1 unless the producer is idempotent or transactional.
    ///   - baseSequence: the sequence number of the first record (-1 without a producer id).
    ///   - baseTimestamp: fixes the timestamp deltas are relative to; by default the first
    ///     appended record's timestamp, as Kafka's clients do.
    ///   - buffer: a buffer to append the batch to (e.g. a produce request being written). Pass
    ///     it without keeping another copy, or writing it triggers a copy-on-write. Give it the
    ///     capacity of a full batch (`batch.size`): growing it copies everything written so far.
    public init(
        codec: CompressionCodec = .none,
        compressionLevel: Int? = nil,
        baseOffset: Int64 = 0,
        partitionLeaderEpoch: Int32 = -1,
        producerId: Int64 = -1,
        producerEpoch: Int16 = -1,
        baseSequence: Int32 = -1,
        isTransactional: Bool = false,
        isControl: Bool = false,
        baseTimestamp: Int64? = nil,
        logAppendTime: Int64? = nil,
        appendingTo buffer: consuming ByteBuffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    ) {
        self.codec = codec
        self.compressionLevel = compressionLevel
        self.baseOffset = baseOffset
        self.partitionLeaderEpoch = partitionLeaderEpoch
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
        self.isControl = isControl
        self.baseTimestamp = baseTimestamp
        self.logAppendTime = logAppendTime
        self.batchStart = buffer.writerIndex
        // Moved in: with a second reference alive, the header write below copied the whole
        // storage (for a producer's ~1 MB batch, a memmove and fresh pages per batch).
        self.output = consume buffer
        if codec == .none {
            self.output.writeRepeatingByte(0, count: RecordBatchHeader.size)
            self.scratch = ByteBuffer()
        } else {
            self.scratch = ByteBufferAllocator().buffer(capacity: 16 * 1024)
        }
    }

    /// Uncompressed size of the batch so far, header included; what producers compare against
    /// `batch.size` (compression only shrinks it).
    public var uncompressedSize: Int {
        RecordBatchHeader.size + (codec == .none ? output.writerIndex - batchStart - RecordBatchHeader.size : scratch.readableBytes)
    }

    /// Size `append` would add for a record, for checking a size limit before appending.
    public func encodedSize(timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = []) -> Int {
        let delta = timestamp &- (baseTimestamp ?? timestamp)
        let body = Record.bodySize(timestampDelta: delta, offsetDelta: recordCount, key: key, value: value, headers: headers)
        return varintSize(Int32(truncatingIfNeeded: body)) + body
    }

    /// Appends a record with the next offset delta.
    public mutating func append(
        timestamp: Int64,
        key: ByteBuffer?,
        value: ByteBuffer?,
        headers: [RecordHeader] = [],
        attributes: Int8 = 0
    ) {
        let base = baseTimestamp ?? timestamp
        baseTimestamp = base
        if timestamp > maxTimestamp { maxTimestamp = timestamp }
        let offsetDelta = lastOffsetDelta &+ 1
        if codec == .none {
            Record.encode(
                into: &output, attributes: attributes, timestampDelta: timestamp &- base, offsetDelta: offsetDelta,
                key: key, value: value, headers: headers)
        } else {
            Record.encode(
                into: &scratch, attributes: attributes, timestampDelta: timestamp &- base, offsetDelta: offsetDelta,
                key: key, value: value, headers: headers)
        }
        lastOffsetDelta = offsetDelta
        recordCount &+= 1
    }

    /// Appends a record as given: its deltas are kept (relative to `baseTimestamp`, 0 if unset),
    /// so a batch can be rebuilt with gaps in its offsets, as compaction leaves them.
    public mutating func append(_ record: Record) {
        let base = baseTimestamp ?? 0
        baseTimestamp = base
        let timestamp = base &+ record.timestampDelta
        if timestamp > maxTimestamp { maxTimestamp = timestamp }
        if codec == .none {
            record.encode(into: &output)
        } else {
            record.encode(into: &scratch)
        }
        if record.offsetDelta > lastOffsetDelta { lastOffsetDelta = record.offsetDelta }
        recordCount &+= 1
    }

    /// Compresses if needed, fills the header and CRC, and returns the buffer given at
    /// initialisation with the batch appended (its readable bytes are `prefix + batch`).
    public consuming func finish() throws -> ByteBuffer {
        if codec != .none {
            output.writeRepeatingByte(0, count: RecordBatchHeader.size)
            try scratch.withUnsafeReadableBytes { raw in
                try codec.compress(raw, level: compressionLevel, appendingTo: &output)
            }
        }
        let total = output.writerIndex - batchStart
        guard total <= Int(Int32.max) else {
            throw ProtocolError.unrepresentable("record batch of \(total) bytes exceeds the int32 length")
        }
        let attributes = RecordBatchHeader.attributes(
            codec: codec, timestampType: logAppendTime == nil ? .createTime : .logAppendTime,
            isTransactional: isTransactional, isControl: isControl)
        let header = RecordBatchHeader(
            baseOffset: baseOffset,
            batchLength: Int32(total - RecordBatchHeader.logOverhead),
            partitionLeaderEpoch: partitionLeaderEpoch,
            magic: RecordBatchHeader.currentMagic,
            crc: 0,
            attributes: attributes,
            lastOffsetDelta: preservedLastOffsetDelta ?? (recordCount == 0 ? 0 : lastOffsetDelta),
            baseTimestamp: baseTimestamp ?? -1,
            maxTimestamp: logAppendTime ?? maxTimestamp,
            producerId: producerId,
            producerEpoch: producerEpoch,
            baseSequence: baseSequence,
            recordCount: recordCount)
        header.set(in: &output, at: batchStart)
        try output.updateRecordBatchCRC(batchAt: batchStart)
        return output
    }
}
