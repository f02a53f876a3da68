import BrookProtocol
import NIOCore

/// The records of the internal `__consumer_offsets` topic, in Kafka's own encoding, so that tools
/// reading that topic (`kafka-console-consumer --formatter OffsetsMessageFormatter`, kcat, …)
/// understand what Brook writes and Brook understands what Kafka wrote.
///
/// Keys start with an int16 version that names the record type:
/// - 0 and 1: an offset commit, `(group string, topic string, partition int32)`;
/// - 2: group metadata, `(group string)`;
/// - 3 and above: records of the KIP-848 consumer protocol, which Brook skips.
///
/// Values start with an int16 version of their own. Brook writes `OffsetCommitValue` v3 and
/// `GroupMetadataValue` v3 (the classic, non-flexible encodings: int16-length strings, int32-length
/// bytes and arrays) and reads every version from 0 to 4 (4 being the flexible one). A null value
/// is a tombstone: the key was deleted.
public enum ConsumerOffsets {
    public static let topicName = "__consumer_offsets"

    /// The key version Brook writes for offset commits.
    public static let offsetCommitKeyVersion: Int16 = 1
    /// The key version of group metadata.
    public static let groupMetadataKeyVersion: Int16 = 2
    /// The value versions Brook writes.
    public static let offsetCommitValueVersion: Int16 = 3
    public static let groupMetadataValueVersion: Int16 = 3

    public struct OffsetCommitKey: Hashable, Sendable {
        public var group: String
        public var topic: String
        public var partition: Int32

        public init(group: String, topic: String, partition: Int32) {
            self.group = group
            self.topic = topic
            self.partition = partition
        }
    }

    public struct OffsetCommitValue: Hashable, Sendable {
        public var offset: Int64
        /// -1 when unknown (and in versions before 3).
        public var leaderEpoch: Int32
        public var metadata: String
        public var commitTimestamp: Int64
        /// Only in version 1 (explicit per-commit retention of old clients); nil otherwise.
        public var expireTimestamp: Int64?

        public init(offset: Int64, leaderEpoch: Int32 = -1, metadata: String = "", commitTimestamp: Int64, expireTimestamp: Int64? = nil) {
            self.offset = offset
            self.leaderEpoch = leaderEpoch
            self.metadata = metadata
            self.commitTimestamp = commitTimestamp
            self.expireTimestamp = expireTimestamp
        }
    }

    public struct MemberMetadata: Hashable, Sendable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        public var rebalanceTimeoutMs: Int32
        public var sessionTimeoutMs: Int32
        /// The member's metadata for the group's selected protocol (for consumers, the subscription).
        public var subscription: ByteBuffer
        public var assignment: ByteBuffer

        public init(
            memberId: String, groupInstanceId: String?, clientId: String, clientHost: String,
            rebalanceTimeoutMs: Int32, sessionTimeoutMs: Int32, subscription: ByteBuffer, assignment: ByteBuffer
        ) {
            self.memberId = memberId
            self.groupInstanceId = groupInstanceId
            self.clientId = clientId
            self.clientHost = clientHost
            self.rebalanceTimeoutMs = rebalanceTimeoutMs
            self.sessionTimeoutMs = sessionTimeoutMs
            self.subscription = subscription
            self.assignment = assignment
        }
    }

    public struct GroupMetadataValue: Hashable, Sendable {
        /// "" for groups used only to store offsets.
        public var protocolType: String
        public var generation: Int32
        public var protocolName: String?
        public var leader: String?
        /// When the group entered its current state; -1 when unknown (versions before 2).
        public var currentStateTimestamp: Int64
        public var members: [MemberMetadata]

        public init(protocolType: String, generation: Int32, protocolName: String?, leader: String?, currentStateTimestamp: Int64, members: [MemberMetadata]) {
            self.protocolType = protocolType
            self.generation = generation
            self.protocolName = protocolName
            self.leader = leader
            self.currentStateTimestamp = currentStateTimestamp
            self.members = members
        }
    }

    public enum Key: Hashable, Sendable {
        case offsetCommit(OffsetCommitKey)
        case groupMetadata(group: String)
    }

    /// One record of the topic; a nil value is a tombstone.
    public enum Record: Hashable, Sendable {
        case offsetCommit(OffsetCommitKey, OffsetCommitValue?)
        case groupMetadata(group: String, GroupMetadataValue?)

        public var key: Key {
            switch self {
            case .offsetCommit(let k, _): return .offsetCommit(k)
            case .groupMetadata(let g, _): return .groupMetadata(group: g)
            }
        }

        public var isTombstone: Bool {
            switch self {
            case .offsetCommit(_, let v): return v == nil
            case .groupMetadata(_, let v): return v == nil
            }
        }

        public func encodeKey(into buf: inout ByteBuffer) {
            switch self {
            case .offsetCommit(let k, _): ConsumerOffsets.encode(k, into: &buf)
            case .groupMetadata(let g, _): ConsumerOffsets.encodeGroupMetadataKey(group: g, into: &buf)
            }
        }

        /// Writes the value; returns false (writing nothing) for a tombstone.
        @discardableResult
        public func encodeValue(into buf: inout ByteBuffer) -> Bool {
            switch self {
            case .offsetCommit(_, let v?): ConsumerOffsets.encode(v, into: &buf); return true
            case .groupMetadata(_, let v?): ConsumerOffsets.encode(v, into: &buf); return true
            default: return false
            }
        }

        /// Decodes a record; nil for record types Brook does not handle (key versions 3+).
        public static func decode(key: ByteBuffer, value: ByteBuffer?) throws -> Record? {
            guard let k = try ConsumerOffsets.decodeKey(key) else { return nil }
            switch k {
            case .offsetCommit(let key):
                return .offsetCommit(key, try value.map { try ConsumerOffsets.decodeOffsetCommitValue($0) })
            case .groupMetadata(let group):
                return .groupMetadata(group: group, try value.map { try ConsumerOffsets.decodeGroupMetadataValue($0) })
            }
        }
    }

    // MARK: - keys

    public static func encode(_ key: OffsetCommitKey, into buf: inout ByteBuffer) {
        buf.writeInteger(offsetCommitKeyVersion)
        buf.writeKafkaString(key.group, compact: false)
        buf.writeKafkaString(key.topic, compact: false)
        buf.writeInteger(key.partition)
    }

    public static func encodeGroupMetadataKey(group: String, into buf: inout ByteBuffer) {
        buf.writeInteger(groupMetadataKeyVersion)
        buf.writeKafkaString(group, compact: false)
    }

    /// Decodes a key; nil for key versions Brook does not handle (3 and above).
    public static func decodeKey(_ buffer: ByteBuffer) throws -> Key? {
        var buf = buffer
        let version = try buf.readKafkaInt(Int16.self, "key version")
        switch version {
        case 0, 1:
            let group = try buf.readKafkaString(compact: false, "group")
            let topic = try buf.readKafkaString(compact: false, "topic")
            let partition = try buf.readKafkaInt(Int32.self, "partition")
            return .offsetCommit(OffsetCommitKey(group: group, topic: topic, partition: partition))
        case 2:
            return .groupMetadata(group: try buf.readKafkaString(compact: false, "group"))
        default:
            return nil
        }
    }

    // MARK: - offset commit values

    public static func encode(_ value: OffsetCommitValue, into buf: inout ByteBuffer) {
        buf.writeInteger(offsetCommitValueVersion)
        buf.writeInteger(value.offset)
        buf.writeInteger(value.leaderEpoch)
        buf.writeKafkaString(value.metadata, compact: false)
        buf.writeInteger(value.commitTimestamp)
    }

    public static func decodeOffsetCommitValue(_ buffer: ByteBuffer) throws -> OffsetCommitValue {
        var buf = buffer
        let version = try buf.readKafkaInt(Int16.self, "value version")
        guard (0...4).contains(version) else {
            throw ProtocolError.invalidLength(field: "OffsetCommitValue version", length: Int(version))
        }
        let flexible = version >= 4
        let offset = try buf.readKafkaInt(Int64.self, "offset")
        let leaderEpoch: Int32 = version >= 3 ? try buf.readKafkaInt(Int32.self, "leaderEpoch") : -1
        let metadata = try buf.readKafkaString(compact: flexible, "metadata")
        let commitTimestamp = try buf.readKafkaInt(Int64.self, "commitTimestamp")
        var expire: Int64? = nil
        if version == 1 {
            let e = try buf.readKafkaInt(Int64.self, "expireTimestamp")
            expire = e < 0 ? nil : e
        }
        if flexible { _ = try buf.readTaggedFields { _, _ in false } }
        return OffsetCommitValue(offset: offset, leaderEpoch: leaderEpoch, metadata: metadata, commitTimestamp: commitTimestamp, expireTimestamp: expire)
    }

    // MARK: - group metadata values

    public static func encode(_ value: GroupMetadataValue, into buf: inout ByteBuffer) {
        buf.writeInteger(groupMetadataValueVersion)
        buf.writeKafkaString(value.protocolType, compact: false)
        buf.writeInteger(value.generation)
        buf.writeKafkaString(value.protocolName, compact: false)
        buf.writeKafkaString(value.leader, compact: false)
        buf.writeInteger(value.currentStateTimestamp)
        buf.writeKafkaLength(value.members.count, compact: false, wide: true)
        for m in value.members {
            buf.writeKafkaString(m.memberId, compact: false)
            buf.writeKafkaString(m.groupInstanceId, compact: false)
            buf.writeKafkaString(m.clientId, compact: false)
            buf.writeKafkaString(m.clientHost, compact: false)
            buf.writeInteger(m.rebalanceTimeoutMs)
            buf.writeInteger(m.sessionTimeoutMs)
            buf.writeKafkaBytes(m.subscription, compact: false)
            buf.writeKafkaBytes(m.assignment, compact: false)
        }
    }

    public static func decodeGroupMetadataValue(_ buffer: ByteBuffer) throws -> GroupMetadataValue {
        var buf = buffer
        let version = try buf.readKafkaInt(Int16.self, "value version")
        guard (0...4).contains(version) else {
            throw ProtocolError.invalidLength(field: "GroupMetadataValue version", length: Int(version))
        }
        let flexible = version >= 4
        let protocolType = try buf.readKafkaString(compact: flexible, "protocolType")
        let generation = try buf.readKafkaInt(Int32.self, "generation")
        let protocolName = try buf.readKafkaNullableString(compact: flexible, "protocol")
        let leader = try buf.readKafkaNullableString(compact: flexible, "leader")
        let timestamp: Int64 = version >= 2 ? try buf.readKafkaInt(Int64.self, "currentStateTimestamp") : -1
        let n = try buf.readKafkaLength(compact: flexible, wide: true, field: "members", minBytesPerElement: 8)
        var members: [MemberMetadata] = []
        members.reserveCapacity(max(n, 0))
        for _ in 0..<max(n, 0) {
            let memberId = try buf.readKafkaString(compact: flexible, "memberId")
            let instanceId: String? = version >= 3 ? try buf.readKafkaNullableString(compact: flexible, "groupInstanceId") : nil
            let clientId = try buf.readKafkaString(compact: flexible, "clientId")
            let clientHost = try buf.readKafkaString(compact: flexible, "clientHost")
            var rebalanceTimeout: Int32 = -1
            if version >= 1 { rebalanceTimeout = try buf.readKafkaInt(Int32.self, "rebalanceTimeout") }
            let sessionTimeout = try buf.readKafkaInt(Int32.self, "sessionTimeout")
            if version < 1 { rebalanceTimeout = sessionTimeout }
            let subscription = try buf.readKafkaBytes(compact: flexible, "subscription")
            let assignment = try buf.readKafkaBytes(compact: flexible, "assignment")
            if flexible { _ = try buf.readTaggedFields { _, _ in false } }
            members.append(
                MemberMetadata(
                    memberId: memberId, groupInstanceId: instanceId, clientId: clientId, clientHost: clientHost,
                    rebalanceTimeoutMs: rebalanceTimeout, sessionTimeoutMs: sessionTimeout,
                    subscription: subscription, assignment: assignment))
        }
        if flexible { _ = try buf.readTaggedFields { _, _ in false } }
        return GroupMetadataValue(
            protocolType: protocolType, generation: generation, protocolName: protocolName, leader: leader,
            currentStateTimestamp: timestamp, members: members)
    }

    // MARK: - batches

    /// Encodes records as uncompressed record batches (magic 2) of about `maxBatchBytes` each,
    /// all appended to one buffer, as `OffsetsLog.appendDurably` takes them.
    public static func encodeBatches(_ records: [Record], timestamp: Int64, maxBatchBytes: Int = 1 << 20) throws -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: min(maxBatchBytes, 64 + records.count * 96))
        var scratchKey = ByteBufferAllocator().buffer(capacity: 128)
        var scratchValue = ByteBufferAllocator().buffer(capacity: 256)
        var i = 0
        while i < records.count {
            var builder = RecordBatchBuilder(appendingTo: out)
            out = ByteBuffer()
            repeat {
                let r = records[i]
                scratchKey.clear()
                scratchValue.clear()
                r.encodeKey(into: &scratchKey)
                let hasValue = r.encodeValue(into: &scratchValue)
                builder.append(timestamp: timestamp, key: scratchKey, value: hasValue ? scratchValue : nil)
                i += 1
            } while i < records.count && builder.uncompressedSize < maxBatchBytes
            out = try builder.finish()
        }
        return out
    }
}
