import BrookProtocol
import NIOCore
import Testing

@testable import Brook

/// The consumer's group membership without I/O: JoinGroup, SyncGroup, Heartbeat and
/// OffsetCommit answers go in, actions come out.
@Suite("Group membership state machine")
struct GroupMembershipStateMachineTests {
    let a = TP("t", 0)
    let b = TP("t", 1)
    let other = TP("u", 0)
    let backoff = Duration.milliseconds(250)
    let now = ContinuousClock.now

    func machine(instance: String? = nil, _ rebalance: RebalanceProtocol = .eager) -> GroupMembershipStateMachine {
        GroupMembershipStateMachine(
            configuration: .init(
                groupId: "g", groupInstanceId: instance, rebalanceProtocol: rebalance, defaultProtocolName: "range",
                retryBackoff: backoff))
    }

    func joinResponse(
        _ code: ErrorCode = .none, member: String = "m-1", leader: String = "m-1", generation: Int32 = 3,
        protocolName: String? = "range", members: [String] = ["m-1", "m-2"]
    ) -> JoinGroupResponse {
        var r = JoinGroupResponse()
        r.errorCode = code.rawValue
        r.memberId = member
        r.leader = leader
        r.generationId = generation
        r.protocolName = protocolName
        r.members = members.map { id in
            var m = JoinGroupResponse.JoinGroupResponseMember()
            m.memberId = id
            return m
        }
        return r
    }

    func syncResponse(_ code: ErrorCode = .none, _ partitions: [TP] = []) -> SyncGroupResponse {
        var r = SyncGroupResponse()
        r.errorCode = code.rawValue
        if code == .none { r.assignment = ConsumerProtocolAssignment(partitions: partitions).encode() }
        return r
    }

    /// A member of generation 3 owning `partitions`.
    func joined(
        _ sm: inout GroupMembershipStateMachine, member: String = "m-1", leader: String = "m-1", _ partitions: [TP] = []
    ) {
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        let join: JoinOutcome
        switch sm.joinReceived(joinResponse(member: member, leader: leader)) {
        case .assignAndSync(let j), .sync(let j): join = j
        default:
            Issue.record("join did not succeed")
            return
        }
        #expect(sm.syncReceived(syncResponse(.none, partitions), join: join, now: now) == .assign(partitions))
    }

    // MARK: - joining

    @Test func joinsAsLeaderAndSyncsTheAssignment() {
        var sm = machine()
        #expect(sm.rebalanceStarted(owned: [], subscription: ["t"]) == .none)
        sm.joinSent()
        #expect(sm.phase == .joining)
        #expect(sm.heartbeatTarget == nil)
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse()) else {
            Issue.record("the leader was not asked to assign")
            return
        }
        #expect(join.isLeader && join.generationId == 3 && join.protocolName == "range" && join.members.count == 2)
        #expect(sm.memberId == "m-1")
        #expect(sm.generation == -1)  // not in the generation before SyncGroup
        #expect(sm.syncReceived(syncResponse(.none, [a, b]), join: join, now: now) == .assign([a, b]))
        #expect(sm.phase == .stable && sm.generation == 3 && sm.isLeader && sm.protocolName == "range")
        #expect(!sm.rejoinNeeded)
        #expect(sm.lastHeartbeat == now)
        #expect(sm.heartbeatTarget?.memberId == "m-1" && sm.heartbeatTarget?.generation == 3)
    }

    @Test func joinsAsFollower() {
        var sm = machine()
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        guard case .sync(let join) = sm.joinReceived(joinResponse(member: "m-2", leader: "m-1", protocolName: nil, members: [])) else {
            Issue.record("the follower was asked to assign")
            return
        }
        // An old JoinGroup version names no protocol: the consumer's first assignor.
        #expect(join.protocolName == "range")
        #expect(sm.syncReceived(syncResponse(.none, [b]), join: join, now: now) == .assign([b]))
        #expect(!sm.isLeader && sm.memberId == "m-2" && sm.isInGeneration)
    }

    @Test func aRejoinRequestedDuringTheRebalanceSurvivesIt() {
        var sm = machine()
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse()) else { return }
        sm.requestRejoin("subscription changed")
        #expect(sm.syncReceived(syncResponse(.none, [a]), join: join, now: now) == .assign([a]))
        #expect(sm.rejoinNeeded && sm.rejoinReason == "subscription changed")
    }

    @Test func eagerMembersRevokeEverythingCooperativeOnlyUnsubscribedTopics() {
        var eager = machine()
        joined(&eager, [a, other])
        eager.requestRejoin("test")
        #expect(eager.rebalanceStarted(owned: [a, other], subscription: ["t", "u"]) == .revoke([a, other]))

        var cooperative = machine(.cooperative)
        joined(&cooperative, [a, other])
        #expect(cooperative.rebalanceStarted(owned: [a, other], subscription: ["t", "u"]) == .none)
        #expect(cooperative.rebalanceStarted(owned: [a, other], subscription: ["t"]) == .revoke([other]))
    }

    @Test func memberIdRequiredJoinsAgainWithTheGivenId() {
        var sm = machine()
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        #expect(sm.joinReceived(joinResponse(.memberIdRequired, member: "m-given")) == .joinAgain(after: .zero, rediscoverCoordinator: false))
        #expect(sm.memberId == "m-given")
        #expect(sm.phase == .joining)
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse(member: "m-given", leader: "m-given")) else {
            Issue.record("second join failed")
            return
        }
        #expect(join.memberId == "m-given")
    }

    // MARK: - rebalances

    @Test func rebalanceInProgressRejoins() {
        var sm = machine()
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        #expect(sm.joinReceived(joinResponse(.rebalanceInProgress)) == .joinAgain(after: .zero, rediscoverCoordinator: false))

        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse()) else { return }
        #expect(sm.syncReceived(syncResponse(.rebalanceInProgress), join: join, now: now) == .rejoin(Rejoin()))
        #expect(sm.phase == .unjoined)
    }

    @Test func heartbeatRebalanceInProgressAsksOnceForItsGeneration() {
        var sm = machine()
        joined(&sm, [a])
        let later = now + .seconds(1)
        #expect(sm.heartbeatReceived(.none, generation: 3, now: later) == .none)
        #expect(sm.lastHeartbeat == later)
        #expect(sm.heartbeatReceived(.rebalanceInProgress, generation: 3, now: later) == .rejoin(lostGeneration: nil))
        #expect(sm.rejoinNeeded && sm.rejoinReason == "the group is rebalancing")
        // Already rejoining: no second request.
        #expect(sm.heartbeatReceived(.rebalanceInProgress, generation: 3, now: later) == .none)
        // The member keeps its partitions (and generation) until it rejoins.
        #expect(sm.generation == 3 && sm.isInGeneration)
        #expect(sm.rebalanceStarted(owned: [a], subscription: ["t"]) == .revoke([a]))
    }

    @Test func aLateHeartbeatAnswerAboutAnOlderGenerationChangesNothing() {
        var sm = machine()
        joined(&sm, [a])
        #expect(sm.heartbeatReceived(.rebalanceInProgress, generation: 2, now: now) == .none)
        #expect(sm.heartbeatReceived(.illegalGeneration, generation: 2, now: now) == .none)
        #expect(!sm.rejoinNeeded && sm.generation == 3)
    }

    @Test func unknownMemberIdForgetsTheIdAndLosesThePartitions() {
        var sm = machine()
        joined(&sm, [a])
        #expect(sm.heartbeatReceived(.unknownMemberId, generation: 3, now: now) == .rejoin(lostGeneration: .unknownMemberId))
        #expect(sm.memberId == "" && sm.generation == -1 && sm.phase == .unjoined)
        #expect(sm.rejoinNeeded && sm.rejoinReason == "heartbeat: UNKNOWN_MEMBER_ID")
        #expect(sm.heartbeatTarget == nil)
        // Out of the generation: the partitions are lost, not revoked (no commit).
        #expect(sm.rebalanceStarted(owned: [a], subscription: ["t"]) == .lose([a]))

        sm.joinSent()
        #expect(sm.joinReceived(joinResponse(.unknownMemberId)) == .rejoin(Rejoin(lostGeneration: .unknownMemberId)))
        #expect(sm.memberId == "" && sm.phase == .unjoined && sm.rejoinReason == "JoinGroup: UNKNOWN_MEMBER_ID")
    }

    @Test func illegalGenerationKeepsTheMemberId() {
        var sm = machine()
        joined(&sm, [a])
        sm.requestRejoin("test")
        _ = sm.rebalanceStarted(owned: [a], subscription: ["t"])
        sm.joinSent()
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse(generation: 4)) else { return }
        #expect(sm.syncReceived(syncResponse(.illegalGeneration), join: join, now: now) == .rejoin(Rejoin(lostGeneration: .illegalGeneration)))
        #expect(sm.memberId == "m-1" && sm.generation == -1 && sm.phase == .unjoined)
        #expect(sm.rejoinReason == "SyncGroup: ILLEGAL_GENERATION")
    }

    @Test func aRefusedJoinKeepsTheOldGeneration() {
        var sm = machine()
        joined(&sm, [a])
        sm.requestRejoin("test")
        sm.joinSent()
        #expect(sm.joinReceived(joinResponse(.inconsistentGroupProtocol)) == .fail(.groupFailure("JoinGroup failed: INCONSISTENT_GROUP_PROTOCOL (23)")))
        #expect(sm.phase == .stable && sm.generation == 3)

        var fresh = machine()
        fresh.joinSent()
        fresh.joinAbandoned()  // e.g. the connection closed
        #expect(fresh.phase == .unjoined)
    }

    @Test func syncRefusalsThatLeaveTheGroupHealthyRejoinAfterABackoff() {
        var sm = machine()
        _ = sm.rebalanceStarted(owned: [], subscription: ["t"])
        sm.joinSent()
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse()) else { return }
        #expect(sm.syncReceived(syncResponse(.invalidRequest), join: join, now: now) == .rejoin(Rejoin(after: backoff, warning: .invalidRequest)))
        #expect(sm.syncReceived(syncResponse(.unknownServerError), join: join, now: now) == .rejoin(Rejoin(after: backoff, warning: .unknownServerError)))
        #expect(sm.syncReceived(syncResponse(.inconsistentGroupProtocol), join: join, now: now) == .fail(.groupFailure("SyncGroup failed: INCONSISTENT_GROUP_PROTOCOL (23)")))
        var garbage = SyncGroupResponse()
        garbage.assignment = ByteBuffer(bytes: [0, 1])
        guard case .fail(let e) = sm.syncReceived(garbage, join: join, now: now), e.code == .groupFailure else {
            Issue.record("an undecodable assignment was accepted")
            return
        }
        #expect(sm.phase == .unjoined && sm.generation == -1)
    }

    // MARK: - static membership

    @Test func aFencedStaticMemberFails() {
        let fenced = KafkaConsumerError.fenced("another consumer uses group instance id i-1")
        var sm = machine(instance: "i-1")
        sm.joinSent()
        #expect(sm.joinReceived(joinResponse(.fencedInstanceId)) == .fail(fenced))
        #expect(sm.phase == .unjoined)

        joined(&sm, [a])
        #expect(sm.heartbeatReceived(.fencedInstanceId, generation: 3, now: now) == .fail(fenced))
        guard case .failFenced(let membership, let thrown) = sm.commitReceived(.fencedInstanceId, attempt: 1) else {
            Issue.record("a fenced commit did not fail the membership")
            return
        }
        #expect(membership == .fenced("group instance id i-1 is used by another consumer"))
        #expect(thrown == .fenced("commit refused: FENCED_INSTANCE_ID"))
        sm.ended()
        #expect(sm.phase == .unjoined && sm.heartbeatTarget == nil)

        var syncing = machine(instance: "i-1")
        syncing.joinSent()
        guard case .assignAndSync(let join) = syncing.joinReceived(joinResponse()) else { return }
        #expect(syncing.syncReceived(syncResponse(.fencedInstanceId), join: join, now: now) == .fail(fenced))
    }

    @Test func aStaticMemberStaysInTheGroupWhenClosing() {
        var dynamic = machine()
        #expect(dynamic.leaveRequested() == .none)
        joined(&dynamic, [a])
        #expect(dynamic.leaveRequested() == .sendLeaveGroup(memberId: "m-1"))
        dynamic.left()
        #expect(dynamic.memberId == "" && dynamic.generation == -1)

        var staticMember = machine(instance: "i-1")
        joined(&staticMember, [a])
        #expect(staticMember.leaveRequested() == .stayAsStaticMember(memberId: "m-1"))
    }

    // MARK: - the coordinator

    @Test func aMovedCoordinatorIsLookedUpAgain() {
        var sm = machine()
        sm.joinSent()
        for code in [ErrorCode.notCoordinator, .coordinatorNotAvailable] {
            #expect(sm.joinReceived(joinResponse(code)) == .joinAgain(after: backoff, rediscoverCoordinator: true))
        }
        #expect(sm.joinReceived(joinResponse(.coordinatorLoadInProgress)) == .joinAgain(after: backoff, rediscoverCoordinator: false))
        guard case .assignAndSync(let join) = sm.joinReceived(joinResponse()) else { return }
        #expect(sm.syncReceived(syncResponse(.notCoordinator), join: join, now: now) == .rejoin(Rejoin(rediscoverCoordinator: true)))
        #expect(sm.syncReceived(syncResponse(.coordinatorLoadInProgress), join: join, now: now) == .rejoin(Rejoin(after: backoff)))

        joined(&sm, [a])
        #expect(sm.heartbeatReceived(.notCoordinator, generation: 3, now: now) == .rediscoverCoordinator)
        #expect(sm.heartbeatReceived(.coordinatorNotAvailable, generation: 3, now: now) == .rediscoverCoordinator)
        #expect(sm.heartbeatReceived(.coordinatorLoadInProgress, generation: 3, now: now) == .warn(.coordinatorLoadInProgress))
        // The membership itself is untouched by a coordinator move.
        #expect(sm.isInGeneration && !sm.rejoinNeeded)
    }

    @Test func heartbeatsOverdueForASessionForgetTheCoordinator() {
        var sm = machine()
        #expect(!sm.heartbeatOverdue(now: now + .seconds(100), sessionTimeout: .seconds(10)))
        joined(&sm, [a])
        #expect(!sm.heartbeatOverdue(now: now + .seconds(10), sessionTimeout: .seconds(10)))
        #expect(sm.heartbeatOverdue(now: now + .seconds(11), sessionTimeout: .seconds(10)))
    }

    // MARK: - commits

    @Test func commitErrorsMapToRetriesAndFailures() {
        var sm = machine()
        joined(&sm, [a])
        guard case .done = sm.commitReceived(.none, attempt: 1) else { Issue.record("success not done"); return }

        for code in [ErrorCode.notCoordinator, .coordinatorNotAvailable, .requestTimedOut] {
            guard case .retry(backoff, rediscoverCoordinator: true) = sm.commitReceived(code, attempt: 4) else {
                Issue.record("\(code) not retried on a rediscovered coordinator"); return
            }
            guard case .fail(let e as KafkaClientError) = sm.commitReceived(code, attempt: 5), e.errorCode == code else {
                Issue.record("\(code) retried forever"); return
            }
        }
        guard case .retry(let after, rediscoverCoordinator: false) = sm.commitReceived(.coordinatorLoadInProgress, attempt: 3) else {
            Issue.record("loading not retried"); return
        }
        #expect(after == backoff * 3)
        guard case .fail = sm.commitReceived(.coordinatorLoadInProgress, attempt: 10) else { Issue.record("loading retried forever"); return }

        guard case .fail(let e as KafkaConsumerError) = sm.commitReceived(.rebalanceInProgress, attempt: 1), e.code == .commitFailed else {
            Issue.record("a commit during a rebalance did not fail"); return
        }
        #expect(e.message?.contains("REBALANCE_IN_PROGRESS") == true)
        #expect(sm.isInGeneration)  // the heartbeat, not the commit, starts the rejoin

        guard case .fail(let e as KafkaClientError) = sm.commitReceived(.offsetMetadataTooLarge, attempt: 1),
            e.code == .broker, e.errorCode == .offsetMetadataTooLarge, e.message == "OffsetCommit"
        else { Issue.record("an unexpected error was not reported"); return }
        #expect(e.resource == "group g")
    }

    @Test func aCommitFromAnOldGenerationLosesIt() {
        var sm = machine()
        joined(&sm, [a])
        guard case .failLostGeneration(let error, .illegalGeneration) = sm.commitReceived(.illegalGeneration, attempt: 1) else {
            Issue.record("ILLEGAL_GENERATION did not end the generation"); return
        }
        #expect(error == .commitFailed("the group moved on without this member (ILLEGAL_GENERATION)"))
        #expect(sm.memberId == "m-1" && sm.generation == -1 && sm.rejoinNeeded && sm.rejoinReason == "commit: ILLEGAL_GENERATION")

        joined(&sm, [a])
        guard case .failLostGeneration(_, .unknownMemberId) = sm.commitReceived(.unknownMemberId, attempt: 1) else {
            Issue.record("UNKNOWN_MEMBER_ID did not end the generation"); return
        }
        #expect(sm.memberId == "")
    }

    @Test func unansweredOffsetRequestsRetryAFewTimes() {
        let sm = machine()
        guard case .retry(backoff, rediscoverCoordinator: true) = sm.offsetRequestFailed(KafkaClientError.connectionClosed("x"), attempt: 4) else {
            Issue.record("a lost connection was not retried"); return
        }
        guard case .fail = sm.offsetRequestFailed(KafkaClientError.connectionClosed("x"), attempt: 5) else {
            Issue.record("retried forever"); return
        }
        guard case .fail = sm.offsetRequestFailed(KafkaClientError.protocolViolation("x"), attempt: 1) else {
            Issue.record("a non-retriable error was retried"); return
        }
        guard case .fail = sm.offsetRequestFailed(CancellationError(), attempt: 1) else {
            Issue.record("cancellation was retried"); return
        }
    }

    @Test func offsetFetchWaitsLongerForUndecidedOffsets() {
        let sm = machine()
        guard case .done = sm.offsetFetchReceived(.none, attempt: 1) else { Issue.record("success not done"); return }
        guard case .retry(let after, rediscoverCoordinator: false) = sm.offsetFetchReceived(.unstableOffsetCommit, attempt: 9) else {
            Issue.record("UNSTABLE_OFFSET_COMMIT not retried"); return
        }
        #expect(after == backoff * 5)
        guard case .fail = sm.offsetFetchReceived(.unstableOffsetCommit, attempt: 20) else { Issue.record("retried forever"); return }
        guard case .retry(backoff, rediscoverCoordinator: true) = sm.offsetFetchReceived(.notCoordinator, attempt: 1) else {
            Issue.record("NOT_COORDINATOR not retried"); return
        }
        guard case .fail = sm.offsetFetchReceived(.groupAuthorizationFailed, attempt: 1) else { Issue.record("retried"); return }
    }

    // MARK: - the mapping

    @Test func oneMeaningPerCoordinatorError() {
        #expect(CoordinatorError(.none) == nil)
        #expect(CoordinatorError(.notCoordinator) == .coordinatorMoved)
        #expect(CoordinatorError(.coordinatorNotAvailable) == .coordinatorMoved)
        #expect(CoordinatorError(.coordinatorLoadInProgress) == .coordinatorLoading)
        #expect(CoordinatorError(.rebalanceInProgress) == .rebalanceInProgress)
        #expect(CoordinatorError(.unknownMemberId) == .memberLeftGeneration(forgetMemberId: true))
        #expect(CoordinatorError(.illegalGeneration) == .memberLeftGeneration(forgetMemberId: false))
        #expect(CoordinatorError(.memberIdRequired) == .memberIdRequired)
        #expect(CoordinatorError(.fencedInstanceId) == .fenced)
        #expect(CoordinatorError(.groupAuthorizationFailed) == .other(.groupAuthorizationFailed))
    }
}
