import BrookProtocol
import NIOCore

/// The embedded "consumer" protocol: what a member puts in JoinGroup (its subscription) and
/// what the leader hands out through SyncGroup (each member's assignment). Kafka's
/// `ConsumerProtocolSubscription.json` / `ConsumerProtocolAssignment.json`; never flexible.
public enum ConsumerProtocol {
    /// The JoinGroup protocol type of consumers.
    public static let protocolType = "consumer"
    /// The newest subscription and assignment version Brook writes.
    public static let latestVersion: Int16 = 3
}

/// A member's subscription (versions 0–3):
/// ```
/// version int16 | topics [string] | userData nullable bytes
///   | v1+: ownedPartitions [topic string | partitions [int32]]
///   | v2+: generationId int32 | v3+: rackId nullable string
/// ```
/// Readers of a newer version read the fields they know and ignore the rest, as Kafka's do.
public struct ConsumerProtocolSubscription: Sendable, Equatable {
    public var version: Int16
    public var topics: [String]
    public var userData: ByteBuffer?
    /// v1+: the partitions the member owns (cooperative rebalancing).
    public var ownedPartitions: [TopicPartition]
    /// v2+: the generation in which the member got `ownedPartitions` (-1 when unknown).
    public var generationId: Int32
    /// v3+: `client.rack`.
    public var rackId: String?

    public init(
        version: Int16 = ConsumerProtocol.latestVersion, topics: [String], userData: ByteBuffer? = nil,
        ownedPartitions: [TopicPartition] = [], generationId: Int32 = -1, rackId: String? = nil
    ) {
        self.version = version
        self.topics = topics
        self.userData = userData
        self.ownedPartitions = ownedPartitions
        self.generationId = generationId
        self.rackId = rackId
    }

    public func encode() -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 64)
        buf.writeInteger(version)
        buf.writeKafkaLength(topics.count, compact: false, wide: true)
        for t in topics { buf.writeKafkaString(t, compact: false) }
        buf.writeKafkaBytes(userData, compact: false)
        if version >= 1 { writeTopicPartitions(ownedPartitions, into: &buf) }
        if version >= 2 { buf.writeInteger(generationId) }
        if version >= 3 { buf.writeKafkaString(rackId, compact: false) }
        return buf
    }

    public init(decoding bytes: ByteBuffer) throws {
        var buf = bytes
        version = try buf.readKafkaInt(Int16.self, "version")
        guard version >= 0 else { throw ProtocolError.invalidLength(field: "subscription version", length: Int(version)) }
        let n = try buf.readKafkaLength(compact: false, wide: true, field: "topics", minBytesPerElement: 2)
        var topics: [String] = []
        topics.reserveCapacity(max(n, 0))
        for _ in 0..<max(n, 0) { topics.append(try buf.readKafkaString(compact: false, "topic")) }
        self.topics = topics
        userData = try buf.readKafkaNullableBytes(compact: false, "userData")
        ownedPartitions = version >= 1 ? try readTopicPartitions(from: &buf) : []
        generationId = version >= 2 ? try buf.readKafkaInt(Int32.self, "generationId") : -1
        rackId = version >= 3 ? try buf.readKafkaNullableString(compact: false, "rackId") : nil
    }
}

/// A member's assignment (versions 0–3 share one layout):
/// ```
/// version int16 | assignedPartitions [topic string | partitions [int32]] | userData nullable bytes
/// ```
public struct ConsumerProtocolAssignment: Sendable, Equatable {
    public var version: Int16
    public var partitions: [TopicPartition]
    public var userData: ByteBuffer?

    public init(version: Int16 = ConsumerProtocol.latestVersion, partitions: [TopicPartition], userData: ByteBuffer? = nil) {
        self.version = version
        self.partitions = partitions
        self.userData = userData
    }

    public func encode() -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 64)
        buf.writeInteger(version)
        writeTopicPartitions(partitions, into: &buf)
        buf.writeKafkaBytes(userData, compact: false)
        return buf
    }

    /// Decodes an assignment; an empty buffer (a member the leader gave nothing, as some
    /// clients send it) is an empty assignment.
    public init(decoding bytes: ByteBuffer) throws {
        var buf = bytes
        guard buf.readableBytes > 0 else {
            self.init(version: 0, partitions: [])
            return
        }
        let version = try buf.readKafkaInt(Int16.self, "version")
        guard version >= 0 else { throw ProtocolError.invalidLength(field: "assignment version", length: Int(version)) }
        let partitions = try readTopicPartitions(from: &buf)
        let userData = buf.readableBytes > 0 ? try buf.readKafkaNullableBytes(compact: false, "userData") : nil
        self.init(version: version, partitions: partitions, userData: userData)
    }
}

/// `[topic string | partitions [int32]]`, grouped by topic in order of first appearance.
private func writeTopicPartitions(_ tps: [TopicPartition], into buf: inout ByteBuffer) {
    var order: [String] = []
    var byTopic: [String: [Int32]] = [:]
    for tp in tps {
        if byTopic[tp.topic] == nil { order.append(tp.topic) }
        byTopic[tp.topic, default: []].append(tp.partition)
    }
    buf.writeKafkaLength(order.count, compact: false, wide: true)
    for t in order {
        buf.writeKafkaString(t, compact: false)
        let ps = byTopic[t]!
        buf.writeKafkaLength(ps.count, compact: false, wide: true)
        for p in ps { buf.writeInteger(p) }
    }
}

private func readTopicPartitions(from buf: inout ByteBuffer) throws -> [TopicPartition] {
    let n = try buf.readKafkaLength(compact: false, wide: true, field: "topic partitions", minBytesPerElement: 6)
    var result: [TopicPartition] = []
    for _ in 0..<max(n, 0) {
        let topic = try buf.readKafkaString(compact: false, "topic")
        let m = try buf.readKafkaLength(compact: false, wide: true, field: "partitions", minBytesPerElement: 4)
        for _ in 0..<max(m, 0) {
            result.append(TopicPartition(topic: topic, partition: try buf.readKafkaInt(Int32.self, "partition")))
        }
    }
    return result
}
