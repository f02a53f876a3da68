import NIOCore

/// What ``RecordBatch/validate(options:)`` enforces beyond the format itself.
public struct RecordBatchValidationOptions: Sendable, Hashable {
    /// The bound on decompressed records (refuses decompression bombs).
    public var maxUncompressedBytes: Int
    /// Apply Kafka's rules for batches produced by clients (`AppendOrigin.CLIENT`): at least one
    /// record, offset range consistent with the count, no control batches, a sequence number
    /// whenever there is a producer id, a producer id whenever the batch is transactional.
    public var fromClient: Bool

    public init(maxUncompressedBytes: Int = RecordBatch.defaultMaxUncompressedBytes, fromClient: Bool = true) {
        self.maxUncompressedBytes = maxUncompressedBytes
        self.fromClient = fromClient
    }
}

/// What the broker needs to know about a batch it is about to append.
public struct RecordBatchSummary: Sendable, Hashable {
    public var recordCount: Int32
    /// Bytes of the whole batch as received.
    public var sizeInBytes: Int
    /// Bytes of the records area after decompression.
    public var uncompressedRecordsSize: Int
    public var codec: CompressionCodec
    public var timestampType: TimestampType
    public var baseTimestamp: Int64
    /// Smallest and largest record timestamp (`baseTimestamp + timestampDelta`); -1 without records.
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
    /// The header's `maxTimestamp` (the append time for log-append-time batches).
    public var headerMaxTimestamp: Int64
    /// Offset deltas of the first and last record (-1 without records).
    public var firstOffsetDelta: Int32
    public var lastOffsetDelta: Int32
    /// Whether the records' offset deltas are exactly 0, 1, 2, … (always so from clients).
    public var offsetDeltasAreSequential: Bool
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var isTransactional: Bool
    public var isControl: Bool
    /// False when some record has a null key (compacted topics refuse those).
    public var allRecordsHaveKeys: Bool

    public var isCompressed: Bool { codec != .none }
}

extension RecordBatch {
    /// Validates `bytes`, which must hold exactly one batch, and summarises it.
    public static func validate(
        _ bytes: ByteBuffer,
        options: RecordBatchValidationOptions = RecordBatchValidationOptions()
    ) throws -> RecordBatchSummary {
        let batch = try RecordBatch(bytes: bytes)
        guard batch.bytes.readableBytes == bytes.readableBytes else {
            throw ProtocolError.corruptRecordBatch(
                "batch length \(batch.header.batchLength) covers \(batch.bytes.readableBytes) of the \(bytes.readableBytes) bytes given")
        }
        return try batch.validate(options: options)
    }

    /// Full validation, as a broker does on produce: magic, sizes, CRC, codec, header
    /// consistency, and every record decoded (after bounded decompression) to check that the
    /// bytes hold exactly `recordCount` well-formed records with strictly increasing offset
    /// deltas within `lastOffsetDelta`. Allocates nothing for uncompressed batches.
    public func validate(options: RecordBatchValidationOptions = RecordBatchValidationOptions()) throws -> RecordBatchSummary {
        let h = header
        try verifyCRC()
        let codec = try h.codec
        guard h.recordCount >= 0 else { throw ProtocolError.corruptRecordBatch("negative record count \(h.recordCount)") }
        guard h.lastOffsetDelta >= 0 else {
            throw ProtocolError.corruptRecordBatch("negative last offset delta \(h.lastOffsetDelta)")
        }
        if options.fromClient {
            guard h.recordCount > 0 else { throw ProtocolError.corruptRecordBatch("batch has no records") }
            guard Int64(h.lastOffsetDelta) + 1 == Int64(h.recordCount) else {
                throw ProtocolError.corruptRecordBatch(
                    "offset range [0, \(h.lastOffsetDelta)] disagrees with the record count \(h.recordCount)")
            }
            guard !h.isControl else { throw ProtocolError.corruptRecordBatch("clients may not write control batches") }
            if h.hasProducerId && h.baseSequence < 0 {
                throw ProtocolError.corruptRecordBatch("producer id \(h.producerId) with invalid base sequence \(h.baseSequence)")
            }
            if h.isTransactional && !h.hasProducerId {
                throw ProtocolError.corruptRecordBatch("transactional batch without a producer id")
            }
        }

        let records = try uncompressedPayload(maxUncompressedBytes: options.maxUncompressedBytes)
        let scan = try records.withUnsafeReadableBytes { raw in
            try RecordScan.run(raw, count: Int(h.recordCount))
        }
        guard scan.lastOffsetDelta <= h.lastOffsetDelta else {
            throw ProtocolError.corruptRecordBatch(
                "record offset delta \(scan.lastOffsetDelta) beyond the batch's last offset delta \(h.lastOffsetDelta)")
        }
        return RecordBatchSummary(
            recordCount: h.recordCount,
            sizeInBytes: bytes.readableBytes,
            uncompressedRecordsSize: records.readableBytes,
            codec: codec,
            timestampType: h.timestampType,
            baseTimestamp: h.baseTimestamp,
            minTimestamp: h.recordCount == 0 ? -1 : h.baseTimestamp &+ scan.minTimestampDelta,
            maxTimestamp: h.recordCount == 0 ? -1 : h.baseTimestamp &+ scan.maxTimestampDelta,
            headerMaxTimestamp: h.maxTimestamp,
            firstOffsetDelta: scan.firstOffsetDelta,
            lastOffsetDelta: scan.lastOffsetDelta,
            offsetDeltasAreSequential: scan.sequential,
            producerId: h.producerId,
            producerEpoch: h.producerEpoch,
            baseSequence: h.baseSequence,
            isTransactional: h.isTransactional,
            isControl: h.isControl,
            allRecordsHaveKeys: scan.allKeyed)
    }
}

/// A pass over the records that checks structure and collects the summary, without
/// materialising any record.
struct RecordScan {
    var firstOffsetDelta: Int32 = -1
    var lastOffsetDelta: Int32 = -1
    var minTimestampDelta = Int64.max
    var maxTimestampDelta = Int64.min
    var sequential = true
    var allKeyed = true

    static func run(_ raw: UnsafeRawBufferPointer, count: Int) throws -> RecordScan {
        var scan = RecordScan()
        var reader = RawReader(raw)
        for i in 0..<count {
            guard reader.remaining > 0 else {
                throw ProtocolError.corruptRecordBatch("batch declares \(count) records but holds \(i)")
            }
            let r = try RecordLayout.parse(&reader)
            if i == 0 {
                guard r.offsetDelta >= 0 else {
                    throw ProtocolError.corruptRecordBatch("negative offset delta \(r.offsetDelta)")
                }
                scan.firstOffsetDelta = r.offsetDelta
            } else if r.offsetDelta <= scan.lastOffsetDelta {
                throw ProtocolError.corruptRecordBatch(
                    "offset delta \(r.offsetDelta) after \(scan.lastOffsetDelta): deltas must increase")
            }
            if r.offsetDelta != Int32(truncatingIfNeeded: i) { scan.sequential = false }
            scan.lastOffsetDelta = r.offsetDelta
            if r.timestampDelta < scan.minTimestampDelta { scan.minTimestampDelta = r.timestampDelta }
            if r.timestampDelta > scan.maxTimestampDelta { scan.maxTimestampDelta = r.timestampDelta }
            if r.keyLength < 0 { scan.allKeyed = false }
        }
        guard reader.remaining == 0 else {
            throw ProtocolError.corruptRecordBatch("\(reader.remaining) bytes left after the last of \(count) records")
        }
        return scan
    }
}
