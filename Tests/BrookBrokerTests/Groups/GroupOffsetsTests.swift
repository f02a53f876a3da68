import BrookProtocol
import NIOCore
import Testing

@testable import BrookBroker

@Suite struct GroupOffsetsTests {
    @Test func commitAndFetchOffsets() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, gen) = await h.stableGroup("g", count: 2)
        let errors = await h.commit("g", memberId: ids[1], generation: gen, offsets: [("t", 0, 10), ("t", 1, 20), ("u", 0, 30)], metadata: "m")
        #expect(errors == [.none, .none, .none])
        #expect(h.fetch("g", [("t", 0), ("t", 1), ("u", 0), ("t", 9), ("v", 0)]) == [10, 20, 30, -1, -1])
        #expect(h.fetchAll("g") == ["t-0": 10, "t-1": 20, "u-0": 30])
        #expect(h.fetch("nobody", [("t", 0)]) == [-1])
        #expect(h.fetchAll("nobody").isEmpty)

        // Metadata and leader epoch come back.
        var r = OffsetFetchRequest()
        r.groupId = "g"
        r.topics = nil
        let full = h.coordinator.fetchOffsets(r, version: 7)
        #expect(full.errorCode == 0)
        #expect(full.topics.map(\.name) == ["t", "u"])
        #expect(full.topics[0].partitions[0].metadata == "m")
        #expect(full.topics[0].partitions[0].committedLeaderEpoch == 3)

        // v8: several groups at once.
        var multi = OffsetFetchRequest()
        var g1 = OffsetFetchRequest.OffsetFetchRequestGroup()
        g1.groupId = "g"
        g1.topics = nil
        var g2 = OffsetFetchRequest.OffsetFetchRequestGroup()
        g2.groupId = "other"
        var topic = OffsetFetchRequest.OffsetFetchRequestTopics()
        topic.name = "t"
        topic.partitionIndexes = [0]
        g2.topics = [topic]
        multi.groups = [g1, g2]
        let m = h.coordinator.fetchOffsets(multi, version: 8)
        #expect(m.groups.map(\.groupId) == ["g", "other"])
        #expect(m.groups[0].topics.flatMap { $0.partitions.map(\.committedOffset) } == [10, 20, 30])
        #expect(m.groups[1].topics[0].partitions[0].committedOffset == -1)

        // Too-large metadata fails only that partition.
        let big = String(repeating: "x", count: 5000)
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 11)], metadata: big) == [.offsetMetadataTooLarge])
        #expect(h.fetch("g", [("t", 0)]) == [10])
    }

    @Test func simpleConsumerCommits() async throws {
        let h = try await GroupTestHarness.make()
        // No generation, no member: allowed for a group without members (created on the fly).
        #expect(await h.commit("standalone", offsets: [("t", 0, 5)]) == [.none])
        #expect(await h.commit("standalone", offsets: [("t", 0, 6)], version: 0) == [.none])
        #expect(h.fetch("standalone", [("t", 0)]) == [6])
        // A generation for an unknown group is stale.
        #expect(await h.commit("unknown", memberId: "m", generation: 3, offsets: [("t", 0, 5)]) == [.illegalGeneration])
        // Anonymous commits into a group with members are refused.
        _ = await h.stableGroup("g", count: 1)
        #expect(await h.commit("g", offsets: [("t", 0, 5)]) == [.unknownMemberId])
    }

    @Test func commitWithStaleGenerationOrUnknownMemberIsRejected() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, gen) = await h.stableGroup("g", count: 1)
        #expect(await h.commit("g", memberId: ids[0], generation: gen - 1, offsets: [("t", 0, 5)]) == [.illegalGeneration])
        #expect(await h.commit("g", memberId: ids[0], generation: gen + 1, offsets: [("t", 0, 5)]) == [.illegalGeneration])
        #expect(await h.commit("g", memberId: "stranger", generation: gen, offsets: [("t", 0, 5)]) == [.unknownMemberId])
        #expect(h.fetch("g", [("t", 0)]) == [-1])
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 5)]) == [.none])
        #expect(h.fetch("g", [("t", 0)]) == [5])
    }

    @Test func commitIsAcknowledgedOnlyWhenDurable() async throws {
        let h = try await GroupTestHarness.make()
        h.log.failAppends = true
        #expect(await h.commit("s", offsets: [("t", 0, 5)]) == [.coordinatorNotAvailable])
        #expect(h.fetch("s", [("t", 0)]) == [-1], "not applied when the append failed")
        h.log.failAppends = false
        #expect(await h.commit("s", offsets: [("t", 0, 6)]) == [.none])
        #expect(h.fetch("s", [("t", 0)]) == [6])
    }

    @Test func concurrentCommitsAreGroupCommitted() async throws {
        let h = try await GroupTestHarness.make()
        await withTaskGroup(of: [ErrorCode].self) { tasks in
            for i in 0..<200 {
                tasks.addTask { await h.commit("s", offsets: [("t", Int32(i % 10), Int64(i))]) }
            }
            for await r in tasks { #expect(r == [.none]) }
        }
        #expect(h.fetchAll("s").count == 10)
        #expect(h.log.appendCount <= 200)
        // Whatever order they were applied in, memory equals a replay of the log.
        let h2 = try await h.restarted()
        #expect(h2.fetchAll("s") == h.fetchAll("s"))
    }

    @Test func reloadRestoresOffsetsAndGroupMetadata() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, gen) = await h.stableGroup("g", count: 2)
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 10), ("t", 1, 20)]) == [.none, .none])
        #expect(await h.commit("s", offsets: [("x", 3, 7)]) == [.none])
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 11)]) == [.none])

        let h2 = try await h.restarted()
        #expect(h2.fetchAll("g") == ["t-0": 11, "t-1": 20])
        #expect(h2.fetchAll("s") == ["x-3": 7])
        let before = h.info("g")!
        let after = h2.info("g")!
        #expect(after.state == "Stable")
        #expect(after.generation == before.generation)
        #expect(after.protocolName == before.protocolName)
        #expect(after.leader == before.leader)
        #expect(after.members == before.members)
        // Members of the loaded group carry on: heartbeats and commits of the generation work.
        #expect(h2.heartbeat("g", memberId: ids[1], generation: gen) == .none)
        #expect(await h2.commit("g", memberId: ids[1], generation: gen, offsets: [("t", 1, 21)]) == [.none])
        #expect(h2.fetch("g", [("t", 1)]) == [21])
        let s = await h2.sync("g", memberId: ids[1], generation: gen).value
        #expect(s.assignment.groupTestString == "a-\(ids[1])")
        // Members that do not come back expire with their session.
        h2.advance(5000)
        #expect(h2.heartbeat("g", memberId: ids[1], generation: gen) == .none)
        h2.advance(5001)
        #expect(h2.info("g")?.members == [ids[1]])
    }

    @Test func deleteGroups() async throws {
        let h = try await GroupTestHarness.make()
        _ = await h.stableGroup("busy", count: 1)
        #expect(await h.commit("idle", offsets: [("t", 0, 1), ("t", 1, 2)]) == [.none, .none])
        var r = DeleteGroupsRequest()
        r.groupsNames = ["busy", "idle", "ghost"]
        let response = await h.coordinator.deleteGroups(r, version: 2)
        #expect(
            response.results.map(\.errorCode) == [
                ErrorCode.nonEmptyGroup.rawValue, 0, ErrorCode.groupIdNotFound.rawValue,
            ])
        #expect(h.info("idle") == nil)
        #expect(h.fetch("idle", [("t", 0)]) == [-1])
        // Tombstones: the deletion survives a restart.
        let tombstones = try h.log.allRecords().filter { $0.value == nil }
        #expect(tombstones.count == 3)
        let h2 = try await h.restarted()
        #expect(h2.info("idle") == nil)
        #expect(h2.fetchAll("idle").isEmpty)
        #expect(h2.info("busy") != nil)
    }

    @Test func deleteOffsetsRespectsSubscriptions() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, gen) = await h.stableGroup("g", count: 1)  // subscribed to "t"
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 1), ("old", 0, 2)]) == [.none, .none])
        var r = OffsetDeleteRequest()
        r.groupId = "g"
        r.topics = ["t", "old"].map { name in
            var t = OffsetDeleteRequest.OffsetDeleteRequestTopic()
            t.name = name
            var p = OffsetDeleteRequest.OffsetDeleteRequestPartition()
            p.partitionIndex = 0
            t.partitions = [p]
            return t
        }
        let response = await h.coordinator.deleteOffsets(r, version: 0)
        #expect(response.errorCode == 0)
        #expect(response.topics.map { $0.partitions[0].errorCode } == [ErrorCode.groupSubscribedToTopic.rawValue, 0])
        #expect(h.fetchAll("g") == ["t-0": 1])
        r.groupId = "ghost"
        #expect(await h.coordinator.deleteOffsets(r, version: 0).errorCode == ErrorCode.groupIdNotFound.rawValue)
        let h2 = try await h.restarted()
        #expect(h2.fetchAll("g") == ["t-0": 1])
    }

    @Test func deletedTopicLosesItsOffsets() async throws {
        let h = try await GroupTestHarness.make()
        #expect(await h.commit("a", offsets: [("t", 0, 1), ("u", 0, 2)]) == [.none, .none])
        #expect(await h.commit("b", offsets: [("t", 5, 3)]) == [.none])
        await h.coordinator.removeOffsets(forTopic: "t")
        #expect(h.fetchAll("a") == ["u-0": 2])
        #expect(h.fetchAll("b").isEmpty)
        let h2 = try await h.restarted()
        #expect(h2.fetchAll("a") == ["u-0": 2])
        #expect(h2.fetchAll("b").isEmpty)
    }

    @Test func offsetsExpireAndEmptyGroupsAreRemoved() async throws {
        let retention: Int64 = 30_000
        let h = try await GroupTestHarness.make {
            $0.offsetsRetentionMs = retention
            $0.offsetsRetentionCheckIntervalMs = 1000
        }
        #expect(await h.commit("simple", offsets: [("t", 0, 1)]) == [.none])
        let (ids, gen) = await h.stableGroup("live", count: 1)  // subscribed to "t"
        #expect(await h.commit("live", memberId: ids[0], generation: gen, offsets: [("t", 0, 1), ("gone", 0, 1)]) == [.none, .none])
        // Keep the member alive past the retention.
        for _ in 0..<7 {
            h.advance(5000)
            #expect(h.heartbeat("live", memberId: ids[0], generation: gen) == .none)
        }
        #expect(h.info("simple") == nil, "standalone offsets expired, group removed")
        #expect(h.fetchAll("live") == ["t-0": 1], "only the unsubscribed topic expired")
        await h.waitUntil("tombstones written") { ((try? h.log.allRecords()) ?? []).filter { $0.value == nil }.count == 2 }
        let h2 = try await h.restarted()
        #expect(h2.info("simple") == nil)
        #expect(h2.fetchAll("live") == ["t-0": 1])

        // An empty consumer group's offsets expire `retention` after it became empty.
        let leave = await h.leave("live", memberIds: [ids[0]])
        #expect(leave.members.map(\.errorCode) == [0])
        #expect(h.info("live")?.state == "Empty")
        h.advance(retention - 1000)
        #expect(h.fetchAll("live") == ["t-0": 1])
        h.advance(1000)
        #expect(h.fetchAll("live").isEmpty)
        h.advance(1000)
        #expect(h.info("live") == nil)
    }

    // MARK: - persistence format

    @Test func offsetCommitRecordIsKafkasEncodingByteForByte() async throws {
        let h = try await GroupTestHarness.make()
        #expect(await h.commit("grp", offsets: [("topic", 3, 0x0102_0304_0506)], metadata: "meta") == [.none])
        let records = try h.log.allRecords()
        #expect(records.count == 1)
        let now = h.clock.now()

        var key = ByteBuffer()
        key.writeInteger(Int16(1))  // key version 1: offset commit
        key.writeInteger(Int16(3))
        key.writeString("grp")
        key.writeInteger(Int16(5))
        key.writeString("topic")
        key.writeInteger(Int32(3))
        var value = ByteBuffer()
        value.writeInteger(Int16(3))  // value version 3
        value.writeInteger(Int64(0x0102_0304_0506))  // offset
        value.writeInteger(Int32(3))  // leader epoch
        value.writeInteger(Int16(4))
        value.writeString("meta")
        value.writeInteger(now)  // commit timestamp
        #expect(Array(records[0].key.readableBytesView) == Array(key.readableBytesView))
        #expect(records[0].value.map { Array($0.readableBytesView) } == Array(value.readableBytesView))
        #expect(
            Array(records[0].key.readableBytesView)
                == [0, 1, 0, 3, 0x67, 0x72, 0x70, 0, 5, 0x74, 0x6f, 0x70, 0x69, 0x63, 0, 0, 0, 3])
    }

    @Test func groupMetadataRecordIsKafkasEncoding() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, _) = await h.stableGroup("g", count: 1)
        let records = try h.log.allRecords()
        let last = try #require(records.last)
        var expectedKey = ByteBuffer()
        expectedKey.writeInteger(Int16(2))
        expectedKey.writeInteger(Int16(1))
        expectedKey.writeString("g")
        #expect(last.key == expectedKey)

        var v = try #require(last.value)
        #expect(v.readInteger(as: Int16.self) == 3)
        func str() -> String? {
            let n = v.readInteger(as: Int16.self)!
            return n < 0 ? nil : v.readString(length: Int(n))
        }
        func bytes() -> ByteBuffer { let n = v.readInteger(as: Int32.self)!; return v.readSlice(length: Int(n))! }
        #expect(str() == "consumer")
        #expect(v.readInteger(as: Int32.self) == 1)  // generation
        #expect(str() == "range")
        #expect(str() == ids[0])  // leader
        _ = v.readInteger(as: Int64.self)  // currentStateTimestamp
        #expect(v.readInteger(as: Int32.self) == 1)  // members
        #expect(str() == ids[0])
        #expect(str() == nil)  // group instance id
        #expect(str() == "client")
        #expect(str() == "/127.0.0.1")
        #expect(v.readInteger(as: Int32.self) == 5000)
        #expect(v.readInteger(as: Int32.self) == 10_000)
        #expect((try? ConsumerProtocolSubscription(decoding: bytes()))?.topics == ["t"])
        #expect(bytes().groupTestString == "a-\(ids[0])")
        #expect(v.readableBytes == 0)
    }

    @Test func recordCodecReadsOlderVersions() throws {
        // OffsetCommitValue v1 (with expire timestamp) and GroupMetadataValue v0, as old brokers wrote.
        var v1 = ByteBuffer()
        v1.writeInteger(Int16(1))
        v1.writeInteger(Int64(42))
        v1.writeInteger(Int16(0))
        v1.writeInteger(Int64(1000))
        v1.writeInteger(Int64(2000))
        let o = try ConsumerOffsets.decodeOffsetCommitValue(v1)
        #expect(o == .init(version: 1, offset: 42, leaderEpoch: -1, metadata: "", commitTimestamp: 1000, expireTimestamp: 2000))

        var g0 = ByteBuffer()
        g0.writeInteger(Int16(0))
        g0.writeKafkaString("consumer", compact: false)
        g0.writeInteger(Int32(7))
        g0.writeKafkaString("range", compact: false)
        g0.writeKafkaString("m1", compact: false)
        g0.writeInteger(Int32(1))
        g0.writeKafkaString("m1", compact: false)
        g0.writeKafkaString("cid", compact: false)
        g0.writeKafkaString("host", compact: false)
        g0.writeInteger(Int32(30_000))
        g0.writeKafkaBytes(ByteBuffer(string: "sub"), compact: false)
        g0.writeKafkaBytes(ByteBuffer(string: "asg"), compact: false)
        let g = try ConsumerOffsets.decodeGroupMetadataValue(g0)
        #expect(g.generation == 7)
        #expect(g.currentStateTimestamp == -1)
        #expect(g.members[0].rebalanceTimeout == 30_000)
        #expect(g.members[0].assignment.groupTestString == "asg")

        // Round trip of what Brook writes.
        let value = GroupMetadataValue(
            protocolType: "consumer", generation: 3, protocolName: nil, leader: nil, currentStateTimestamp: 99, members: [])
        var buf = ByteBuffer()
        ConsumerOffsets.Record.groupMetadata(group: "g", value).encodeValue(into: &buf)
        #expect(try ConsumerOffsets.decodeGroupMetadataValue(buf) == value)
        // Keys of the new consumer protocol (version 3+) are skipped.
        var k = ByteBuffer()
        k.writeInteger(Int16(3))
        k.writeKafkaString("g", compact: false)
        #expect(try ConsumerOffsets.decodeKey(k) == nil)
    }

    @Test func recordsAreRewrittenAtTheVersionsBrookWrites() throws {
        // An offset commit Kafka wrote with key v0 and value v1 is written back as key v1, value v3
        // (the bytes the hand-written codec produced), and its key equals a key Brook made.
        var key = ByteBuffer()
        key.writeInteger(Int16(0))
        key.writeKafkaString("g", compact: false)
        key.writeKafkaString("t", compact: false)
        key.writeInteger(Int32(2))
        var value = ByteBuffer()
        value.writeInteger(Int16(1))
        value.writeInteger(Int64(42))
        value.writeKafkaString("md", compact: false)
        value.writeInteger(Int64(1000))
        value.writeInteger(Int64(2000))
        let record = try #require(try ConsumerOffsets.Record.decode(key: key, value: value))
        #expect(record.key == .offsetCommit(.init(group: "g", topic: "t", partition: 2)))
        var k = ByteBuffer()
        var v = ByteBuffer()
        record.encodeKey(into: &k)
        #expect(record.encodeValue(into: &v))
        #expect(Array(k.readableBytesView) == [0, 1, 0, 1, 0x67, 0, 1, 0x74, 0, 0, 0, 2])
        #expect(
            Array(v.readableBytesView)
                == [0, 3] + [0, 0, 0, 0, 0, 0, 0, 42] + [0xff, 0xff, 0xff, 0xff] + [0, 2, 0x6d, 0x64] + [0, 0, 0, 0, 0, 0, 0x03, 0xe8])
        // Group metadata: key v2, value v3; a tombstone writes no value.
        let tombstone = ConsumerOffsets.Record.groupMetadata(group: "g", nil)
        k.clear()
        v.clear()
        tombstone.encodeKey(into: &k)
        #expect(Array(k.readableBytesView) == [0, 2, 0, 1, 0x67])
        #expect(!tombstone.encodeValue(into: &v) && v.readableBytes == 0)
    }

    // MARK: - compaction

    @Test func compactionKeepsTheLatestStateAndShrinksTheLog() async throws {
        let h = try await GroupTestHarness.make { $0.compactionThresholdRecords = 1_000_000 }
        let (ids, gen) = await h.stableGroup("g", count: 1)
        for i in 0..<100 {
            #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", Int32(i % 4), Int64(i))]) == [.none, ])
        }
        #expect(await h.commit("gone", offsets: [("t", 0, 1)]) == [.none])
        var del = DeleteGroupsRequest()
        del.groupsNames = ["gone"]
        _ = await h.coordinator.deleteGroups(del, version: 2)
        let before = h.log.recordCount
        #expect(before > 100)

        await h.coordinator.compact()
        // Live: the group's metadata and its 4 offsets.
        #expect(h.log.recordCount == 5)
        #expect(h.log.logStartOffset >= before)
        let h2 = try await h.restarted()
        #expect(h2.fetchAll("g") == ["t-0": 96, "t-1": 97, "t-2": 98, "t-3": 99])
        #expect(h2.info("g")?.members == ids)
        #expect(h2.info("g")?.generation == gen)
        #expect(h2.info("gone") == nil)

        // Later writes still win over the snapshot.
        #expect(await h.commit("g", memberId: ids[0], generation: gen, offsets: [("t", 0, 1000)]) == [.none])
        let h3 = try await h.restarted()
        #expect(h3.fetch("g", [("t", 0)]) == [1000])
    }

    @Test func compactionRunsAutomaticallyPastTheThreshold() async throws {
        let h = try await GroupTestHarness.make { $0.compactionThresholdRecords = 50 }
        for i in 0..<300 {
            #expect(await h.commit("s", offsets: [("t", Int32(i % 3), Int64(i))]) == [.none])
        }
        await h.waitUntil("compaction") { h.log.logStartOffset > 0 }
        #expect(h.log.recordCount <= 60, "bounded: never much more than the threshold")
        await h.coordinator.compact()
        #expect(h.log.recordCount == 3)
        let h2 = try await h.restarted()
        #expect(h2.fetchAll("s") == ["t-0": 297, "t-1": 298, "t-2": 299])
    }

    @Test func loadCompactsAnOversizedLog() async throws {
        let h = try await GroupTestHarness.make()
        for i in 0..<60 { _ = await h.commit("s", offsets: [("t", 0, Int64(i))]) }
        let h2 = try await h.restarted { $0.compactionThresholdRecords = 10 }
        await h2.waitUntil("compaction after load") { h2.log.recordCount == 1 }
        #expect(try await h2.restarted().fetchAll("s") == ["t-0": 59])
    }
}
