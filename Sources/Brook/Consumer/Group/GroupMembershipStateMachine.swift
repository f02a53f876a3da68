import BrookProtocol

/// Where the member stands in the group.
enum GroupPhase: Equatable, Sendable {
    /// Not a member of a generation.
    case unjoined
    /// JoinGroup or SyncGroup in flight: no heartbeats.
    case joining
    /// Member of a generation (heartbeats run, also while revoking before a rejoin).
    case stable
}

/// A JoinGroup response that succeeded.
struct JoinOutcome: Equatable, Sendable {
    var memberId: String
    var generationId: Int32
    var leader: String
    var protocolName: String
    var members: [JoinGroupResponse.JoinGroupResponseMember]

    var isLeader: Bool { leader == memberId }
}

/// Starting the rebalance over after JoinGroup or SyncGroup was refused.
struct Rejoin: Equatable, Sendable {
    /// The member left its generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION): its partitions
    /// are lost, not revoked.
    var lostGeneration: ErrorCode? = nil
    /// Forget the coordinator connection first.
    var rediscoverCoordinator = false
    /// Wait this long first.
    var after: Duration = .zero
    /// A refusal worth a warning although the group is healthy (a SyncGroup racing a new
    /// rebalance).
    var warning: ErrorCode? = nil
}

/// A consumer's membership in its group (Kafka's classic protocol) as a state machine without
/// I/O, in postgres-nio's split: the consumer's group, heartbeat and commit tasks send the
/// requests and feed the responses in as events; each event updates the membership and returns
/// the action to run (sync, assign, rejoin, rejoin after a backoff, rediscover the coordinator,
/// fail). The coordinator connection lives with the tasks, not here.
///
/// Every coordinator error is read through ``CoordinatorError``; what each request does about it
/// follows the Java client: REBALANCE_IN_PROGRESS rejoins, UNKNOWN_MEMBER_ID and
/// ILLEGAL_GENERATION lose the partitions and rejoin (forgetting the member id for the former),
/// MEMBER_ID_REQUIRED joins again with the given id, NOT_COORDINATOR looks the coordinator up
/// again, FENCED_INSTANCE_ID ends the membership.
///
/// Not thread-safe: it lives inside the consumer's locked state.
struct GroupMembershipStateMachine: Sendable {
    struct Configuration: Sendable {
        /// The group, named in errors.
        var groupId = ""
        /// Static membership's `group.instance.id`.
        var groupInstanceId: String? = nil
        var rebalanceProtocol: RebalanceProtocol = .eager
        /// The protocol (assignor) assumed when an old JoinGroup response names none.
        var defaultProtocolName = ""
        /// `retry.backoff.ms`.
        var retryBackoff: Duration = .milliseconds(100)
    }

    let configuration: Configuration

    private(set) var memberId = ""
    private(set) var generation: Int32 = -1
    private(set) var phase: GroupPhase = .unjoined
    private(set) var isLeader = false
    private(set) var protocolName: String?
    /// A (new) JoinGroup is wanted.
    private(set) var rejoinNeeded = true
    /// Counts rejoin requests, so a request made during a rebalance survives its success.
    private(set) var rejoinRequests = 0
    private(set) var rejoinReason = "initial join"
    private var rejoinRequestsAtStart = 0
    /// The last heartbeat (or join) the coordinator answered.
    private(set) var lastHeartbeat: ContinuousClock.Instant?
    /// Topic partition counts the leader assigned from, to detect changes.
    private(set) var leaderTopicCounts: [String: Int32] = [:]
    /// Every topic some member subscribes to (leader).
    private(set) var leaderTopics: Set<String> = []

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// In a generation: commits carry it and heartbeats keep it.
    var isInGeneration: Bool { phase == .stable && generation >= 0 }

    /// The member id and generation to heartbeat with, if heartbeats are due.
    var heartbeatTarget: (memberId: String, generation: Int32)? {
        isInGeneration ? (memberId, generation) : nil
    }

    private var fencedError: KafkaConsumerError {
        .fenced("another consumer uses group instance id \(configuration.groupInstanceId ?? "")")
    }

    // MARK: - rejoin requests

    /// Something calls for a rebalance (subscription or partition counts changed, a
    /// cooperative revocation to finish).
    mutating func requestRejoin(_ reason: String) {
        rejoinNeeded = true
        rejoinRequests += 1
        rejoinReason = reason
    }

    /// What the member gives up before it joins.
    enum PartitionRelease: Equatable, Sendable {
        case none
        /// Outside a generation: the partitions are lost (no commit).
        case lose(Set<TopicPartition>)
        /// In a generation: an orderly revocation (commit first).
        case revoke(Set<TopicPartition>)
    }

    /// A rebalance starts, with these partitions owned and these topics subscribed: eager
    /// members revoke everything, cooperative ones only what they no longer subscribe to.
    mutating func rebalanceStarted(owned: Set<TopicPartition>, subscription: Set<String>) -> PartitionRelease {
        rejoinRequestsAtStart = rejoinRequests
        guard !owned.isEmpty else { return .none }
        if generation < 0 { return .lose(owned) }
        if configuration.rebalanceProtocol == .eager { return .revoke(owned) }
        let unsubscribed = owned.filter { !subscription.contains($0.topic) }
        return unsubscribed.isEmpty ? .none : .revoke(unsubscribed)
    }

    // MARK: - JoinGroup

    /// A JoinGroup request goes out (no heartbeats until the rebalance ends).
    mutating func joinSent() {
        phase = .joining
    }

    enum JoinAction: Equatable, Sendable {
        /// The leader: compute the assignment from the members' subscriptions, then SyncGroup.
        case assignAndSync(JoinOutcome)
        /// A follower: SyncGroup without assignments.
        case sync(JoinOutcome)
        /// Send JoinGroup again (after `after`, having forgotten the coordinator if asked).
        case joinAgain(after: Duration, rediscoverCoordinator: Bool)
        /// Start the rebalance over.
        case rejoin(Rejoin)
        case fail(KafkaConsumerError)
    }

    mutating func joinReceived(_ response: JoinGroupResponse) -> JoinAction {
        let code = ErrorCode(rawValue: response.errorCode) ?? .unknownServerError
        guard let error = CoordinatorError(code) else {
            memberId = response.memberId
            let outcome = JoinOutcome(
                memberId: response.memberId, generationId: response.generationId, leader: response.leader,
                protocolName: response.protocolName ?? configuration.defaultProtocolName, members: response.members)
            return outcome.isLeader ? .assignAndSync(outcome) : .sync(outcome)
        }
        switch error {
        case .memberIdRequired:
            memberId = response.memberId
            return .joinAgain(after: .zero, rediscoverCoordinator: false)
        case .rebalanceInProgress:
            return .joinAgain(after: .zero, rediscoverCoordinator: false)
        case .coordinatorLoading:
            return .joinAgain(after: configuration.retryBackoff, rediscoverCoordinator: false)
        case .coordinatorMoved:
            return .joinAgain(after: configuration.retryBackoff, rediscoverCoordinator: true)
        case .memberLeftGeneration(let forget):
            leaveGeneration(code, forgetMemberId: forget, reason: "JoinGroup")
            joinAbandoned()
            return .rejoin(Rejoin(lostGeneration: code))
        case .fenced:
            joinAbandoned()
            return .fail(fencedError)
        case .other:
            joinAbandoned()
            return .fail(.groupFailure("JoinGroup failed: \(code.summary)"))
        }
    }

    /// JoinGroup failed (no answer, or refused): the member stays in its old generation, if any.
    mutating func joinAbandoned() {
        phase = generation >= 0 ? .stable : .unjoined
    }

    /// The leader computed its assignment from these partition counts of these topics.
    mutating func leaderAssigned(topics: Set<String>, partitionCounts: [String: Int32]) {
        leaderTopics = topics
        leaderTopicCounts = partitionCounts
    }

    // MARK: - SyncGroup

    enum SyncAction: Equatable, Sendable {
        /// The member's partitions in the new generation: revoke what left, add what came.
        case assign([TopicPartition])
        case rejoin(Rejoin)
        case fail(KafkaConsumerError)
    }

    /// SyncGroup answered for the generation `join` opened.
    mutating func syncReceived(_ response: SyncGroupResponse, join: JoinOutcome, now: ContinuousClock.Instant) -> SyncAction {
        let code = ErrorCode(rawValue: response.errorCode) ?? .unknownServerError
        guard let error = CoordinatorError(code) else {
            let assignment: ConsumerProtocolAssignment
            do {
                assignment = try ConsumerProtocolAssignment(decoding: response.assignment)
            } catch {
                syncAbandoned()
                return .fail(.groupFailure("undecodable assignment from the leader: \(error)"))
            }
            memberId = join.memberId
            generation = join.generationId
            protocolName = join.protocolName
            isLeader = join.isLeader
            phase = .stable
            lastHeartbeat = now
            // A rejoin asked for while this rebalance ran needs another one.
            if rejoinRequests == rejoinRequestsAtStart { rejoinNeeded = false }
            return .assign(assignment.partitions)
        }
        syncAbandoned()
        switch error {
        case .rebalanceInProgress:
            return .rejoin(Rejoin())
        case .memberLeftGeneration(let forget):
            leaveGeneration(code, forgetMemberId: forget, reason: "SyncGroup")
            return .rejoin(Rejoin(lostGeneration: code))
        case .coordinatorMoved:
            return .rejoin(Rejoin(rediscoverCoordinator: true))
        case .coordinatorLoading:
            return .rejoin(Rejoin(after: configuration.retryBackoff))
        case .fenced:
            return .fail(fencedError)
        case .other(.invalidRequest), .other(.unknownServerError):
            // Seen from librdkafka's mock coordinator when a leader's assignment races a new
            // rebalance: the group is still healthy, so rejoin (after a backoff) instead of dying.
            return .rejoin(Rejoin(after: configuration.retryBackoff, warning: code))
        case .memberIdRequired, .other:
            return .fail(.groupFailure("SyncGroup failed: \(code.summary)"))
        }
    }

    /// SyncGroup (or the leader's assignment) failed: the member is in no generation until it
    /// rejoins.
    mutating func syncAbandoned() {
        phase = .unjoined
    }

    // MARK: - Heartbeat

    enum HeartbeatAction: Equatable, Sendable {
        /// Nothing to do.
        case none
        /// Wake the group task: it rejoins (the partitions are lost when `lostGeneration`).
        case rejoin(lostGeneration: ErrorCode?)
        /// Forget the coordinator; the next heartbeat goes to the one found again.
        case rediscoverCoordinator
        case fail(KafkaConsumerError)
        /// An error that changes nothing but is worth a warning.
        case warn(ErrorCode)
    }

    /// The coordinator answered a heartbeat sent in `generation`.
    mutating func heartbeatReceived(_ code: ErrorCode, generation sent: Int32, now: ContinuousClock.Instant) -> HeartbeatAction {
        guard let error = CoordinatorError(code) else {
            lastHeartbeat = now
            return .none
        }
        switch error {
        case .rebalanceInProgress:
            lastHeartbeat = now
            // Only the first heartbeat of a rebalance asks (a late answer about an older
            // generation asks nothing).
            guard generation == sent, !rejoinNeeded else { return .none }
            requestRejoin("the group is rebalancing")
            return .rejoin(lostGeneration: nil)
        case .memberLeftGeneration(let forget):
            guard generation == sent else { return .none }
            leaveGeneration(code, forgetMemberId: forget, reason: "heartbeat")
            return .rejoin(lostGeneration: code)
        case .fenced:
            return .fail(fencedError)
        case .coordinatorMoved:
            return .rediscoverCoordinator
        case .coordinatorLoading, .memberIdRequired, .other:
            return .warn(code)
        }
    }

    /// No heartbeat answered within the session: the coordinator has probably moved or expelled
    /// this member; the next heartbeat (to a rediscovered coordinator) tells. Returns whether to
    /// forget the coordinator.
    func heartbeatOverdue(now: ContinuousClock.Instant, sessionTimeout: Duration) -> Bool {
        guard let lastHeartbeat else { return false }
        return now - lastHeartbeat > sessionTimeout
    }

    // MARK: - OffsetCommit and OffsetFetch

    enum OffsetRequestAction: Sendable {
        case done
        /// Send the request again after `after`.
        case retry(after: Duration, rediscoverCoordinator: Bool)
        /// Throw this to the caller.
        case fail(any Error)
        /// The member left its generation: wake the group task (it rejoins), then throw this.
        case failLostGeneration(KafkaConsumerError, ErrorCode)
        /// Another consumer took the instance id: the membership fails with `membership`, the
        /// caller gets `thrown`.
        case failFenced(membership: KafkaConsumerError, thrown: KafkaConsumerError)
    }

    /// Attempts of a commit or an offset fetch whose request failed on the way (connection
    /// lost, timeout).
    static let offsetRequestSendAttempts = 5

    /// An OffsetCommit or OffsetFetch request got no answer (its `attempt`th, from 1).
    func offsetRequestFailed(_ error: any Error, attempt: Int) -> OffsetRequestAction {
        if let e = error as? KafkaClientError, e.isRetriable, attempt < Self.offsetRequestSendAttempts {
            return .retry(after: configuration.retryBackoff, rediscoverCoordinator: true)
        }
        return .fail(error)
    }

    /// OffsetCommit answered on its `attempt`th try (from 1) with `code`, the first partition
    /// error (or none).
    mutating func commitReceived(_ code: ErrorCode, attempt: Int) -> OffsetRequestAction {
        let brokerError = KafkaClientError.broker(code, resource: "group \(configuration.groupId)", message: "OffsetCommit")
        guard let error = CoordinatorError(code) else { return .done }
        switch error {
        case .coordinatorMoved, .other(.requestTimedOut):
            guard attempt < 5 else { return .fail(brokerError) }
            return .retry(after: configuration.retryBackoff, rediscoverCoordinator: true)
        case .coordinatorLoading:
            guard attempt < 10 else { return .fail(brokerError) }
            return .retry(after: configuration.retryBackoff * attempt, rediscoverCoordinator: false)
        case .rebalanceInProgress:
            return .fail(KafkaConsumerError.commitFailed("the group is rebalancing (REBALANCE_IN_PROGRESS)"))
        case .memberLeftGeneration(let forget):
            leaveGeneration(code, forgetMemberId: forget, reason: "commit")
            return .failLostGeneration(.commitFailed("the group moved on without this member (\(code.name))"), code)
        case .fenced:
            return .failFenced(
                membership: .fenced("group instance id \(configuration.groupInstanceId ?? "") is used by another consumer"),
                thrown: .fenced("commit refused: FENCED_INSTANCE_ID"))
        case .memberIdRequired, .other:
            return .fail(brokerError)
        }
    }

    /// OffsetFetch answered on its `attempt`th try (from 1) with `code`, the first error (or
    /// none). The membership does not change.
    func offsetFetchReceived(_ code: ErrorCode, attempt: Int) -> OffsetRequestAction {
        let brokerError = KafkaClientError.broker(code, resource: "group \(configuration.groupId)", message: "OffsetFetch")
        guard let error = CoordinatorError(code) else { return .done }
        switch error {
        case .coordinatorMoved:
            guard attempt < 5 else { return .fail(brokerError) }
            return .retry(after: configuration.retryBackoff, rediscoverCoordinator: true)
        case .coordinatorLoading, .other(.unstableOffsetCommit):
            // Offsets of a transaction not yet decided, or the group still loading: wait longer
            // than for a moved coordinator.
            guard attempt < 20 else { return .fail(brokerError) }
            return .retry(after: configuration.retryBackoff * min(attempt, 5), rediscoverCoordinator: false)
        default:
            return .fail(brokerError)
        }
    }

    // MARK: - leaving and ending

    enum LeaveAction: Equatable, Sendable {
        /// Not a member: nothing to leave.
        case none
        /// A static member keeps its membership until the session expires: restarted in time,
        /// it gets its partitions back without a rebalance.
        case stayAsStaticMember(memberId: String)
        case sendLeaveGroup(memberId: String)
    }

    /// The consumer closes.
    func leaveRequested() -> LeaveAction {
        guard !memberId.isEmpty else { return .none }
        if configuration.groupInstanceId != nil { return .stayAsStaticMember(memberId: memberId) }
        return .sendLeaveGroup(memberId: memberId)
    }

    /// LeaveGroup was sent (whatever its answer): the member is out.
    mutating func left() {
        memberId = ""
        generation = -1
    }

    /// The membership failed for good (fenced, a fatal group error) or the consumer closed.
    mutating func ended() {
        phase = .unjoined
    }

    // MARK: - helpers

    /// The coordinator no longer counts this member in its generation: its partitions are lost
    /// and it rejoins (as a new member when the coordinator forgot its id).
    private mutating func leaveGeneration(_ code: ErrorCode, forgetMemberId: Bool, reason: String) {
        if forgetMemberId { memberId = "" }
        generation = -1
        phase = .unjoined
        requestRejoin("\(reason): \(code.name)")
    }
}
