/// One look at a cluster's consumer groups: what ``LagCollector`` reads through the Kafka API
/// and ``LagEvaluator`` evaluates. Plain values, so tests build them by hand.
public struct LagObservation: Sendable, Hashable {
    /// When the observation was taken (milliseconds since the epoch): the evaluator's clock.
    public var timeMs: Int64
    public var groups: [GroupObservation]

    public init(timeMs: Int64, groups: [GroupObservation]) {
        self.timeMs = timeMs
        self.groups = groups
    }
}

/// One consumer group in an observation.
public struct GroupObservation: Sendable, Hashable {
    public var group: String
    /// The coordinator's state: `Stable`, `Empty`, `PreparingRebalance`, ….
    public var state: String
    public var partitions: [PartitionObservation]

    public init(group: String, state: String = "Stable", partitions: [PartitionObservation]) {
        self.group = group
        self.state = state
        self.partitions = partitions
    }
}

/// The member that owns a partition (DescribeGroups' member id, host and client id).
public struct PartitionOwner: Sendable, Hashable, Codable {
    public var consumerId: String
    public var host: String
    public var clientId: String

    public init(consumerId: String, host: String, clientId: String) {
        self.consumerId = consumerId
        self.host = host
        self.clientId = clientId
    }

    enum CodingKeys: String, CodingKey { case consumerId = "consumer_id", host, clientId = "client_id" }
}

/// One partition of a group in an observation.
public struct PartitionObservation: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// The group's committed offset (OffsetFetch); nil when it has none for this partition.
    public var committedOffset: Int64?
    /// The log end offset (ListOffsets latest).
    public var logEndOffset: Int64
    /// The log start offset (ListOffsets earliest).
    public var logStartOffset: Int64
    /// The timestamp of the first record at or after the committed offset (a Fetch there); nil
    /// when the group is caught up or the read found nothing.
    public var firstUnconsumedTimestampMs: Int64?
    /// The live member the partition is assigned to; nil when no member owns it.
    public var owner: PartitionOwner?

    public init(topic: String, partition: Int32, committedOffset: Int64?, logEndOffset: Int64, logStartOffset: Int64 = 0,
                firstUnconsumedTimestampMs: Int64? = nil, owner: PartitionOwner? = nil) {
        self.topic = topic
        self.partition = partition
        self.committedOffset = committedOffset
        self.logEndOffset = logEndOffset
        self.logStartOffset = logStartOffset
        self.firstUnconsumedTimestampMs = firstUnconsumedTimestampMs
        self.owner = owner
    }

    /// Records not consumed yet: log end minus committed, never negative; nil without a commit.
    public var lag: Int64? { committedOffset.map { max(0, logEndOffset - $0) } }
}
