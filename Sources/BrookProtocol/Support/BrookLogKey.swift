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

    // MARK: client and pipeline

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

    // MARK: broker (server, storage, group coordinator)

    public static let host = "host"
    public static let port = "port"
    public static let dataDirectory = "data_dir"
    /// Why something happened (a member left its generation, a segment was truncated, …).
    public static let reason = "reason"
    /// A static member's `group.instance.id`.
    public static let groupInstanceId = "instance"
    public static let groupProtocol = "protocol"
    public static let memberCount = "members"
    public static let groupCount = "groups"
    public static let partitionCount = "partitions"
    public static let offsetCount = "offsets"
    public static let count = "count"
    /// A partition log's directory.
    public static let logDirectory = "log"
    /// A segment file's path.
    public static let segment = "segment"
    public static let segments = "segments"
    /// A segment's base offset.
    public static let baseOffset = "base"
    /// Where one segment ends and the next begins (an offset gap between them).
    public static let segmentEnd = "end"
    public static let nextSegmentBase = "next"
    public static let bytes = "bytes"
    public static let validEnd = "validEnd"
    public static let clean = "clean"
    public static let logStartOffset = "logStartOffset"
    public static let logEndOffset = "logEndOffset"
    public static let requestedOffset = "requested"
    public static let fromOffset = "from"
    public static let toOffset = "to"
    public static let recoveredBytes = "recoveredBytes"
    public static let truncatedBytes = "truncatedBytes"
    public static let recordsRemoved = "recordsRemoved"
    public static let bytesBefore = "bytesBefore"
    public static let bytesAfter = "bytesAfter"
    public static let liveRecords = "liveRecords"
    public static let recordsBefore = "recordsBefore"
    public static let recordsAfter = "recordsAfter"
    public static let durationMs = "ms"

    // MARK: commands and services

    /// An address a server listens on, as a URL.
    public static let url = "url"
    /// A command's working directory.
    public static let directory = "dir"
    /// The Kafka listener address of `brook up`.
    public static let listen = "listen"
    /// The HTTP address of `brook up`.
    public static let http = "http"
    /// A topics-as-code change.
    public static let change = "change"
}
