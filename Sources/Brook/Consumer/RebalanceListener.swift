import BrookProtocol

/// Callbacks around partition ownership changes (Kafka's `ConsumerRebalanceListener`).
///
/// They run on the consumer's group task, one at a time, while the rebalance waits for them
/// (within the rebalance timeout). Inside them the application may call
/// ``KafkaConsumer/commit()``, ``KafkaConsumer/commit(offsets:)``, ``KafkaConsumer/seek(_:to:)``
/// and ``KafkaConsumer/pause(_:)``; it must not wait for records from the consumer.
public protocol ConsumerRebalanceListener: Sendable {
    /// The partitions now belong to this consumer. With eager assignors this is the whole new
    /// assignment; with cooperative ones only the added partitions. Positions are not fetched
    /// yet: a `seek` here decides where consumption starts, otherwise the committed offset (or
    /// the reset policy) does.
    func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) async
    /// The partitions are about to go to another member: the last chance to commit what was
    /// processed. Records of these partitions are no longer handed out, and the one the
    /// application was processing (if any) has been finished. With auto-commit on, processed
    /// positions were already committed.
    func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) async
    /// The partitions were lost without an orderly revocation (the member was expelled from the
    /// group, e.g. after its session expired): other members may own them already, so
    /// committing is no longer possible. The default calls ``partitionsRevoked(_:consumer:)``,
    /// as Kafka's does.
    func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) async
}

extension ConsumerRebalanceListener {
    public func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {}
    public func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {}
    public func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {
        await partitionsRevoked(partitions, consumer: consumer)
    }
}

/// A ``ConsumerRebalanceListener`` made of closures.
public struct RebalanceCallbacks: ConsumerRebalanceListener {
    public typealias Callback = @Sendable ([TopicPartition], KafkaConsumer) async -> Void
    public var assigned: Callback?
    public var revoked: Callback?
    public var lost: Callback?

    public init(assigned: Callback? = nil, revoked: Callback? = nil, lost: Callback? = nil) {
        self.assigned = assigned
        self.revoked = revoked
        self.lost = lost
    }

    public func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {
        await assigned?(partitions, consumer)
    }

    public func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {
        await revoked?(partitions, consumer)
    }

    public func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) async {
        if let lost { await lost(partitions, consumer) } else { await revoked?(partitions, consumer) }
    }
}
