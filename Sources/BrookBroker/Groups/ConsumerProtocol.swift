import BrookProtocol
import NIOCore

/// The embedded "consumer" protocol that Kafka clients carry opaquely inside JoinGroup and
/// SyncGroup: the coordinator only reads subscriptions, to know which topics a group consumes
/// (for OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC and for offset expiry).
///
/// `ConsumerProtocolSubscription` (versions 0–3, never flexible):
/// ```
/// version int16 | topics [string] | userData nullable bytes
///   | v1+: ownedPartitions [topic string, partitions [int32]] | v2+: generationId int32 | v3+: rackId nullable string
/// ```
/// Every version starts with the topics, which is all that is read here.
enum ConsumerProtocol {
    static let protocolType = "consumer"

    /// The topics of a subscription, or nil when the bytes are not a consumer subscription.
    static func subscribedTopics(_ metadata: ByteBuffer) -> [String]? {
        var buf = metadata
        guard let version = try? buf.readKafkaInt(Int16.self, "version"), version >= 0 else { return nil }
        guard let n = try? buf.readKafkaLength(compact: false, wide: true, field: "topics", minBytesPerElement: 2), n >= 0 else {
            return nil
        }
        var topics: [String] = []
        topics.reserveCapacity(n)
        for _ in 0..<n {
            guard let t = try? buf.readKafkaString(compact: false, "topic") else { return nil }
            topics.append(t)
        }
        return topics
    }

    /// Encodes a version-0 subscription (for tests and tools).
    static func subscription(topics: [String], userData: ByteBuffer? = nil) -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 32)
        buf.writeInteger(Int16(0))
        buf.writeKafkaLength(topics.count, compact: false, wide: true)
        for t in topics { buf.writeKafkaString(t, compact: false) }
        buf.writeKafkaBytes(userData, compact: false)
        return buf
    }
}
