import BrookProtocol
import NIOCore

/// One record as the consumer hands it to the application.
///
/// Key, value and header values are slices of the (decompressed) fetch response: no copies.
public struct ConsumerRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch: the producer's create time, or the broker's append time
    /// (see ``timestampType``).
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]
    /// The leader epoch of the batch the record arrived in (-1 when unknown).
    public var leaderEpoch: Int32

    public init(
        topic: String, partition: Int32, offset: Int64, timestamp: Int64, timestampType: TimestampType = .createTime,
        key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader] = [], leaderEpoch: Int32 = -1
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.timestampType = timestampType
        self.key = key
        self.value = value
        self.headers = headers
        self.leaderEpoch = leaderEpoch
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// Consecutive records of one partition, as one fetch returned them (see ``KafkaConsumer/batches``).
public struct ConsumerRecordBatch: Sendable, RandomAccessCollection {
    public let topicPartition: TopicPartition
    public let records: [ConsumerRecord]
    /// The partition's high watermark when the batch was fetched.
    public let highWatermark: Int64
    /// The offset the partition's position moves to once this batch is consumed (after the last
    /// record, and after any control records that followed it).
    public let nextOffset: Int64

    public init(topicPartition: TopicPartition, records: [ConsumerRecord], highWatermark: Int64, nextOffset: Int64) {
        self.topicPartition = topicPartition
        self.records = records
        self.highWatermark = highWatermark
        self.nextOffset = nextOffset
    }

    public var topic: String { topicPartition.topic }
    public var partition: Int32 { topicPartition.partition }
    public var startIndex: Int { records.startIndex }
    public var endIndex: Int { records.endIndex }
    public subscript(i: Int) -> ConsumerRecord { records[i] }
    /// Records between the batch's end and the high watermark when it was fetched.
    public var lag: Int64 { Swift.max(highWatermark - nextOffset, 0) }
}

/// How far a consumer is behind on one partition (``KafkaConsumer/lag()``).
public struct PartitionLag: Sendable, Equatable {
    /// The next offset the application will receive (nil until known).
    public var position: Int64?
    /// The last committed offset this consumer knows of (committed by it, or read at assignment).
    public var committed: Int64?
    /// The high watermark from the latest fetch response (nil before the first).
    public var highWatermark: Int64?
    /// The timestamp of the last record handed to the application (milliseconds since the epoch).
    public var lastConsumedTimestamp: Int64?

    /// Records behind: high watermark − position (nil until both are known).
    public var records: Int64? {
        guard let p = position, let h = highWatermark else { return nil }
        return max(h - p, 0)
    }

    /// Time behind, in milliseconds: now − timestamp of the last consumed record while records
    /// are behind; 0 when caught up; nil before the first record.
    public func timeLagMs(now: Int64) -> Int64? {
        if let r = records, r == 0 { return 0 }
        guard let t = lastConsumedTimestamp else { return nil }
        return max(now - t, 0)
    }
}

/// Errors specific to the consumer (broker errors arrive as ``KafkaClientError``).
public enum KafkaConsumerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// No committed offset (or it was out of range) and `autoOffsetReset` is `.error`.
    case noOffset(TopicPartition)
    /// The commit was refused because the group rebalanced (the partitions may belong to another
    /// member now): REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID.
    case commitFailed(String)
    /// Another consumer with the same `groupInstanceId` took over (FENCED_INSTANCE_ID).
    case fenced(String)
    /// The group membership failed for good (e.g. INCONSISTENT_GROUP_PROTOCOL).
    case groupFailure(String)
    /// The operation needs a `groupId`.
    case noGroup
    /// The partition is not assigned to this consumer.
    case notAssigned(TopicPartition)
    case invalidConfiguration(String)
    /// The consumer is closed.
    case closed

    public var description: String {
        switch self {
        case .noOffset(let tp): return "no committed offset for \(tp) and auto offset reset is 'error'"
        case .commitFailed(let s): return "commit failed: \(s)"
        case .fenced(let s): return "fenced: \(s)"
        case .groupFailure(let s): return "consumer group failure: \(s)"
        case .noGroup: return "the consumer has no group id"
        case .notAssigned(let tp): return "\(tp) is not assigned to this consumer"
        case .invalidConfiguration(let s): return "invalid consumer configuration: \(s)"
        case .closed: return "the consumer is closed"
        }
    }
}
