import BrookProtocol
import Foundation
import Logging
import Metrics
import NIOCore

/// Continuations to resume and work to start once the coordinator's lock is released.
struct GroupEffects: Sendable {
    var joins: [(GroupJoinWaiter, GroupJoinResult)] = []
    var syncs: [(GroupSyncWaiter, GroupSyncResult)] = []
    var commits: [(CheckedContinuation<OffsetCommitResponse, Never>, OffsetCommitResponse)] = []
    var acks: [CheckedContinuation<Void, Never>] = []
    var startWriter = false

    mutating func resume(_ w: GroupJoinWaiter, _ r: GroupJoinResult) { joins.append((w, r)) }
    mutating func resume(_ w: GroupSyncWaiter, _ r: GroupSyncResult) { syncs.append((w, r)) }

    func runResumptions() {
        for (w, r) in joins { w.resume(returning: r) }
        for (w, r) in syncs { w.resume(returning: r) }
        for (w, r) in commits { w.resume(returning: r) }
        for w in acks { w.resume() }
    }
}

/// A group of records queued for the offsets log, and what to do once they are durable.
struct OffsetsLogWrite: Sendable {
    var records: [ConsumerOffsets.Record]
    var completion: OffsetsLogWriteCompletion
}

enum OffsetsLogWriteCompletion: Sendable {
    case none
    /// Resumed after the append (whether or not it succeeded: tombstones are best effort, as in Kafka).
    case ack(CheckedContinuation<Void, Never>)
    /// An OffsetCommit: `slots` are the (topic, partition) indexes of `response` that were written.
    case offsetCommit(
        group: String, partitions: [GroupTopicPartition], response: OffsetCommitResponse, slots: [(Int, Int)],
        waiter: CheckedContinuation<OffsetCommitResponse, Never>)
    /// The leader's SyncGroup: the assignment is handed out once it is durable.
    case syncAssignment(group: String, generation: Int32, assignments: [String: ByteBuffer])
    /// A static member rejoined a stable group under a new member id.
    case staticMemberRejoin(group: String, generation: Int32, memberId: String, leaderId: String)
}

struct GroupCoordinatorMetrics: Sendable {
    let groups = Gauge(label: "brook_broker_groups")
    let rebalancesStarted = Counter(label: "brook_broker_group_rebalances_started_total")
    let rebalancesCompleted = Counter(label: "brook_broker_group_rebalances_total")
    let offsetCommits = Counter(label: "brook_broker_group_offset_commits_total")
    let expiredOffsets = Counter(label: "brook_broker_group_offsets_expired_total")
    let compactions = Counter(label: "brook_broker_group_offsets_compactions_total")
}

/// The coordinator's state machine: all group state and every transition, without I/O. Each
/// method runs under `GroupCoordinator`'s lock, takes the current time, and records in
/// `GroupEffects` which waiting requests to answer and whether the log writer must start.
final class GroupCoordinatorState {
    let config: GroupCoordinatorConfig
    let logger: Logger
    let metrics: GroupCoordinatorMetrics

    var groups: [String: ClassicGroup] = [:]
    var isLoaded = false
    var isActive = true

    /// Writes waiting for the writer, in the order their records must reach the log.
    var writeQueue: [OffsetsLogWrite] = []
    var writerRunning = false
    var compactionRequested = false
    var compactionWaiters: [CheckedContinuation<Void, Never>] = []
    var nextRetentionCheck: Int64 = 0

    init(config: GroupCoordinatorConfig, logger: Logger, metrics: GroupCoordinatorMetrics) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
    }

    func enqueue(_ write: OffsetsLogWrite, _ effects: inout GroupEffects) {
        writeQueue.append(write)
        if !writerRunning {
            writerRunning = true
            effects.startWriter = true
        }
    }

    func recordGroupCount() { metrics.groups.record(groups.count) }

    /// An error every group request gets before anything else, if any.
    var unavailableError: ErrorCode? {
        if !isActive { return .coordinatorNotAvailable }
        if !isLoaded { return .coordinatorLoadInProgress }
        return nil
    }

    // MARK: - JoinGroup

    func join(
        _ r: JoinGroupRequest, version: Int16, clientId: String, clientHost: String, now: Int64,
        waiter: GroupJoinWaiter, _ effects: inout GroupEffects
    ) {
        func fail(_ e: ErrorCode, memberId: String? = nil) {
            effects.resume(waiter, .failure(e, memberId: memberId ?? r.memberId))
        }
        if let e = unavailableError { return fail(e) }
        guard !r.groupId.isEmpty else { return fail(.invalidGroupId) }
        guard r.sessionTimeoutMs >= config.minSessionTimeoutMs, r.sessionTimeoutMs <= config.maxSessionTimeoutMs else {
            return fail(.invalidSessionTimeout)
        }
        // v0 has no rebalance timeout: the session timeout serves as one.
        let rebalanceTimeoutMs = version == 0 || r.rebalanceTimeoutMs <= 0 ? r.sessionTimeoutMs : r.rebalanceTimeoutMs
        // Protocols are keyed by name (Kafka's request schema maps them by name): keep the first.
        var seen = Set<String>()
        let protocols = r.protocols.compactMap { p in
            seen.insert(p.name).inserted ? GroupProtocol(name: p.name, metadata: p.metadata) : nil
        }
        let instanceId = version >= 5 ? r.groupInstanceId : nil
        let isUnknownMember = r.memberId.isEmpty

        let group: ClassicGroup
        if let g = groups[r.groupId] {
            group = g
        } else {
            guard isUnknownMember else { return fail(.unknownMemberId) }
            guard !r.protocolType.isEmpty, !protocols.isEmpty else { return fail(.inconsistentGroupProtocol) }
            group = ClassicGroup(groupId: r.groupId, now: now)
            groups[r.groupId] = group
            recordGroupCount()
        }
        guard !group.is(.dead) else { return fail(.coordinatorNotAvailable) }
        guard group.supportsProtocols(type: r.protocolType, names: protocols.map(\.name)) else {
            return fail(.inconsistentGroupProtocol)
        }

        let params = JoinParams(
            protocolType: r.protocolType, protocols: protocols, instanceId: instanceId, clientId: clientId,
            clientHost: clientHost, rebalanceTimeoutMs: rebalanceTimeoutMs, sessionTimeoutMs: r.sessionTimeoutMs)
        if isUnknownMember {
            joinUnknownMember(group, params, requireKnownMemberId: version >= 4, now: now, waiter: waiter, &effects)
        } else {
            joinKnownMember(group, memberId: r.memberId, params, now: now, waiter: waiter, &effects)
        }
        if group.is(.preparingRebalance) { checkJoinCompletion(group, now: now, &effects) }
    }

    struct JoinParams {
        var protocolType: String
        var protocols: [GroupProtocol]
        var instanceId: String?
        var clientId: String
        var clientHost: String
        var rebalanceTimeoutMs: Int32
        var sessionTimeoutMs: Int32
    }

    private func joinUnknownMember(
        _ group: ClassicGroup, _ p: JoinParams, requireKnownMemberId: Bool, now: Int64, waiter: GroupJoinWaiter,
        _ effects: inout GroupEffects
    ) {
        let newMemberId = "\(p.clientId)-\(UUID().uuidString.lowercased())"
        if let instanceId = p.instanceId, let oldMemberId = group.staticMemberId(instanceId) {
            rejoinStaticMember(group, instanceId: instanceId, oldMemberId: oldMemberId, newMemberId: newMemberId, p, now: now, waiter: waiter, &effects)
            return
        }
        guard group.members.count + group.pendingMembers.count < config.maxGroupSize else {
            effects.resume(waiter, .failure(.groupMaxSizeReached))
            return
        }
        if p.instanceId == nil && requireKnownMemberId {
            // KIP-394: the member must come back with this id, so that a client that times out and
            // retries does not leave a stale member behind for the whole rebalance.
            group.pendingMembers[newMemberId] = now + Int64(p.sessionTimeoutMs)
            effects.resume(waiter, .failure(.memberIdRequired, memberId: newMemberId))
            return
        }
        addMemberAndRebalance(group, memberId: newMemberId, p, now: now, waiter: waiter, &effects)
    }

    private func joinKnownMember(
        _ group: ClassicGroup, memberId: String, _ p: JoinParams, now: Int64, waiter: GroupJoinWaiter, _ effects: inout GroupEffects
    ) {
        if group.pendingMembers[memberId] != nil {
            // Pending members are dynamic; an instance id already taken cannot be claimed this way.
            if let instanceId = p.instanceId, group.staticMemberId(instanceId) != nil {
                effects.resume(waiter, .failure(.fencedInstanceId, memberId: memberId))
                return
            }
            addMemberAndRebalance(group, memberId: memberId, p, now: now, waiter: waiter, &effects)
            return
        }
        if group.isStaticMemberFenced(instanceId: p.instanceId, memberId: memberId) {
            effects.resume(waiter, .failure(.fencedInstanceId, memberId: memberId))
            return
        }
        let instanceUnknown = p.instanceId.map { group.staticMemberId($0) == nil } ?? false
        guard let member = group.member(memberId), !instanceUnknown else {
            effects.resume(waiter, .failure(.unknownMemberId, memberId: memberId))
            return
        }
        member.clientId = p.clientId
        member.clientHost = p.clientHost
        switch group.state {
        case .preparingRebalance:
            updateMemberAndRebalance(group, member, p, now: now, waiter: waiter, &effects)
        case .completingRebalance:
            if member.matches(p.protocols) {
                // A rejoin with the same metadata (e.g. the response was lost): answer with the
                // current generation.
                member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
                effects.resume(waiter, currentGenerationResult(group, for: member, includeMembers: group.isLeader(memberId)))
            } else {
                updateMemberAndRebalance(group, member, p, now: now, waiter: waiter, &effects)
            }
        case .stable:
            if group.isLeader(memberId) || !member.matches(p.protocols) {
                // The leader rejoining forces a rebalance: it is how clients react to changes the
                // metadata does not show (e.g. new partitions).
                updateMemberAndRebalance(group, member, p, now: now, waiter: waiter, &effects)
            } else {
                member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
                effects.resume(waiter, currentGenerationResult(group, for: member, includeMembers: false))
            }
        case .empty, .dead:
            effects.resume(waiter, .failure(.unknownMemberId, memberId: memberId))
        }
    }

    func currentGenerationResult(_ group: ClassicGroup, for member: ClassicGroupMember, includeMembers: Bool, leaderId: String? = nil) -> GroupJoinResult {
        GroupJoinResult(
            error: .none, generationId: group.generationId, protocolType: group.protocolType,
            protocolName: group.protocolName, leaderId: leaderId ?? group.leaderId ?? "", memberId: member.memberId,
            members: includeMembers ? group.currentMemberMetadata() : [])
    }

    private func addMemberAndRebalance(
        _ group: ClassicGroup, memberId: String, _ p: JoinParams, now: Int64, waiter: GroupJoinWaiter, _ effects: inout GroupEffects
    ) {
        let member = ClassicGroupMember(
            memberId: memberId, groupInstanceId: p.instanceId, clientId: p.clientId, clientHost: p.clientHost,
            rebalanceTimeoutMs: p.rebalanceTimeoutMs, sessionTimeoutMs: p.sessionTimeoutMs,
            protocolType: p.protocolType, protocols: p.protocols)
        member.isNew = true
        member.joinWaiter = waiter
        // A member joining during the initial delay of a new group extends the delay.
        if group.is(.preparingRebalance) && group.generationId == 0 { group.newMemberAdded = true }
        group.pendingMembers.removeValue(forKey: memberId)
        group.add(member)
        // New members cannot heartbeat; they are bounded by the new-member join timeout instead.
        member.heartbeatDeadline = now + config.newMemberJoinTimeoutMs
        maybePrepareRebalance(group, now: now, reason: "adding member \(memberId)", &effects)
    }

    private func updateMemberAndRebalance(
        _ group: ClassicGroup, _ member: ClassicGroupMember, _ p: JoinParams, now: Int64, waiter: GroupJoinWaiter,
        _ effects: inout GroupEffects
    ) {
        group.update(member, protocols: p.protocols, rebalanceTimeoutMs: p.rebalanceTimeoutMs, sessionTimeoutMs: p.sessionTimeoutMs)
        setJoinWaiter(member, waiter, &effects)
        maybePrepareRebalance(group, now: now, reason: "member \(member.memberId) rejoining", &effects)
    }

    private func setJoinWaiter(_ member: ClassicGroupMember, _ waiter: GroupJoinWaiter, _ effects: inout GroupEffects) {
        if let old = member.joinWaiter {
            // A retried JoinGroup replaces the one still waiting; the old request is answered so
            // that it does not hang.
            effects.resume(old, .failure(.rebalanceInProgress, memberId: member.memberId))
        }
        member.joinWaiter = waiter
    }

    /// KIP-345: a static member restarting (unknown member id, known group.instance.id) takes over
    /// its old membership under a new member id. In a stable group whose selected protocol and the
    /// member's metadata for it are unchanged, no rebalance happens: the member gets the current
    /// generation and, in SyncGroup, its old assignment.
    private func rejoinStaticMember(
        _ group: ClassicGroup, instanceId: String, oldMemberId: String, newMemberId: String, _ p: JoinParams, now: Int64,
        waiter: GroupJoinWaiter, _ effects: inout GroupEffects
    ) {
        let currentLeader = group.leaderId ?? ""
        guard let existing = group.member(oldMemberId) else {
            effects.resume(waiter, .failure(.unknownMemberId))
            return
        }
        // Fence the old incarnation's waiting requests.
        if let w = existing.joinWaiter {
            effects.resume(w, .failure(.fencedInstanceId, memberId: oldMemberId))
            existing.joinWaiter = nil
        }
        if let w = existing.syncWaiter {
            effects.resume(w, .failure(.fencedInstanceId))
            existing.syncWaiter = nil
        }
        let previousMetadata = group.protocolName.flatMap { existing.metadata(for: $0) }
        guard let member = group.replaceStaticMember(instanceId: instanceId, oldMemberId: oldMemberId, newMemberId: newMemberId) else {
            effects.resume(waiter, .failure(.unknownMemberId))
            return
        }
        member.clientId = p.clientId
        member.clientHost = p.clientHost
        group.update(member, protocols: p.protocols, rebalanceTimeoutMs: p.rebalanceTimeoutMs, sessionTimeoutMs: p.sessionTimeoutMs)
        member.joinWaiter = waiter
        member.heartbeatDeadline = now + Int64(p.sessionTimeoutMs)
        logger.debug("static member rejoined", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.groupInstanceId: "\(instanceId)", BrookLogKey.memberId: "\(newMemberId)"])

        switch group.state {
        case .stable:
            let next = group.selectProtocol()
            if let current = group.protocolName, next == current, member.metadata(for: current) == previousMetadata {
                // Persist the new member id, then answer with the current generation. The old
                // leader id is returned so that a restarted leader does not run an assignment a
                // stable group would not distribute.
                let record = ConsumerOffsets.Record.groupMetadata(group: group.groupId, group.metadataValue(now: now))
                enqueue(
                    OffsetsLogWrite(
                        records: [record],
                        completion: .staticMemberRejoin(
                            group: group.groupId, generation: group.generationId, memberId: newMemberId, leaderId: currentLeader)),
                    &effects)
            } else {
                maybePrepareRebalance(group, now: now, reason: "static member \(instanceId) rejoined with changed metadata", &effects)
            }
        case .completingRebalance:
            // The leader may be assigning with the old member id: start over.
            prepareRebalance(group, now: now, reason: "static member \(instanceId) rejoined during CompletingRebalance", &effects)
        case .preparingRebalance:
            break
        case .empty, .dead:
            member.joinWaiter = nil
            effects.resume(waiter, .failure(.unknownMemberId))
        }
    }

    // MARK: - rebalance

    func maybePrepareRebalance(_ group: ClassicGroup, now: Int64, reason: String, _ effects: inout GroupEffects) {
        if group.canRebalance { prepareRebalance(group, now: now, reason: reason, &effects) }
    }

    func prepareRebalance(_ group: ClassicGroup, now: Int64, reason: String, _ effects: inout GroupEffects) {
        if group.is(.completingRebalance) {
            resetAndPropagateAssignmentError(group, .rebalanceInProgress, &effects)
        }
        group.syncDeadline = nil
        if group.is(.empty) {
            let delay = max(config.initialRebalanceDelayMs, 0)
            group.joinTimer = .initial(
                deadline: now + delay, delay: delay, remaining: max(group.rebalanceTimeoutMs - delay, 0))
        } else {
            group.joinTimer = .regular(deadline: now + group.rebalanceTimeoutMs)
        }
        group.transition(to: .preparingRebalance, now: now)
        metrics.rebalancesStarted.increment()
        logger.info(
            "preparing to rebalance group",
            metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.generation: "\(group.generationId)", BrookLogKey.reason: "\(reason)"])
        checkJoinCompletion(group, now: now, &effects)
    }

    /// Completes the join phase if its timer expired or (regular rebalance) every member rejoined.
    func checkJoinCompletion(_ group: ClassicGroup, now: Int64, _ effects: inout GroupEffects) {
        guard group.is(.preparingRebalance), let timer = group.joinTimer else { return }
        switch timer {
        case .initial(let deadline, let delay, let remaining):
            guard now >= deadline else { return }
            if group.newMemberAdded && remaining != 0 {
                group.newMemberAdded = false
                let next = min(config.initialRebalanceDelayMs, remaining)
                group.joinTimer = .initial(deadline: now + next, delay: next, remaining: max(remaining - delay, 0))
            } else {
                completeJoin(group, now: now, &effects)
            }
        case .regular(let deadline):
            if group.hasAllMembersJoined || now >= deadline { completeJoin(group, now: now, &effects) }
        }
    }

    /// End of the join phase: members that did not rejoin are dropped (static ones are kept until
    /// their session expires), a new generation forms, and every waiting JoinGroup is answered —
    /// the leader with the members' metadata.
    private func completeJoin(_ group: ClassicGroup, now: Int64, _ effects: inout GroupEffects) {
        group.joinTimer = nil
        group.newMemberAdded = false
        for m in group.orderedMembers where !m.isAwaitingJoin && !m.isStatic {
            logger.info("member did not rejoin in time", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.memberId: "\(m.memberId)"])
            dropMember(group, m, &effects)
        }
        guard !group.is(.dead) else { return }
        if !group.maybeElectNewJoinedLeader() && !group.isEmptyOfMembers {
            // Only static members that have not rejoined: wait another rebalance timeout (their
            // sessions expire meanwhile if they are gone).
            group.joinTimer = .regular(deadline: now + group.rebalanceTimeoutMs)
            return
        }
        group.initNextGeneration(now: now)
        metrics.rebalancesCompleted.increment()
        if group.is(.empty) {
            logger.info("group is now empty", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.generation: "\(group.generationId)"])
            enqueue(
                OffsetsLogWrite(records: [.groupMetadata(group: group.groupId, group.metadataValue(now: now))], completion: .none),
                &effects)
            return
        }
        logger.info(
            "group stabilized",
            metadata: [
                BrookLogKey.group: "\(group.groupId)", BrookLogKey.generation: "\(group.generationId)",
                BrookLogKey.groupProtocol: "\(group.protocolName ?? "")", BrookLogKey.memberCount: "\(group.members.count)",
            ])
        for m in group.orderedMembers {
            if let w = m.joinWaiter {
                m.joinWaiter = nil
                effects.resume(w, currentGenerationResult(group, for: m, includeMembers: group.isLeader(m.memberId)))
            }
            m.heartbeatDeadline = now + Int64(m.sessionTimeoutMs)
            m.isNew = false
            group.pendingSyncMembers.insert(m.memberId)
        }
        group.syncDeadline = now + group.rebalanceTimeoutMs
    }

    /// Removes a member whose requests are still waiting, answering them with UNKNOWN_MEMBER_ID.
    private func dropMember(_ group: ClassicGroup, _ m: ClassicGroupMember, _ effects: inout GroupEffects) {
        if let w = m.joinWaiter {
            m.joinWaiter = nil
            effects.resume(w, .failure(.unknownMemberId))
        }
        if let w = m.syncWaiter {
            m.syncWaiter = nil
            effects.resume(w, .failure(.unknownMemberId))
        }
        group.remove(m.memberId)
    }

    /// A member leaves (LeaveGroup, session expiry): drop it and rebalance.
    func removeMemberAndUpdateGroup(_ group: ClassicGroup, _ m: ClassicGroupMember, now: Int64, reason: String, _ effects: inout GroupEffects) {
        dropMember(group, m, &effects)
        switch group.state {
        case .dead, .empty:
            break
        case .stable, .completingRebalance:
            maybePrepareRebalance(group, now: now, reason: reason, &effects)
        case .preparingRebalance:
            checkJoinCompletion(group, now: now, &effects)
        }
    }

    func resetAndPropagateAssignmentError(_ group: ClassicGroup, _ error: ErrorCode, _ effects: inout GroupEffects) {
        for m in group.orderedMembers {
            m.assignment = ByteBuffer()
            if let w = m.syncWaiter {
                m.syncWaiter = nil
                effects.resume(w, .failure(error))
            }
        }
    }

    func setAndPropagateAssignment(_ group: ClassicGroup, _ assignments: [String: ByteBuffer], now: Int64, _ effects: inout GroupEffects) {
        for m in group.orderedMembers {
            m.assignment = assignments[m.memberId] ?? ByteBuffer()
            if let w = m.syncWaiter {
                m.syncWaiter = nil
                m.heartbeatDeadline = now + Int64(m.sessionTimeoutMs)
                effects.resume(
                    w, GroupSyncResult(error: .none, protocolType: group.protocolType, protocolName: group.protocolName, assignment: m.assignment))
            }
        }
    }

    // MARK: - SyncGroup

    func sync(_ r: SyncGroupRequest, version: Int16, now: Int64, waiter: GroupSyncWaiter, _ effects: inout GroupEffects) {
        func fail(_ e: ErrorCode) { effects.resume(waiter, .failure(e)) }
        if let e = unavailableError { return fail(e) }
        guard !r.groupId.isEmpty else { return fail(.invalidGroupId) }
        guard let group = groups[r.groupId] else { return fail(.unknownMemberId) }
        let instanceId = version >= 3 ? r.groupInstanceId : nil
        if group.isStaticMemberFenced(instanceId: instanceId, memberId: r.memberId) { return fail(.fencedInstanceId) }
        guard let member = group.member(r.memberId) else { return fail(.unknownMemberId) }
        guard r.generationId == group.generationId else { return fail(.illegalGeneration) }
        if version >= 5 {
            if let t = r.protocolType, t != group.protocolType { return fail(.inconsistentGroupProtocol) }
            if let n = r.protocolName, n != group.protocolName { return fail(.inconsistentGroupProtocol) }
        }
        switch group.state {
        case .empty:
            fail(.unknownMemberId)
        case .preparingRebalance:
            fail(.rebalanceInProgress)
        case .dead:
            fail(.coordinatorNotAvailable)
        case .completingRebalance:
            if let old = member.syncWaiter { effects.resume(old, .failure(.rebalanceInProgress)) }
            member.syncWaiter = waiter
            markSynced(group, r.memberId)
            if group.isLeader(r.memberId) {
                // The leader's assignment: persisted first, then handed to every member waiting.
                var assignments: [String: ByteBuffer] = [:]
                for a in r.assignments where group.has(a.memberId) { assignments[a.memberId] = a.assignment }
                for m in group.orderedMembers where assignments[m.memberId] == nil { assignments[m.memberId] = ByteBuffer() }
                let record = ConsumerOffsets.Record.groupMetadata(group: group.groupId, group.metadataValue(now: now, assignments: assignments))
                enqueue(
                    OffsetsLogWrite(
                        records: [record],
                        completion: .syncAssignment(group: group.groupId, generation: group.generationId, assignments: assignments)),
                    &effects)
            }
        case .stable:
            markSynced(group, r.memberId)
            member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
            effects.resume(
                waiter,
                GroupSyncResult(error: .none, protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment))
        }
    }

    private func markSynced(_ group: ClassicGroup, _ memberId: String) {
        group.pendingSyncMembers.remove(memberId)
        if group.pendingSyncMembers.isEmpty { group.syncDeadline = nil }
    }

    // MARK: - Heartbeat

    func heartbeat(_ r: HeartbeatRequest, version: Int16, now: Int64) -> ErrorCode {
        if let e = unavailableError { return e }
        guard !r.groupId.isEmpty else { return .invalidGroupId }
        guard let group = groups[r.groupId] else { return .unknownMemberId }
        let instanceId = version >= 3 ? r.groupInstanceId : nil
        if group.isStaticMemberFenced(instanceId: instanceId, memberId: r.memberId) { return .fencedInstanceId }
        switch group.state {
        case .dead:
            return .coordinatorNotAvailable
        case .empty:
            return .unknownMemberId
        case .preparingRebalance, .completingRebalance, .stable:
            guard let member = group.member(r.memberId) else { return .unknownMemberId }
            guard r.generationId == group.generationId else { return .illegalGeneration }
            member.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
            // During CompletingRebalance members may heartbeat between their join and sync responses.
            return group.is(.preparingRebalance) ? .rebalanceInProgress : .none
        }
    }

    // MARK: - LeaveGroup

    func leave(_ r: LeaveGroupRequest, version: Int16, now: Int64, _ effects: inout GroupEffects) -> LeaveGroupResponse {
        var response = LeaveGroupResponse()
        let identities: [LeaveGroupRequest.MemberIdentity]
        if version >= 3 {
            identities = r.members
        } else {
            var one = LeaveGroupRequest.MemberIdentity()
            one.memberId = r.memberId
            identities = [one]
        }
        var topError: ErrorCode = .none
        if let e = unavailableError {
            topError = e
        } else if r.groupId.isEmpty {
            topError = .invalidGroupId
        }
        if topError != .none {
            response.errorCode = topError.rawValue
            return response
        }
        let group = groups[r.groupId]
        var results: [LeaveGroupResponse.MemberResponse] = []
        for identity in identities {
            var result = LeaveGroupResponse.MemberResponse()
            result.memberId = identity.memberId
            result.groupInstanceId = identity.groupInstanceId
            result.errorCode = leaveOne(group, identity, now: now, &effects).rawValue
            results.append(result)
        }
        if version >= 3 {
            response.members = results
        } else {
            response.errorCode = results.first?.errorCode ?? ErrorCode.none.rawValue
        }
        return response
    }

    private func leaveOne(_ group: ClassicGroup?, _ identity: LeaveGroupRequest.MemberIdentity, now: Int64, _ effects: inout GroupEffects) -> ErrorCode {
        guard let group else { return .unknownMemberId }
        if group.is(.dead) { return .coordinatorNotAvailable }
        var memberId = identity.memberId
        if let instanceId = identity.groupInstanceId {
            if memberId.isEmpty {
                guard let id = group.staticMemberId(instanceId) else { return .unknownMemberId }
                memberId = id
            } else if group.isStaticMemberFenced(instanceId: instanceId, memberId: memberId) {
                return .fencedInstanceId
            }
        }
        if group.pendingMembers.removeValue(forKey: memberId) != nil {
            checkJoinCompletion(group, now: now, &effects)
            return .none
        }
        guard let member = group.member(memberId) else { return .unknownMemberId }
        logger.info("member left group", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.memberId: "\(memberId)"])
        removeMemberAndUpdateGroup(group, member, now: now, reason: "member \(memberId) left", &effects)
        return .none
    }

    // MARK: - timers

    /// Session expiry, pending-member expiry, join and sync deadlines.
    func expireTimers(now: Int64, _ effects: inout GroupEffects) {
        for group in groups.values {
            if !group.pendingMembers.isEmpty {
                let expired = group.pendingMembers.filter { $0.value <= now }.map(\.key)
                for id in expired { group.pendingMembers.removeValue(forKey: id) }
                if !expired.isEmpty { checkJoinCompletion(group, now: now, &effects) }
            }
            // Waiting in a join or sync counts as alive, except for new members, which have no
            // session yet. (Scanned without allocating: this runs every tick for every group.)
            var expired: [ClassicGroupMember] = []
            for m in group.members.values where now >= m.heartbeatDeadline && (m.isNew || !(m.isAwaitingJoin || m.isAwaitingSync)) {
                expired.append(m)
            }
            for m in expired where group.member(m.memberId) === m {
                logger.info("member session expired", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.memberId: "\(m.memberId)"])
                removeMemberAndUpdateGroup(group, m, now: now, reason: "session of \(m.memberId) expired", &effects)
            }
            checkJoinCompletion(group, now: now, &effects)
            if let deadline = group.syncDeadline, now >= deadline {
                group.syncDeadline = nil
                if (group.is(.completingRebalance) || group.is(.stable)) && !group.pendingSyncMembers.isEmpty {
                    for id in group.pendingSyncMembers {
                        if let m = group.member(id) {
                            logger.info("member did not sync in time", metadata: [BrookLogKey.group: "\(group.groupId)", BrookLogKey.memberId: "\(id)"])
                            dropMember(group, m, &effects)
                        }
                    }
                    group.pendingSyncMembers.removeAll()
                    prepareRebalance(group, now: now, reason: "members did not sync in time", &effects)
                }
            }
        }
    }

    // MARK: - shutdown

    func shutdown(_ effects: inout GroupEffects) {
        isActive = false
        for group in groups.values {
            for m in group.orderedMembers {
                if let w = m.joinWaiter {
                    m.joinWaiter = nil
                    effects.resume(w, .failure(.coordinatorNotAvailable, memberId: m.memberId))
                }
                if let w = m.syncWaiter {
                    m.syncWaiter = nil
                    effects.resume(w, .failure(.coordinatorNotAvailable))
                }
            }
            group.joinTimer = nil
            group.syncDeadline = nil
        }
        effects.acks.append(contentsOf: compactionWaiters)
        compactionWaiters.removeAll()
    }
}
