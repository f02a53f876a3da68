import BrookProtocol

/// Per-partition storage settings, changeable at runtime with `PartitionLog.updateConfig(_:)`.
/// Defaults are Kafka's; field names follow the topic configs in parentheses.
public struct LogConfig: Sendable, Equatable {
    /// Roll to a new segment before one exceeds this size (`segment.bytes`, 1 GiB). Capped at
    /// 2 GiB - 1 because index positions are 32-bit.
    public var segmentBytes: Int = 1 << 30
    /// Roll a non-empty segment once it is this old (`segment.ms`, 7 days).
    public var segmentMs: Int64 = 7 * 24 * 3_600_000
    /// Delete sealed segments whose newest timestamp is older than this (`retention.ms`, 7 days;
    /// -1 keeps them forever).
    public var retentionMs: Int64 = 7 * 24 * 3_600_000
    /// Delete the oldest sealed segments while the log is larger than this (`retention.bytes`,
    /// -1 = unlimited).
    public var retentionBytes: Int64 = -1
    /// Bytes of log between sparse index entries (`index.interval.bytes`, 4096).
    public var indexIntervalBytes: Int = 4096
    /// Largest batch accepted by `append` (`max.message.bytes`, 1 MiB + 12).
    public var maxMessageBytes: Int = 1_048_588
    /// What acknowledgement waits for. The log itself never fsyncs on append; with `.os`,
    /// maintenance still fsyncs sealed segments so recovery only rescans the active one.
    public var flushPolicy: FlushPolicy = .fsync
    /// `cleanup.policy` contains `compact`: maintenance keeps only the latest record per key in
    /// sealed segments (see `PartitionLog.compact`).
    public var compact = false
    /// How long a tombstone (null value) survives compaction, so consumers see the delete
    /// (`delete.retention.ms`, 1 day).
    public var deleteRetentionMs: Int64 = 86_400_000

    public init() {}

    /// `segmentBytes` clamped to what 32-bit index positions can address.
    var effectiveSegmentBytes: Int { max(RecordBatchHeader.size, min(segmentBytes, Int(Int32.max))) }
}

/// What `PartitionLog.append` did.
public struct AppendInfo: Sendable, Equatable {
    /// Offset assigned to the first record of the first batch.
    public var firstOffset: Int64
    /// Offset of the last record of the last batch.
    public var lastOffset: Int64
    /// `lastOffset + 1`, the log end offset right after this append.
    public var logEndOffset: Int64
    /// Log start offset at the time of the append (Produce v5+ returns it).
    public var logStartOffset: Int64
    /// The log append time written into the batches, or -1 for CreateTime.
    public var logAppendTime: Int64
    public var batchCount: Int
    /// Sum of the batches' `recordCount` fields.
    public var recordCount: Int
    public var bytes: Int
}

/// A (timestamp, offset) pair answered by time lookups.
public struct TimestampAndOffset: Sendable, Equatable {
    public var timestamp: Int64
    public var offset: Int64

    public init(timestamp: Int64, offset: Int64) {
        self.timestamp = timestamp
        self.offset = offset
    }
}

/// What one `PartitionLog.runMaintenance` pass did.
public struct MaintenanceResult: Sendable, Equatable {
    public var rolled = false
    public var deletedSegments = 0
    public var deletedBytes = 0
    public var compaction = CompactionResult()
    public init() {}
}
