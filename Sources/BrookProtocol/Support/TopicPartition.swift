/// One partition of one topic: the key of most per-partition state in the client, the broker
/// and the pipeline.
///
/// One definition for all of them (the client and the broker had one each), so a partition can
/// pass between them without conversion.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public init(_ topic: String, _ partition: Int32) {
        self.init(topic: topic, partition: partition)
    }

    /// Ordered by topic, then partition.
    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }

    /// `topic-partition`, as Kafka tools print it.
    public var description: String { "\(topic)-\(partition)" }
}
