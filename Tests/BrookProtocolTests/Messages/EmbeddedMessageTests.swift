import BrookProtocol
import NIOCore
import Testing

// Big-endian pieces of expected encodings, written out independently of the encoders.
private func i16(_ v: Int16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
private func i32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
private func i64(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }
/// Classic string: int16 length, UTF-8.
private func str(_ s: String) -> [UInt8] { i16(Int16(s.utf8.count)) + Array(s.utf8) }
/// Classic bytes: int32 length.
private func bytes(_ b: [UInt8]) -> [UInt8] { i32(Int32(b.count)) + b }
/// Compact string (flexible versions): unsigned varint length + 1 (short strings only).
private func compactStr(_ s: String) -> [UInt8] { [UInt8(s.utf8.count + 1)] + Array(s.utf8) }
private let nullString: [UInt8] = [0xff, 0xff]
private let nullBytes: [UInt8] = [0xff, 0xff, 0xff, 0xff]

private func encoded(_ m: some KafkaEmbeddedMessage) -> [UInt8] { Array(m.encode().readableBytesView) }

/// The embedded formats (consumer protocol, `__consumer_offsets` keys and values) generated from
/// `protocol/definitions/embedded`: the bytes the hand-written codecs they replace produced, and
/// a round trip of every version.
@Suite struct EmbeddedMessageTests {
    // MARK: - round trips

    private func roundTrip<M: KafkaEmbeddedMessage>(_: M.Type, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        for version in M.versions {
            for _ in 0..<40 {
                let value = M.arbitrary(version: version, using: &rng)
                #expect(value.version == version)
                let bytes = value.encode()
                var buf = bytes
                let decoded = try M(from: &buf)
                #expect(decoded == value, "\(M.self) v\(version) did not round-trip")
                #expect(buf.readableBytes == 0, "\(M.self) v\(version) left \(buf.readableBytes) bytes")
                #expect(decoded.encode() == bytes)
                // Every proper prefix throws or decodes; it never traps.
                for cut in 0..<bytes.readableBytes {
                    _ = try? M(decoding: bytes.getSlice(at: bytes.readerIndex, length: cut)!)
                }
            }
        }
    }

    @Test func everyVersionOfEveryEmbeddedFormatRoundTrips() throws {
        try roundTrip(ConsumerProtocolSubscription.self, seed: 1)
        try roundTrip(ConsumerProtocolAssignment.self, seed: 2)
        try roundTrip(OffsetCommitKey.self, seed: 3)
        try roundTrip(OffsetCommitValue.self, seed: 4)
        try roundTrip(GroupMetadataKey.self, seed: 5)
        try roundTrip(GroupMetadataValue.self, seed: 6)
    }

    @Test func versionRangesAndWrittenVersions() {
        #expect(ConsumerProtocolSubscription.versions == 0...3)
        #expect(ConsumerProtocolAssignment.versions == 0...3)
        #expect(OffsetCommitKey.versions == 0...1)
        #expect(OffsetCommitValue.versions == 0...4)
        #expect(GroupMetadataKey.versions == 2...2)
        #expect(GroupMetadataValue.versions == 0...4)
        #expect(ConsumerProtocolSubscription.flexibleFrom == nil && ConsumerProtocolAssignment.flexibleFrom == nil)
        #expect(OffsetCommitValue.flexibleFrom == 4 && GroupMetadataValue.flexibleFrom == 4)
        // What a new value is written at: the versions the hand-written codecs wrote.
        #expect(ConsumerProtocolSubscription().version == 3)
        #expect(ConsumerProtocolAssignment().version == 3)
        #expect(OffsetCommitKey().version == 1)
        #expect(GroupMetadataKey().version == 2)
        #expect(OffsetCommitValue().version == 3)
        #expect(GroupMetadataValue().version == 3)
    }

    // MARK: - consumer protocol

    @Test func subscriptionBytesAtEveryVersion() {
        let owned = [TopicPartition("a", 0), TopicPartition("a", 2), TopicPartition("b", 1)]
        let userData: [UInt8] = [0, 0, 0, 7]
        let head = i32(2) + str("a") + str("b") + bytes(userData)
        // Owned partitions grouped by topic, in order of first appearance.
        let ownedBytes = i32(2) + str("a") + i32(2) + i32(0) + i32(2) + str("b") + i32(1) + i32(1)
        let expected: [Int16: [UInt8]] = [
            0: i16(0) + head,
            1: i16(1) + head + ownedBytes,
            2: i16(2) + head + ownedBytes + i32(9),
            3: i16(3) + head + ownedBytes + i32(9) + str("rack-1"),
        ]
        for version in Int16(0)...3 {
            let s = ConsumerProtocolSubscription(
                version: version, topics: ["a", "b"], userData: ByteBuffer(bytes: userData),
                ownedPartitions: owned, generationId: 9, rackId: "rack-1")
            #expect(encoded(s) == expected[version], "subscription v\(version)")
            let decoded = try? ConsumerProtocolSubscription(decoding: ByteBuffer(bytes: expected[version]!))
            #expect(decoded?.version == version)
            #expect(decoded?.topics == ["a", "b"])
            #expect(decoded?.ownedTopicPartitions == (version >= 1 ? owned : []))
            #expect(decoded?.generationId == (version >= 2 ? 9 : -1))
            #expect(decoded?.rackId == (version >= 3 ? "rack-1" : nil))
        }
        // Null user data and rack.
        let bare = ConsumerProtocolSubscription(version: 3, topics: ["t"], generationId: -1, rackId: nil)
        #expect(encoded(bare) == i16(3) + i32(1) + str("t") + nullBytes + i32(0) + i32(-1) + nullString)
    }

    @Test func subscriptionOfANewerVersionReadsTheKnownLayout() throws {
        let data = i16(7) + i32(1) + str("t") + nullBytes + i32(0) + i32(4) + nullString + i32(12345)
        let s = try ConsumerProtocolSubscription(decoding: ByteBuffer(bytes: data))
        #expect(s.version == 7 && s.topics == ["t"] && s.generationId == 4)
        #expect(throws: ProtocolError.self) { try ConsumerProtocolSubscription(decoding: ByteBuffer(bytes: i16(-1) + i32(0))) }
        #expect(throws: ProtocolError.self) { try ConsumerProtocolSubscription(decoding: ByteBuffer(bytes: i16(0) + i32(1))) }
    }

    @Test func assignmentBytesAndLenientReads() throws {
        let partitions = [TopicPartition("t", 0), TopicPartition("t", 3), TopicPartition("u", 1)]
        let body = i32(2) + str("t") + i32(2) + i32(0) + i32(3) + str("u") + i32(1) + i32(1)
        for version in Int16(0)...3 {
            let a = ConsumerProtocolAssignment(version: version, partitions: partitions)
            #expect(encoded(a) == i16(version) + body + nullBytes)
            let withData = ConsumerProtocolAssignment(version: version, partitions: partitions, userData: ByteBuffer(bytes: [1, 2]))
            #expect(encoded(withData) == i16(version) + body + bytes([1, 2]))
            #expect(try ConsumerProtocolAssignment(decoding: withData.encode()).partitions == partitions)
        }
        // An empty buffer is an empty assignment at version 0; user data may be left out.
        let empty = try ConsumerProtocolAssignment(decoding: ByteBuffer())
        #expect(empty.version == 0 && empty.partitions.isEmpty && empty.userData == nil)
        let noUserData = try ConsumerProtocolAssignment(decoding: ByteBuffer(bytes: i16(1) + body))
        #expect(noUserData.partitions == partitions && noUserData.userData == nil)
        #expect(throws: ProtocolError.self) { try ConsumerProtocolAssignment(decoding: ByteBuffer(bytes: [0, 0, 0, 0, 0, 5])) }
    }

    // MARK: - __consumer_offsets

    @Test func offsetsKeyBytes() throws {
        #expect(encoded(OffsetCommitKey(group: "g", topic: "t", partition: 7)) == i16(1) + str("g") + str("t") + i32(7))
        #expect(encoded(GroupMetadataKey(group: "g")) == i16(2) + str("g"))
        let v0 = try OffsetCommitKey(decoding: ByteBuffer(bytes: i16(0) + str("g") + str("t") + i32(7)))
        #expect(v0.version == 0 && v0.group == "g" && v0.topic == "t" && v0.partition == 7)
        #expect(throws: ProtocolError.self) { try GroupMetadataKey(decoding: ByteBuffer(bytes: i16(3) + str("g"))) }
    }

    @Test func offsetCommitValueBytes() throws {
        let v = OffsetCommitValue(offset: 42, leaderEpoch: 5, metadata: "m", commitTimestamp: 1000)
        #expect(encoded(v) == i16(3) + i64(42) + i32(5) + str("m") + i64(1000))
        // v1 as old brokers wrote it, with the expire timestamp and no leader epoch.
        let v1 = try OffsetCommitValue(decoding: ByteBuffer(bytes: i16(1) + i64(42) + str("") + i64(1000) + i64(2000)))
        #expect(v1 == OffsetCommitValue(version: 1, offset: 42, leaderEpoch: -1, metadata: "", commitTimestamp: 1000, expireTimestamp: 2000))
        // v4 is flexible: compact string and tagged fields.
        let v4 = try OffsetCommitValue(decoding: ByteBuffer(bytes: i16(4) + i64(42) + i32(5) + compactStr("m") + i64(1000) + [0]))
        #expect(v4.offset == 42 && v4.leaderEpoch == 5 && v4.metadata == "m" && v4.commitTimestamp == 1000)
        #expect(throws: ProtocolError.self) { try OffsetCommitValue(decoding: ByteBuffer(bytes: i16(5) + i64(42))) }
    }

    @Test func groupMetadataValueBytes() throws {
        let member = GroupMetadataValue.MemberMetadata(
            memberId: "m1", groupInstanceId: nil, clientId: "cid", clientHost: "/h", rebalanceTimeout: 5000,
            sessionTimeout: 10_000, subscription: ByteBuffer(bytes: [1]), assignment: ByteBuffer(bytes: [2, 3]))
        let v = GroupMetadataValue(
            protocolType: "consumer", generation: 7, protocolName: "range", leader: "m1", currentStateTimestamp: 99, members: [member])
        let memberBytes = str("m1") + nullString + str("cid") + str("/h") + i32(5000) + i32(10_000) + bytes([1]) + bytes([2, 3])
        #expect(encoded(v) == i16(3) + str("consumer") + i32(7) + str("range") + str("m1") + i64(99) + i32(1) + memberBytes)
        // Null protocol and leader, no members.
        let empty = GroupMetadataValue(protocolType: "", generation: 0, protocolName: nil, leader: nil, currentStateTimestamp: -1)
        #expect(encoded(empty) == i16(3) + str("") + i32(0) + nullString + nullString + i64(-1) + i32(0))
        // v4 (flexible) as Kafka writes it: compact strings, compact arrays (count + 1), tagged fields.
        let v4Bytes =
            i16(4) + compactStr("consumer") + i32(7) + compactStr("range") + compactStr("m1") + i64(99) + [2]
            + compactStr("m1") + [0] + compactStr("cid") + compactStr("/h") + i32(5000) + i32(10_000) + [2, 1] + [3, 2, 3] + [0]
            + [0]
        let v4 = try GroupMetadataValue(decoding: ByteBuffer(bytes: v4Bytes))
        var expected = v
        expected.version = 4
        #expect(v4 == expected)
    }
}
