/// Settings of the classic group coordinator. Defaults follow Kafka's broker settings where Kafka
/// has one (named in each comment).
public struct GroupCoordinatorConfig: Sendable {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits for
    /// more members, extended by this much (up to the rebalance timeout) each time one joins.
    public var initialRebalanceDelayMs: Int64 = 3000
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`: JoinGroup outside these
    /// bounds fails with INVALID_SESSION_TIMEOUT.
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// `group.max.size`: new members beyond this get GROUP_MAX_SIZE_REACHED.
    public var maxGroupSize: Int = Int(Int32.max)
    /// `offsets.retention.minutes` (7 days): committed offsets of an empty group expire this long
    /// after the group became empty (standalone consumers: after the last commit).
    public var offsetsRetentionMs: Int64 = 7 * 24 * 3600 * 1000
    /// `offsets.retention.check.interval.ms`: how often expired offsets and dead groups are removed.
    public var offsetsRetentionCheckIntervalMs: Int64 = 600_000
    /// `offset.metadata.max.bytes`: a longer commit metadata string gets OFFSET_METADATA_TOO_LARGE.
    public var offsetMetadataMaxBytes: Int = 4096
    /// How long a member that joined without a member id may wait in a rebalance before it is
    /// dropped (Kafka's fixed 5 minutes; such a member cannot heartbeat yet).
    public var newMemberJoinTimeoutMs: Int64 = 300_000

    /// Compaction threshold: the offsets log is compacted (live state rewritten as a snapshot and
    /// the prefix deleted) once it holds more than this many records *and* more than
    /// ``compactionRatio`` times the number of live keys.
    public var compactionThresholdRecords: Int64 = 10_000
    public var compactionRatio: Double = 2
    /// Upper bound of one record batch written to the offsets log (`offsets.load.buffer.size`
    /// is its read-side counterpart).
    public var maxBatchBytes: Int = 1 << 20
    /// Bytes read at a time while loading (`offsets.load.buffer.size`, 5 MiB in Kafka).
    public var loadBufferBytes: Int = 5 << 20
    /// How often `run()` checks session timeouts and rebalance deadlines (the granularity of
    /// every timer of the coordinator).
    public var tickIntervalMs: Int64 = 100

    public init(
        initialRebalanceDelayMs: Int64 = 3000,
        minSessionTimeoutMs: Int32 = 6000,
        maxSessionTimeoutMs: Int32 = 1_800_000,
        offsetsRetentionMs: Int64 = 7 * 24 * 3600 * 1000,
        compactionThresholdRecords: Int64 = 10_000
    ) {
        self.initialRebalanceDelayMs = initialRebalanceDelayMs
        self.minSessionTimeoutMs = minSessionTimeoutMs
        self.maxSessionTimeoutMs = maxSessionTimeoutMs
        self.offsetsRetentionMs = offsetsRetentionMs
        self.compactionThresholdRecords = compactionThresholdRecords
    }
}
