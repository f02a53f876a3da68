import NIOCore

/// The embedded "consumer" protocol: what a member puts in JoinGroup (its subscription,
/// ``ConsumerProtocolSubscription``) and what the leader hands out through SyncGroup (each
/// member's assignment, ``ConsumerProtocolAssignment``). Both are generated from
/// `protocol/definitions/embedded`; the client writes and reads them, the broker's coordinator
/// reads subscriptions to know which topics a group consumes.
public enum ConsumerProtocol {
    /// The JoinGroup protocol type of consumers.
    public static let protocolType = "consumer"
    /// The newest subscription and assignment version Brook writes.
    public static let latestVersion: Int16 = ConsumerProtocolSubscription.versions.upperBound
}

extension ConsumerProtocolSubscription {
    /// A subscription with its owned partitions as a flat list (grouped by topic on the wire).
    /// Disfavoured so that a call both inits fit (`ownedPartitions: []`) takes the generated one,
    /// which builds the same value.
    @_disfavoredOverload
    public init(
        version: Int16 = ConsumerProtocol.latestVersion, topics: [String], userData: ByteBuffer? = nil,
        ownedPartitions: [TopicPartition], generationId: Int32 = -1, rackId: String? = nil
    ) {
        self.init(version: version, topics: topics, userData: userData, generationId: generationId, rackId: rackId)
        self.ownedTopicPartitions = ownedPartitions
    }

    /// v1+: the partitions the member owns (cooperative rebalancing), in wire order.
    public var ownedTopicPartitions: [TopicPartition] {
        get { ownedPartitions.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } } }
        set {
            ownedPartitions = groupedByTopic(newValue).map { OwnedTopicPartitions(topic: $0.topic, partitions: $0.partitions) }
        }
    }
}

extension ConsumerProtocolAssignment {
    /// An assignment of a flat list of partitions (grouped by topic on the wire).
    public init(version: Int16 = ConsumerProtocol.latestVersion, partitions: [TopicPartition], userData: ByteBuffer? = nil) {
        self.init(version: version, userData: userData)
        self.partitions = partitions
    }

    /// The assigned partitions, in wire order.
    public var partitions: [TopicPartition] {
        get { assignedPartitions.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } } }
        set {
            assignedPartitions = groupedByTopic(newValue).map { AssignedTopicPartitions(topic: $0.topic, partitions: $0.partitions) }
        }
    }
}

/// Partitions grouped by topic, topics in order of first appearance (the order Brook has always
/// written them in).
private func groupedByTopic(_ tps: [TopicPartition]) -> [(topic: String, partitions: [Int32])] {
    var order: [String] = []
    var byTopic: [String: [Int32]] = [:]
    for tp in tps {
        if byTopic[tp.topic] == nil { order.append(tp.topic) }
        byTopic[tp.topic, default: []].append(tp.partition)
    }
    return order.map { ($0, byTopic[$0]!) }
}
