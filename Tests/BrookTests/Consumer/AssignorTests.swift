@testable import Brook
import BrookProtocol
import NIOCore
import Testing

private func member(_ id: String, _ topics: [String], owned: [TP] = [], generation: Int32 = -1, instance: String? = nil) -> GroupMemberSubscription {
    GroupMemberSubscription(
        memberId: id, groupInstanceId: instance,
        subscription: ConsumerProtocolSubscription(topics: topics, ownedPartitions: owned, generationId: generation))
}

private func tps(_ topic: String, _ partitions: [Int32]) -> [TP] {
    partitions.map { TP(topic, $0) }
}

@Suite("Consumer assignors")
struct ConsumerAssignorTests {
    @Test func rangeSplitsEachTopicIntoConsecutiveRanges() {
        let members = [member("c", ["t"]), member("a", ["t"]), member("b", ["t"])]
        let result = RangeAssignor().assign(members: members, partitionsPerTopic: ["t": 6])
        #expect(result["a"] == tps("t", [0, 1]))
        #expect(result["b"] == tps("t", [2, 3]))
        #expect(result["c"] == tps("t", [4, 5]))
    }

    @Test func rangeGivesTheRemainderToTheFirstMembersPerTopic() {
        let members = [member("a", ["t", "u"]), member("b", ["t", "u"])]
        let result = RangeAssignor().assign(members: members, partitionsPerTopic: ["t": 3, "u": 3])
        #expect(result["a"] == tps("t", [0, 1]) + tps("u", [0, 1]))
        #expect(result["b"] == tps("t", [2]) + tps("u", [2]))
    }

    @Test func rangeOnlyAssignsSubscribedTopicsAndOrdersStaticMembersFirst() {
        let members = [member("m1", ["t"]), member("m2", ["t", "u"], instance: "z"), member("m3", ["t"], instance: "y")]
        let result = RangeAssignor().assign(members: members, partitionsPerTopic: ["t": 3, "u": 2])
        // Order: instance y (m3), instance z (m2), then m1.
        #expect(result["m3"] == tps("t", [0]))
        #expect(result["m2"] == tps("t", [1]) + tps("u", [0, 1]))
        #expect(result["m1"] == tps("t", [2]))
    }

    @Test func roundRobinDealsPartitionsInTurn() {
        let members = [member("b", ["t"]), member("a", ["t"]), member("c", ["t"])]
        let result = RoundRobinAssignor().assign(members: members, partitionsPerTopic: ["t": 6])
        #expect(result["a"] == tps("t", [0, 3]))
        #expect(result["b"] == tps("t", [1, 4]))
        #expect(result["c"] == tps("t", [2, 5]))
    }

    @Test func roundRobinAcrossTopicsSkipsUnsubscribedMembers() {
        let members = [member("a", ["t", "u"]), member("b", ["u"])]
        let result = RoundRobinAssignor().assign(members: members, partitionsPerTopic: ["t": 2, "u": 3])
        // t-0 a, t-1 (b skipped) a, u-0 b, u-1 a, u-2 b
        #expect(result["a"] == tps("t", [0, 1]) + tps("u", [1]))
        #expect(result["b"] == tps("u", [0, 2]))
    }

    @Test func stickyInitialAssignmentIsBalanced() {
        let members = [member("a", ["t"]), member("b", ["t"]), member("c", ["t"])]
        let result = CooperativeStickyAssignor().assign(members: members, partitionsPerTopic: ["t": 7])
        let counts = result.values.map(\.count).sorted()
        #expect(counts == [2, 2, 3])
        #expect(Set(result.values.joined()) == Set(tps("t", Array(0..<7))))
        #expect(result.values.joined().count == 7)
    }

    @Test func stickyKeepsOwnershipWhenAMemberLeaves() {
        let a = tps("t", [0, 1]), b = tps("t", [2, 3]), c = tps("t", [4, 5])
        _ = c
        let members = [member("a", ["t"], owned: a, generation: 3), member("b", ["t"], owned: b, generation: 3)]
        let result = CooperativeStickyAssignor().assign(members: members, partitionsPerTopic: ["t": 6])
        #expect(result["a"]!.count == 3)
        #expect(result["b"]!.count == 3)
        #expect(Set(a).isSubset(of: Set(result["a"]!)))
        #expect(Set(b).isSubset(of: Set(result["b"]!)))
        #expect(Set(result.values.joined()) == Set(tps("t", Array(0..<6))))
    }

    @Test func stickyMovesOnlyTheSurplusToANewMemberCooperatively() {
        let a = tps("t", [0, 1, 2]), b = tps("t", [3, 4, 5])
        let members = [member("a", ["t"], owned: a, generation: 5), member("b", ["t"], owned: b, generation: 5), member("c", ["t"])]
        let assignor = CooperativeStickyAssignor()
        // Target: a and b give up one partition each; in the first (cooperative) round the new
        // member gets nothing that another member still owns.
        let (target, owners) = StickyAssignment.compute(members: members, partitionsPerTopic: ["t": 6])
        #expect(target.values.map(\.count).sorted() == [2, 2, 2])
        #expect(Set(target["a"]!).isSubset(of: Set(a)))
        #expect(Set(target["b"]!).isSubset(of: Set(b)))
        #expect(owners.count == 6)
        let first = assignor.assign(members: members, partitionsPerTopic: ["t": 6])
        #expect(first["c"] == [])
        #expect(first["a"] == target["a"])
        #expect(first["b"] == target["b"])
        // Second round: a and b revoked what they lost; c now gets both.
        let second = assignor.assign(
            members: [
                member("a", ["t"], owned: first["a"]!, generation: 6), member("b", ["t"], owned: first["b"]!, generation: 6),
                member("c", ["t"], owned: [], generation: 6),
            ], partitionsPerTopic: ["t": 6])
        #expect(second["a"] == first["a"])
        #expect(second["b"] == first["b"])
        #expect(Set(second["c"]!) == Set(tps("t", [0, 1, 2, 3, 4, 5])).subtracting(first["a"]! + first["b"]!))
        #expect(second["c"]!.count == 2)
    }

    @Test func stickyNewerGenerationWinsConflictingClaims() {
        let members = [member("a", ["t"], owned: tps("t", [0, 1]), generation: 2), member("b", ["t"], owned: tps("t", [1, 2, 3]), generation: 3)]
        let (target, owners) = StickyAssignment.compute(members: members, partitionsPerTopic: ["t": 4])
        #expect(owners[TP("t", 1)] == "b")
        #expect(owners[TP("t", 0)] == "a")
        #expect(target["a"]!.count == 2)
        #expect(target["b"]!.count == 2)
        #expect(target["a"]!.contains(TP("t", 0)))
    }

    @Test func stickyDropsClaimsToUnsubscribedOrMissingPartitions() {
        let members = [member("a", ["t"], owned: tps("t", [0, 7]) + tps("u", [0]), generation: 1), member("b", ["t"], generation: 1)]
        let result = CooperativeStickyAssignor().assign(members: members, partitionsPerTopic: ["t": 2, "u": 1])
        #expect(result["a"] == tps("t", [0]))
        #expect(result["b"] == tps("t", [1]))
    }

    @Test func stickyBalancesUnequalSubscriptions() {
        let members = [member("a", ["t", "u"]), member("b", ["t"]), member("c", ["u"])]
        let result = CooperativeStickyAssignor().assign(members: members, partitionsPerTopic: ["t": 4, "u": 4])
        #expect(result.values.joined().count == 8)
        #expect(Set(result.values.joined()).count == 8)
        #expect(result["b"]!.allSatisfy { $0.topic == "t" })
        #expect(result["c"]!.allSatisfy { $0.topic == "u" })
        let counts = result.values.map(\.count)
        #expect(counts.max()! - counts.min()! <= 1)
    }
}

@Suite("Consumer protocol")
struct ConsumerProtocolCodecTests {
    @Test(arguments: [Int16(0), 1, 2, 3])
    func subscriptionRoundTrip(version: Int16) throws {
        var userData = ByteBuffer()
        userData.writeInteger(Int32(7))
        let s = ConsumerProtocolSubscription(
            version: version, topics: ["a", "b"], userData: userData,
            ownedPartitions: version >= 1 ? [TP("a", 0), TP("a", 2), TP("b", 1)] : [], generationId: version >= 2 ? 9 : -1,
            rackId: version >= 3 ? "rack-1" : nil)
        let decoded = try ConsumerProtocolSubscription(decoding: s.encode())
        #expect(decoded == s)
    }

    @Test func subscriptionOfANewerVersionKeepsKnownFields() throws {
        var s = ConsumerProtocolSubscription(version: 3, topics: ["t"], ownedPartitions: [TP("t", 1)], generationId: 4, rackId: nil)
        var bytes = s.encode()
        bytes.setInteger(Int16(4), at: bytes.readerIndex)
        bytes.writeInteger(Int32(12345))  // a field a future version might add
        let decoded = try ConsumerProtocolSubscription(decoding: bytes)
        s.version = 4
        #expect(decoded == s)
    }

    @Test func subscriptionV0MatchesKafkasLayout() {
        let bytes = ConsumerProtocolSubscription(version: 0, topics: ["ab"]).encode()
        #expect(Array(bytes.readableBytesView) == [0, 0, 0, 0, 0, 1, 0, 2, 0x61, 0x62, 0xff, 0xff, 0xff, 0xff])
    }

    @Test func assignmentRoundTripAndEmpty() throws {
        let a = ConsumerProtocolAssignment(version: 1, partitions: [TP("t", 0), TP("t", 3), TP("u", 1)], userData: nil)
        #expect(try ConsumerProtocolAssignment(decoding: a.encode()) == a)
        #expect(try ConsumerProtocolAssignment(decoding: ByteBuffer()).partitions == [])
        #expect(throws: (any Error).self) { try ConsumerProtocolAssignment(decoding: ByteBuffer(bytes: [0, 0, 0, 0, 0, 5])) }
    }
}
