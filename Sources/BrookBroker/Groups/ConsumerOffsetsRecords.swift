import BrookProtocol
import NIOCore

/// The records of the internal `__consumer_offsets` topic, in Kafka's own encoding, so that tools
/// reading that topic (`kafka-console-consumer --formatter OffsetsMessageFormatter`, kcat, …)
/// understand what Brook writes and Brook understands what Kafka wrote. The keys and values
/// (`OffsetCommitKey`, `OffsetCommitValue`, `GroupMetadataKey`, `GroupMetadataValue`) are
/// generated from `protocol/definitions/embedded`; this type pairs them into records.
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

        /// Writes the key at the version Brook writes, whatever version it was read at.
        public func encodeKey(into buf: inout ByteBuffer) {
            switch self {
            case .offsetCommit(let k, _): k.encode(into: &buf, version: offsetCommitKeyVersion)
            case .groupMetadata(let g, _): GroupMetadataKey(group: g).encode(into: &buf, version: groupMetadataKeyVersion)
            }
        }

        /// Writes the value at the version Brook writes (a value read at an older version is
        /// rewritten in the current one); returns false (writing nothing) for a tombstone.
        @discardableResult
        public func encodeValue(into buf: inout ByteBuffer) -> Bool {
            switch self {
            case .offsetCommit(_, let v?): v.encode(into: &buf, version: offsetCommitValueVersion); return true
            case .groupMetadata(_, let v?): v.encode(into: &buf, version: groupMetadataValueVersion); return true
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

    // MARK: - keys and values

    /// Decodes a key; nil for key versions Brook does not handle (3 and above).
    public static func decodeKey(_ buffer: ByteBuffer) throws -> Key? {
        var peek = buffer
        switch try peek.readKafkaInt(Int16.self, "key version") {
        case OffsetCommitKey.versions:
            // Versions 0 and 1 name the same record: keys compare equal whichever was read.
            var key = try OffsetCommitKey(decoding: buffer)
            key.version = offsetCommitKeyVersion
            return .offsetCommit(key)
        case GroupMetadataKey.versions:
            return .groupMetadata(group: try GroupMetadataKey(decoding: buffer).group)
        default:
            return nil
        }
    }

    public static func decodeOffsetCommitValue(_ buffer: ByteBuffer) throws -> OffsetCommitValue {
        try OffsetCommitValue(decoding: buffer)
    }

    public static func decodeGroupMetadataValue(_ buffer: ByteBuffer) throws -> GroupMetadataValue {
        var value = try GroupMetadataValue(decoding: buffer)
        // Version 0 has one timeout for both, as Kafka reads it.
        if value.version < 1 {
            for i in value.members.indices { value.members[i].rebalanceTimeout = value.members[i].sessionTimeout }
        }
        return value
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
