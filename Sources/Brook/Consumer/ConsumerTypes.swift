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
///
/// A struct with a ``Code`` rather than an enum (postgres-nio's `PSQLError` shape), so a new kind
/// can be added without breaking a user's exhaustive `switch`: compare ``code`` instead
/// (`catch let e as KafkaConsumerError where e.code == .fenced`).
public struct KafkaConsumerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of a ``KafkaConsumerError``. New kinds may be added; `switch` over it with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case noOffset, commitFailed, fenced, groupFailure, noGroup, notAssigned, invalidConfiguration, closed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No committed offset (or it was out of range) and `autoOffsetReset` is `.error`.
        public static let noOffset = Code(.noOffset)
        /// The commit was refused because the group rebalanced (the partitions may belong to another
        /// member now): REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID.
        public static let commitFailed = Code(.commitFailed)
        /// Another consumer with the same `groupInstanceId` took over (FENCED_INSTANCE_ID).
        public static let fenced = Code(.fenced)
        /// The group membership failed for good (e.g. INCONSISTENT_GROUP_PROTOCOL).
        public static let groupFailure = Code(.groupFailure)
        /// The operation needs a `groupId`.
        public static let noGroup = Code(.noGroup)
        /// The partition is not assigned to this consumer.
        public static let notAssigned = Code(.notAssigned)
        /// The consumer configuration or the call's arguments are not usable.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The consumer is closed.
        public static let closed = Code(.closed)

        public var description: String {
            switch base {
            case .noOffset: return "noOffset"
            case .commitFailed: return "commitFailed"
            case .fenced: return "fenced"
            case .groupFailure: return "groupFailure"
            case .noGroup: return "noGroup"
            case .notAssigned: return "notAssigned"
            case .invalidConfiguration: return "invalidConfiguration"
            case .closed: return "closed"
            }
        }
    }

    /// The kind of error.
    public var code: Code
    /// The partition the error is about (``Code/noOffset``, ``Code/notAssigned``).
    public var topicPartition: TopicPartition?
    /// What went wrong, for the kinds that say more than their code.
    public var message: String?

    /// Makes an error of any kind; the static functions below name the usual ones.
    public init(code: Code, topicPartition: TopicPartition? = nil, message: String? = nil) {
        self.code = code
        self.topicPartition = topicPartition
        self.message = message
    }

    /// No committed offset (or it was out of range) and `autoOffsetReset` is `.error`.
    public static func noOffset(_ tp: TopicPartition) -> KafkaConsumerError { KafkaConsumerError(code: .noOffset, topicPartition: tp) }
    /// The commit was refused because the group rebalanced.
    public static func commitFailed(_ message: String) -> KafkaConsumerError { KafkaConsumerError(code: .commitFailed, message: message) }
    /// Another consumer with the same `groupInstanceId` took over (FENCED_INSTANCE_ID).
    public static func fenced(_ message: String) -> KafkaConsumerError { KafkaConsumerError(code: .fenced, message: message) }
    /// The group membership failed for good.
    public static func groupFailure(_ message: String) -> KafkaConsumerError { KafkaConsumerError(code: .groupFailure, message: message) }
    /// The operation needs a `groupId`.
    public static var noGroup: KafkaConsumerError { KafkaConsumerError(code: .noGroup) }
    /// The partition is not assigned to this consumer.
    public static func notAssigned(_ tp: TopicPartition) -> KafkaConsumerError { KafkaConsumerError(code: .notAssigned, topicPartition: tp) }
    /// The consumer configuration or the call's arguments are not usable.
    public static func invalidConfiguration(_ message: String) -> KafkaConsumerError { KafkaConsumerError(code: .invalidConfiguration, message: message) }
    /// The consumer is closed.
    public static var closed: KafkaConsumerError { KafkaConsumerError(code: .closed) }

    public var description: String {
        let s = message ?? ""
        let tp = topicPartition.map { "\($0)" } ?? "?"
        switch code {
        case .noOffset: return "no committed offset for \(tp) and auto offset reset is 'error'"
        case .commitFailed: return "commit failed: \(s)"
        case .fenced: return "fenced: \(s)"
        case .groupFailure: return "consumer group failure: \(s)"
        case .noGroup: return "the consumer has no group id"
        case .notAssigned: return "\(tp) is not assigned to this consumer"
        case .invalidConfiguration: return "invalid consumer configuration: \(s)"
        case .closed: return "the consumer is closed"
        default: return "\(code): \(s)"
        }
    }
}
