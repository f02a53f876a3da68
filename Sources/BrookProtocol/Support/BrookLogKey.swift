/// The metadata keys of Brook's log lines, in one place for the broker, the client and the
/// pipeline, so a log search for `kafka.partition=3 kafka.offset=1200` finds every line about
/// that record whichever part wrote it.
public enum BrookLogKey {
    public static let connection = "kafka.connection"
    public static let clientId = "kafka.client_id"
    public static let api = "kafka.api"
    public static let node = "kafka.node"
    public static let broker = "kafka.broker"
    public static let topic = "kafka.topic"
    public static let partition = "kafka.partition"
    public static let offset = "kafka.offset"
    public static let key = "kafka.key"
    public static let group = "kafka.group"
    public static let memberId = "kafka.member_id"
    public static let generation = "kafka.generation"
    public static let producerId = "kafka.producer_id"
    public static let producerEpoch = "kafka.producer_epoch"
    public static let sequence = "kafka.sequence"
    public static let records = "records"
    public static let attempt = "attempt"
    public static let error = "error"
    public static let message = "message"
    /// Why a member left its generation (commit, heartbeat, …).
    public static let reason = "reason"
    /// A list of partitions (assigned, revoked, lost), or a count of them.
    public static let partitions = "partitions"
    /// Committed or restored positions, as `topic-partition@offset`.
    public static let offsets = "offsets"
    /// The timestamp an offset was looked up for.
    public static let timestamp = "timestamp"
    /// Partition counts of the subscribed topics before and after a change.
    public static let partitionCountsBefore = "before"
    public static let partitionCountsNow = "now"
    /// Records in a batch handed to a sink.
    public static let batchRecords = "batch.records"
}
