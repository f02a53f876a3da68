import BrookProtocol
import NIOCore
import Logging
import Testing

@testable import BrookBroker

@Suite struct GroupMembershipTests {
    @Test func threeMembersJoinAndSyncWithLeaderElectionAndProtocolSelection() async throws {
        let h = try await GroupTestHarness.make { $0.initialRebalanceDelayMs = 100 }
        let g = "g1"
        // Preferences: the first member prefers range, the others roundrobin; all support both.
        let prefs: [[(String, [String])]] = [
            [("range", ["t"]), ("roundrobin", ["t"])],
            [("roundrobin", ["t"]), ("range", ["t"])],
            [("roundrobin", ["t"]), ("range", ["t"])],
        ]
        var tasks: [Task<JoinGroupResponse, Never>] = []
        var ids: [String] = []
        for i in 0..<3 {
            let id = await h.memberId(g, clientId: "c\(i)")
            #expect(id.hasPrefix("c\(i)-"))
            ids.append(id)
            tasks.append(h.startJoin(g, memberId: id, protocols: prefs[i]))
            await h.waitUntil { h.info(g)?.awaitingJoin == i + 1 }
        }
        #expect(h.info(g)?.state == "PreparingRebalance")
        // The initial delay (100 ms) was extended because members kept joining.
        h.advance(100)
        #expect(h.info(g)?.state == "PreparingRebalance")
        h.advance(100)
        #expect(h.info(g)?.state == "CompletingRebalance")

        var responses: [JoinGroupResponse] = []
        for t in tasks { responses.append(await t.value) }
        for (i, r) in responses.enumerated() {
            #expect(r.errorCode == 0)
            #expect(r.generationId == 1)
            #expect(r.protocolName == "roundrobin")
            #expect(r.protocolType == "consumer")
            #expect(r.leader == ids[0], "the first member to join leads")
            #expect(r.memberId == ids[i])
            #expect(r.members.count == (i == 0 ? 3 : 0), "only the leader gets the members")
        }
        #expect(Set(responses[0].members.map(\.memberId)) == Set(ids))
        #expect((try? ConsumerProtocolSubscription(decoding: responses[0].members[1].metadata))?.topics == ["t"])

        // Followers sync first and wait for the leader.
        let s1 = h.sync(g, memberId: ids[1], generation: 1)
        let s2 = h.sync(g, memberId: ids[2], generation: 1)
        await h.waitUntil { h.info(g)?.awaitingSync == 2 }
        let s0 = h.sync(g, memberId: ids[0], generation: 1, assignments: [ids[0]: "p0", ids[1]: "p1", ids[2]: "p2"])
        let r0 = await s0.value
        let r1 = await s1.value
        let r2 = await s2.value
        #expect([r0.errorCode, r1.errorCode, r2.errorCode] == [0, 0, 0])
        #expect([r0.assignment.groupTestString, r1.assignment.groupTestString, r2.assignment.groupTestString] == ["p0", "p1", "p2"])
        #expect(r1.protocolName == "roundrobin")
        #expect(h.info(g)?.state == "Stable")
        #expect(h.heartbeat(g, memberId: ids[1], generation: 1) == .none)
        #expect(h.heartbeat(g, memberId: ids[1], generation: 0) == .illegalGeneration)
        #expect(h.heartbeat(g, memberId: "nobody", generation: 1) == .unknownMemberId)

        var describe = DescribeGroupsRequest()
        describe.groups = [g, "unknown"]
        let d = h.coordinator.describeGroups(describe, version: 5)
        #expect(d.groups[0].groupState == "Stable")
        #expect(d.groups[0].protocolData == "roundrobin")
        #expect(d.groups[0].members.map(\.memberAssignment.groupTestString).sorted() == ["p0", "p1", "p2"])
        #expect(d.groups[1].groupState == "Dead")
    }

    @Test func inconsistentProtocolsAreRejected() async throws {
        let h = try await GroupTestHarness.make()
        _ = await h.stableGroup("g", count: 1)
        let r = await h.join("g", protocols: [("sticky", ["t"])], version: 3)
        #expect(r.errorCode == ErrorCode.inconsistentGroupProtocol.rawValue)
        var other = GroupTestHarness.joinRequest(group: "g", protocols: [("range", ["t"])])
        other.protocolType = "connect"
        let r2 = await h.coordinator.joinGroup(other, version: 3, clientId: "x", clientHost: "h")
        #expect(r2.errorCode == ErrorCode.inconsistentGroupProtocol.rawValue)
        let empty = await h.join("g2", protocols: [], version: 3)
        #expect(empty.errorCode == ErrorCode.inconsistentGroupProtocol.rawValue)
    }

    @Test func memberIdRequiredFlow() async throws {
        let h = try await GroupTestHarness.make { $0.initialRebalanceDelayMs = 0 }
        // v4+: the first join gets an id to come back with.
        let first = await h.join("g", version: 4, clientId: "my-client")
        #expect(first.errorCode == ErrorCode.memberIdRequired.rawValue)
        #expect(first.memberId.hasPrefix("my-client-"))
        #expect(first.memberId.count > "my-client-".count + 30)
        #expect(h.info("g")?.pendingMembers == 1)
        // Not a member yet.
        #expect(h.heartbeat("g", memberId: first.memberId, generation: 0) == .unknownMemberId)
        // Rejoining with it joins (no initial delay here: the join completes at once).
        let second = await h.join("g", memberId: first.memberId, version: 4)
        #expect(second.errorCode == 0)
        #expect(second.memberId == first.memberId)
        #expect(second.generationId == 1)
        #expect(second.leader == first.memberId)
        #expect(h.info("g")?.pendingMembers == 0)

        // v0–3: the id comes directly.
        let old = await h.join("old", version: 3, clientId: "legacy")
        #expect(old.errorCode == 0)
        #expect(old.memberId.hasPrefix("legacy-"))
        #expect(old.generationId == 1)

        // An unknown member id is refused.
        let bogus = await h.join("g", memberId: "bogus", version: 4)
        #expect(bogus.errorCode == ErrorCode.unknownMemberId.rawValue)
        let bogusNewGroup = await h.join("nope", memberId: "bogus", version: 4)
        #expect(bogusNewGroup.errorCode == ErrorCode.unknownMemberId.rawValue)

        // A pending member that never comes back expires with its session.
        let pending = await h.join("g", version: 4)
        #expect(pending.errorCode == ErrorCode.memberIdRequired.rawValue)
        #expect(h.info("g")?.pendingMembers == 1)
        h.advance(10_001)
        #expect(h.info("g")?.pendingMembers == 0)
    }

    @Test func sessionTimeoutBoundsAndInvalidGroupId() async throws {
        let h = try await GroupTestHarness.make { $0.minSessionTimeoutMs = 6000; $0.maxSessionTimeoutMs = 30_000 }
        let low = await h.join("g", sessionTimeoutMs: 5999)
        #expect(low.errorCode == ErrorCode.invalidSessionTimeout.rawValue)
        let high = await h.join("g", sessionTimeoutMs: 30_001)
        #expect(high.errorCode == ErrorCode.invalidSessionTimeout.rawValue)
        let noGroup = await h.join("", sessionTimeoutMs: 10_000)
        #expect(noGroup.errorCode == ErrorCode.invalidGroupId.rawValue)
    }

    @Test func membersRejoinDuringRebalance() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, gen) = await h.stableGroup(g, count: 2)
        #expect(gen == 1)
        // A third member arrives: rebalance.
        let newId = await h.memberId(g)
        let t3 = h.startJoin(g, memberId: newId)
        await h.waitUntil { h.info(g)?.state == "PreparingRebalance" }
        #expect(h.heartbeat(g, memberId: ids[0], generation: 1) == .rebalanceInProgress)
        #expect(h.heartbeat(g, memberId: ids[1], generation: 1) == .rebalanceInProgress)
        // Sync for the old generation is refused while preparing.
        #expect(await h.sync(g, memberId: ids[1], generation: 1).value.errorCode == ErrorCode.rebalanceInProgress.rawValue)
        // Commits are still accepted during PreparingRebalance.
        #expect(await h.commit(g, memberId: ids[0], generation: 1, offsets: [("t", 0, 5)]) == [.none])

        let t1 = h.startJoin(g, memberId: ids[0])
        await h.waitUntil { h.info(g)?.awaitingJoin == 2 }
        #expect(h.info(g)?.state == "PreparingRebalance")
        // The last one to rejoin completes the rebalance at once (no timer needed).
        let t2 = h.startJoin(g, memberId: ids[1])
        let (r1, r2, r3) = (await t1.value, await t2.value, await t3.value)
        #expect([r1.generationId, r2.generationId, r3.generationId] == [2, 2, 2])
        #expect(r1.leader == ids[0])
        #expect(r1.members.count == 3)
        #expect(h.info(g)?.state == "CompletingRebalance")
        // The old generation is now illegal.
        #expect(await h.sync(g, memberId: ids[1], generation: 1).value.errorCode == ErrorCode.illegalGeneration.rawValue)
        #expect(await h.commit(g, memberId: ids[0], generation: 2, offsets: [("t", 0, 6)]) == [.rebalanceInProgress])
        #expect(h.heartbeat(g, memberId: ids[1], generation: 2) == .none)
    }

    @Test func memberThatDoesNotRejoinIsDroppedAtTheRebalanceTimeout() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, _) = await h.stableGroup(g, count: 2)
        // The leader rejoins (forcing a rebalance); the follower never does but keeps its session alive.
        let t0 = h.startJoin(g, memberId: ids[0])
        await h.waitUntil { h.info(g)?.state == "PreparingRebalance" }
        h.advance(4000)
        #expect(h.heartbeat(g, memberId: ids[1], generation: 1) == .rebalanceInProgress)
        h.advance(1001)  // rebalance timeout of 5000 ms
        let r0 = await t0.value
        #expect(r0.errorCode == 0)
        #expect(r0.generationId == 2)
        #expect(r0.members.map(\.memberId) == [ids[0]])
        #expect(h.info(g)?.members == [ids[0]])
        #expect(h.heartbeat(g, memberId: ids[1], generation: 2) == .unknownMemberId)
    }

    @Test func sessionExpiryTriggersRebalance() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, _) = await h.stableGroup(g, count: 2)
        h.advance(6000)
        #expect(h.heartbeat(g, memberId: ids[0], generation: 1) == .none)
        h.advance(4001)  // the follower's 10 s session is over
        #expect(h.info(g)?.members == [ids[0]])
        #expect(h.info(g)?.state == "PreparingRebalance")
        #expect(h.heartbeat(g, memberId: ids[0], generation: 1) == .rebalanceInProgress)
        #expect(h.heartbeat(g, memberId: ids[1], generation: 1) == .unknownMemberId)
        let r = await h.startJoin(g, memberId: ids[0]).value
        #expect(r.generationId == 2)
        #expect(r.leader == ids[0])
        #expect(r.members.count == 1)
    }

    @Test func leaderSessionExpiryElectsANewLeader() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, _) = await h.stableGroup(g, count: 2)
        h.advance(6000)
        #expect(h.heartbeat(g, memberId: ids[1], generation: 1) == .none)
        h.advance(4001)
        #expect(h.info(g)?.leader == ids[1])
        let r = await h.startJoin(g, memberId: ids[1]).value
        #expect(r.leader == ids[1])
        #expect(r.generationId == 2)
    }

    @Test func leaveTriggersRebalanceAndLastLeaveEmptiesTheGroup() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, _) = await h.stableGroup(g, count: 2)
        let leave = await h.leave(g, memberIds: [ids[1], "ghost"])
        #expect(leave.errorCode == 0)
        #expect(leave.members.map(\.errorCode) == [0, ErrorCode.unknownMemberId.rawValue])
        #expect(h.info(g)?.state == "PreparingRebalance")
        #expect(h.heartbeat(g, memberId: ids[0], generation: 1) == .rebalanceInProgress)
        let r = await h.startJoin(g, memberId: ids[0]).value
        #expect(r.generationId == 2)
        #expect(r.members.map(\.memberId) == [ids[0]])

        // v0–2 LeaveGroup: a single member, error at the top level.
        var old = LeaveGroupRequest()
        old.groupId = g
        old.memberId = ids[0]
        let lr = await h.coordinator.leaveGroup(old, version: 1)
        #expect(lr.errorCode == 0)
        #expect(h.info(g)?.state == "Empty")
        #expect(h.info(g)?.generation == 3)
        let again = await h.coordinator.leaveGroup(old, version: 1)
        #expect(again.errorCode == ErrorCode.unknownMemberId.rawValue)
    }

    @Test func staticMemberRestartGetsItsAssignmentWithoutRebalance() async throws {
        let h = try await GroupTestHarness.make()
        let g = "g"
        let (ids, gen) = await h.stableGroup(g, count: 2, instanceIds: ["i-a", "i-b"])
        #expect(gen == 1)
        // "i-b" restarts: no member id, same instance id and metadata.
        let r = await h.join(g, instanceId: "i-b")
        #expect(r.errorCode == 0)
        #expect(r.generationId == gen, "no generation bump")
        #expect(r.memberId != ids[1])
        #expect(r.leader == ids[0])
        #expect(r.members.isEmpty)
        #expect(h.info(g)?.state == "Stable")
        #expect(h.info(g)?.generation == gen)
        let s = await h.sync(g, memberId: r.memberId, generation: gen, instanceId: "i-b").value
        #expect(s.errorCode == 0)
        #expect(s.assignment.groupTestString == "a-\(ids[1])", "the old assignment")
        // The old incarnation is fenced.
        #expect(h.heartbeat(g, memberId: ids[1], generation: gen, instanceId: "i-b") == .fencedInstanceId)
        #expect(h.heartbeat(g, memberId: r.memberId, generation: gen, instanceId: "i-b") == .none)
        #expect(await h.commit(g, memberId: ids[0], generation: gen, offsets: [("t", 0, 1)]) == [.none])

        // The restarted leader does not become "leader" of the stable generation either.
        let leaderAgain = await h.join(g, instanceId: "i-a")
        #expect(leaderAgain.generationId == gen)
        #expect(leaderAgain.leader == ids[0])
        #expect(leaderAgain.memberId != ids[0])
        #expect(h.info(g)?.leader == leaderAgain.memberId)

        // The metadata survives a restart of the coordinator.
        let h2 = try await h.restarted()
        #expect(h2.info(g)?.members.sorted() == [leaderAgain.memberId, r.memberId].sorted())

        // Changed metadata does rebalance.
        let changed = h.startJoin(g, memberId: "", instanceId: "i-b", protocols: [("range", ["t", "u"])])
        await h.waitUntil { h.info(g)?.state == "PreparingRebalance" }
        let other = h.startJoin(g, memberId: leaderAgain.memberId, instanceId: "i-a")
        let (c, o) = (await changed.value, await other.value)
        #expect(c.generationId == gen + 1)
        #expect(o.generationId == gen + 1)
    }

    @Test func staticMemberLeavesByInstanceId() async throws {
        let h = try await GroupTestHarness.make()
        let (ids, _) = await h.stableGroup("g", count: 2, instanceIds: ["i-a", "i-b"])
        let fenced = await h.leave("g", memberIds: ["wrong"], instanceIds: ["i-b"])
        #expect(fenced.members.map(\.errorCode) == [ErrorCode.fencedInstanceId.rawValue])
        let ok = await h.leave("g", memberIds: [""], instanceIds: ["i-b"])
        #expect(ok.members.map(\.errorCode) == [0])
        #expect(h.info("g")?.members == [ids[0]])
    }

    @Test func followerSyncWaitsAndLeaderAssignmentIsPersistedFirst() async throws {
        let h = try await GroupTestHarness.make()
        _ = await h.stableGroup("g", count: 3)
        // The assignment is in the log as group metadata.
        let h2 = try await h.restarted()
        var describe = DescribeGroupsRequest()
        describe.groups = ["g"]
        let d = h2.coordinator.describeGroups(describe, version: 5).groups[0]
        #expect(d.groupState == "Stable")
        #expect(d.members.count == 3)
        #expect(d.members.allSatisfy { $0.memberAssignment.groupTestString == "a-\($0.memberId)" })
    }

    @Test func failedAssignmentWriteFailsTheSync() async throws {
        let h = try await GroupTestHarness.make { $0.initialRebalanceDelayMs = 0 }
        let r = await h.join("g", version: 3)
        #expect(r.generationId == 1)
        h.log.failAppends = true
        let s = await h.sync("g", memberId: r.memberId, generation: 1, assignments: [r.memberId: "x"]).value
        #expect(s.errorCode == ErrorCode.coordinatorNotAvailable.rawValue)
        #expect(h.info("g")?.state == "PreparingRebalance")
        h.log.failAppends = false
    }

    @Test func requestsBeforeLoadAndAfterShutdown() async throws {
        let log = GroupTestOffsetsLog()
        let c = GroupCoordinator(offsetsLog: log, config: GroupCoordinatorConfig(), logger: .init(label: "t"))
        let r = await c.joinGroup(GroupTestHarness.joinRequest(group: "g", protocols: [("range", ["t"])]), version: 5, clientId: "c", clientHost: "h")
        #expect(r.errorCode == ErrorCode.coordinatorLoadInProgress.rawValue)
        var fetch = OffsetFetchRequest()
        fetch.groupId = "g"
        #expect(c.fetchOffsets(fetch, version: 7).errorCode == ErrorCode.coordinatorLoadInProgress.rawValue)
        #expect(c.listGroups(ListGroupsRequest(), version: 4).errorCode == ErrorCode.coordinatorLoadInProgress.rawValue)
        try await c.load()
        #expect(c.listGroups(ListGroupsRequest(), version: 4).errorCode == 0)

        // Shutdown answers a parked join.
        let h = try await GroupTestHarness.make { $0.initialRebalanceDelayMs = 10_000 }
        let t = h.startJoin("g", memberId: await h.memberId("g"))
        await h.waitUntil { h.info("g")?.awaitingJoin == 1 }
        h.coordinator.shutdown()
        #expect(await t.value.errorCode == ErrorCode.coordinatorNotAvailable.rawValue)
        #expect(h.coordinator.tick() == false)
    }

    @Test func runLoopDrivesTimersAndStopsOnCancellation() async throws {
        let log = GroupTestOffsetsLog()
        var config = GroupCoordinatorConfig()
        config.initialRebalanceDelayMs = 30
        config.tickIntervalMs = 5
        let c = GroupCoordinator(offsetsLog: log, config: config, logger: .init(label: "t"))
        try await c.load()
        let runner = Task { await c.run() }
        var first = GroupTestHarness.joinRequest(group: "g", protocols: [("range", ["t"])])
        let id = await c.joinGroup(first, version: 5, clientId: "c", clientHost: "h").memberId
        first.memberId = id
        let r = await c.joinGroup(first, version: 5, clientId: "c", clientHost: "h")
        #expect(r.errorCode == 0)
        #expect(r.generationId == 1)
        runner.cancel()
        await runner.value
    }

    @Test func listGroupsFiltersByState() async throws {
        let h = try await GroupTestHarness.make()
        _ = await h.stableGroup("stable", count: 1)
        #expect(await h.commit("simple", offsets: [("t", 0, 1)]) == [.none])
        var r = ListGroupsRequest()
        let all = h.coordinator.listGroups(r, version: 4)
        #expect(all.groups.map(\.groupId) == ["simple", "stable"])
        #expect(all.groups.map(\.groupState) == ["Empty", "Stable"])
        #expect(all.groups.map(\.protocolType) == ["", "consumer"])
        r.statesFilter = ["stable"]
        #expect(h.coordinator.listGroups(r, version: 4).groups.map(\.groupId) == ["stable"])
        #expect(h.coordinator.listGroups(r, version: 3).groups.count == 2, "no filter before v4")
    }
}
