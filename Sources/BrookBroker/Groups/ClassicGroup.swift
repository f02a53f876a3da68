import BrookProtocol
import NIOCore

/// States of a classic group, named as Kafka names them in DescribeGroups and ListGroups.
enum ClassicGroupState: String, Sendable, CaseIterable {
    /// No members; the group may still hold committed offsets.
    case empty = "Empty"
    /// A rebalance started: members must (re)join before the rebalance timeout.
    case preparingRebalance = "PreparingRebalance"
    /// The new generation formed; waiting for the leader's assignment in SyncGroup.
    case completingRebalance = "CompletingRebalance"
    /// Members hold their assignment and heartbeat.
    case stable = "Stable"
    /// Removed; no operation is accepted.
    case dead = "Dead"
}

struct GroupTopicPartition: Hashable, Sendable, Comparable {
    var topic: String
    var partition: Int32

    static func < (a: GroupTopicPartition, b: GroupTopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}

/// A protocol a member supports, with its (opaque) metadata: for consumers, the assignor's name
/// and the subscription.
struct GroupProtocol: Equatable, Sendable {
    var name: String
    var metadata: ByteBuffer
}

typealias GroupJoinWaiter = CheckedContinuation<GroupJoinResult, Never>
typealias GroupSyncWaiter = CheckedContinuation<GroupSyncResult, Never>

/// What a JoinGroup request is answered with, independent of the request version.
struct GroupJoinResult: Sendable {
    var error: ErrorCode
    var generationId: Int32 = -1
    var protocolType: String? = nil
    var protocolName: String? = nil
    var leaderId: String = ""
    var memberId: String = ""
    var members: [JoinGroupResponse.JoinGroupResponseMember] = []

    static func failure(_ error: ErrorCode, memberId: String = "") -> GroupJoinResult {
        GroupJoinResult(error: error, memberId: memberId)
    }

    func response(version: Int16) -> JoinGroupResponse {
        var r = JoinGroupResponse()
        r.errorCode = error.rawValue
        r.generationId = generationId
        r.protocolType = protocolType
        r.protocolName = protocolName
        r.leader = leaderId
        r.memberId = memberId
        r.members = members
        return r
    }
}

/// What a SyncGroup request is answered with.
struct GroupSyncResult: Sendable {
    var error: ErrorCode
    var protocolType: String? = nil
    var protocolName: String? = nil
    var assignment: ByteBuffer = ByteBuffer()

    static func failure(_ error: ErrorCode) -> GroupSyncResult { GroupSyncResult(error: error) }

    func response(version: Int16) -> SyncGroupResponse {
        var r = SyncGroupResponse()
        r.errorCode = error.rawValue
        r.protocolType = protocolType
        r.protocolName = protocolName
        r.assignment = assignment
        return r
    }
}

/// One member of a classic group. Only touched under the coordinator's lock.
final class ClassicGroupMember {
    var memberId: String
    let groupInstanceId: String?
    var clientId: String
    var clientHost: String
    var rebalanceTimeoutMs: Int32
    var sessionTimeoutMs: Int32
    let protocolType: String
    var protocols: [GroupProtocol]
    var assignment: ByteBuffer = ByteBuffer()
    /// A JoinGroup waiting for the rebalance to complete.
    var joinWaiter: GroupJoinWaiter?
    /// A SyncGroup waiting for the leader's assignment.
    var syncWaiter: GroupSyncWaiter?
    /// Joined without a member id and has not completed a join yet: cannot heartbeat, so it is
    /// bounded by the new-member join timeout instead of its session.
    var isNew = false
    /// When the member is dropped unless it heartbeats (or waits in a join or sync) before.
    var heartbeatDeadline: Int64 = .max

    init(
        memberId: String, groupInstanceId: String?, clientId: String, clientHost: String,
        rebalanceTimeoutMs: Int32, sessionTimeoutMs: Int32, protocolType: String, protocols: [GroupProtocol]
    ) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.clientId = clientId
        self.clientHost = clientHost
        self.rebalanceTimeoutMs = rebalanceTimeoutMs
        self.sessionTimeoutMs = sessionTimeoutMs
        self.protocolType = protocolType
        self.protocols = protocols
    }

    var isAwaitingJoin: Bool { joinWaiter != nil }
    var isAwaitingSync: Bool { syncWaiter != nil }
    var isStatic: Bool { groupInstanceId != nil }

    func metadata(for protocolName: String) -> ByteBuffer? {
        protocols.first(where: { $0.name == protocolName })?.metadata
    }

    /// Same protocols with the same metadata, in the same order.
    func matches(_ other: [GroupProtocol]) -> Bool { protocols == other }

    /// The member's first choice among `candidates` (its protocols are in preference order).
    func vote(_ candidates: Set<String>) -> String? {
        protocols.first(where: { candidates.contains($0.name) })?.name
    }
}

/// A classic consumer group: membership, the generation state machine and committed offsets.
/// Only touched under the coordinator's lock; the transitions are driven by
/// `GroupCoordinatorState`.
final class ClassicGroup {
    enum JoinTimer {
        /// The first rebalance of an empty group: never completes early; on expiry it is extended
        /// by `delay` while new members keep arriving and `remaining` allows.
        case initial(deadline: Int64, delay: Int64, remaining: Int64)
        /// Completes when every member has rejoined, or at the deadline without those that didn't.
        case regular(deadline: Int64)
    }

    let groupId: String
    private(set) var state: ClassicGroupState = .empty
    /// When the group entered its state (Kafka's currentStateTimestamp); nil if unknown.
    var stateTimestamp: Int64?
    var protocolType: String?
    var protocolName: String?
    var generationId: Int32 = 0
    var leaderId: String?

    private(set) var members: [String: ClassicGroupMember] = [:]
    /// Member ids in join order (the leader is re-elected in this order).
    private(set) var memberOrder: [String] = []
    /// group.instance.id → member id of static members.
    private(set) var staticMembers: [String: String] = [:]
    /// Members told MEMBER_ID_REQUIRED that have not rejoined yet, with their expiry.
    var pendingMembers: [String: Int64] = [:]
    /// Members of the current generation that have not sent SyncGroup yet.
    var pendingSyncMembers: Set<String> = []
    private var supportedProtocols: [String: Int] = [:]
    /// A member joined during the initial delay (extends it).
    var newMemberAdded = false
    var joinTimer: JoinTimer?
    /// Members still in `pendingSyncMembers` at this time are removed.
    var syncDeadline: Int64?

    /// Committed offsets, exactly as the offsets log has them (applied once durable).
    var offsets: [GroupTopicPartition: OffsetCommitValue] = [:]
    /// Commits queued for the log, per partition (such partitions are not expired).
    var pendingOffsetCommits: [GroupTopicPartition: Int] = [:]
    /// The group metadata value last written to the log (what a compacted log would keep).
    var persistedMetadata: GroupMetadataValue?

    init(groupId: String, now: Int64) {
        self.groupId = groupId
        self.stateTimestamp = now
    }

    // MARK: state

    func transition(to newState: ClassicGroupState, now: Int64) {
        state = newState
        stateTimestamp = now
    }

    func `is`(_ s: ClassicGroupState) -> Bool { state == s }

    var canRebalance: Bool { state == .stable || state == .completingRebalance || state == .empty }

    // MARK: members

    var orderedMembers: [ClassicGroupMember] { memberOrder.compactMap { members[$0] } }
    var isEmptyOfMembers: Bool { members.isEmpty }
    func member(_ id: String) -> ClassicGroupMember? { members[id] }
    func has(_ id: String) -> Bool { members[id] != nil }
    func isLeader(_ id: String) -> Bool { leaderId == id }
    func staticMemberId(_ instanceId: String) -> String? { staticMembers[instanceId] }

    /// A request naming `instanceId` with a member id other than the one registered for it.
    func isStaticMemberFenced(instanceId: String?, memberId: String) -> Bool {
        guard let instanceId, let current = staticMembers[instanceId] else { return false }
        return current != memberId
    }

    func add(_ member: ClassicGroupMember) {
        if members.isEmpty { protocolType = member.protocolType }
        precondition(members[member.memberId] == nil, "member added twice")
        members[member.memberId] = member
        memberOrder.append(member.memberId)
        for p in member.protocols { supportedProtocols[p.name, default: 0] += 1 }
        if let instanceId = member.groupInstanceId { staticMembers[instanceId] = member.memberId }
        if leaderId == nil { leaderId = member.memberId }
    }

    /// Removes a member (its waiters are the caller's to answer).
    @discardableResult
    func remove(_ memberId: String) -> ClassicGroupMember? {
        guard let member = members.removeValue(forKey: memberId) else {
            pendingMembers.removeValue(forKey: memberId)
            pendingSyncMembers.remove(memberId)
            return nil
        }
        if let i = memberOrder.firstIndex(of: memberId) { memberOrder.remove(at: i) }
        for p in member.protocols { decrementSupport(p.name) }
        if let instanceId = member.groupInstanceId, staticMembers[instanceId] == memberId {
            staticMembers.removeValue(forKey: instanceId)
        }
        if leaderId == memberId { leaderId = memberOrder.first }
        pendingMembers.removeValue(forKey: memberId)
        pendingSyncMembers.remove(memberId)
        return member
    }

    private func decrementSupport(_ name: String) {
        if let n = supportedProtocols[name] {
            if n <= 1 { supportedProtocols.removeValue(forKey: name) } else { supportedProtocols[name] = n - 1 }
        }
    }

    /// Replaces a member's protocols and timeouts (a rejoin).
    func update(_ member: ClassicGroupMember, protocols: [GroupProtocol], rebalanceTimeoutMs: Int32, sessionTimeoutMs: Int32) {
        for p in member.protocols { decrementSupport(p.name) }
        member.protocols = protocols
        for p in protocols { supportedProtocols[p.name, default: 0] += 1 }
        member.rebalanceTimeoutMs = rebalanceTimeoutMs
        member.sessionTimeoutMs = sessionTimeoutMs
    }

    /// Gives a static member a new member id; the caller fences the old id's waiters.
    func replaceStaticMember(instanceId: String, oldMemberId: String, newMemberId: String) -> ClassicGroupMember? {
        guard let member = members.removeValue(forKey: oldMemberId) else { return nil }
        member.memberId = newMemberId
        members[newMemberId] = member
        if let i = memberOrder.firstIndex(of: oldMemberId) { memberOrder[i] = newMemberId }
        if leaderId == oldMemberId { leaderId = newMemberId }
        staticMembers[instanceId] = newMemberId
        if pendingSyncMembers.remove(oldMemberId) != nil { pendingSyncMembers.insert(newMemberId) }
        return member
    }

    // MARK: protocols

    /// Whether a member with these protocols may join: an empty group takes any non-empty set;
    /// otherwise the type must match and one protocol must be supported by every member.
    func supportsProtocols(type: String, names: [String]) -> Bool {
        if state == .empty { return !type.isEmpty && !names.isEmpty }
        guard protocolType == type else { return false }
        return names.contains { supportedProtocols[$0, default: 0] == members.count }
    }

    /// Protocols every member supports.
    var candidateProtocols: Set<String> {
        Set(supportedProtocols.filter { $0.value == members.count }.keys)
    }

    /// The protocol chosen by the members' votes (each votes for its most preferred candidate);
    /// ties go to the protocol preferred first by the earliest members.
    func selectProtocol() -> String? {
        let candidates = candidateProtocols
        guard !candidates.isEmpty else { return nil }
        var votes: [String: Int] = [:]
        var firstSeen: [String] = []
        for m in orderedMembers {
            guard let v = m.vote(candidates) else { continue }
            if votes[v] == nil { firstSeen.append(v) }
            votes[v, default: 0] += 1
        }
        var best: String? = nil
        var bestVotes = -1
        for name in firstSeen where votes[name]! > bestVotes {
            best = name
            bestVotes = votes[name]!
        }
        return best ?? candidates.sorted().first
    }

    // MARK: rebalance

    /// The longest rebalance timeout among the members.
    var rebalanceTimeoutMs: Int64 {
        Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
    }

    var numAwaitingJoin: Int { members.values.reduce(0) { $0 + ($1.isAwaitingJoin ? 1 : 0) } }

    var hasAllMembersJoined: Bool { numAwaitingJoin == members.count && pendingMembers.isEmpty }

    /// Keeps the leader if it rejoined, else makes the first rejoined member leader. False when no
    /// member rejoined.
    func maybeElectNewJoinedLeader() -> Bool {
        guard let leaderId, let leader = members[leaderId] else {
            if let first = orderedMembers.first(where: { $0.isAwaitingJoin }) {
                self.leaderId = first.memberId
                return true
            }
            return false
        }
        if leader.isAwaitingJoin { return true }
        if let first = orderedMembers.first(where: { $0.isAwaitingJoin }) {
            self.leaderId = first.memberId
            return true
        }
        return false
    }

    /// Starts the next generation: CompletingRebalance with the selected protocol, or Empty.
    func initNextGeneration(now: Int64) {
        generationId &+= 1
        pendingSyncMembers.removeAll()
        if !members.isEmpty {
            protocolName = selectProtocol()
            transition(to: .completingRebalance, now: now)
        } else {
            protocolName = nil
            transition(to: .empty, now: now)
        }
    }

    /// Members as the leader's JoinGroup response lists them.
    func currentMemberMetadata() -> [JoinGroupResponse.JoinGroupResponseMember] {
        guard let protocolName else { return [] }
        return orderedMembers.map { m in
            var e = JoinGroupResponse.JoinGroupResponseMember()
            e.memberId = m.memberId
            e.groupInstanceId = m.groupInstanceId
            e.metadata = m.metadata(for: protocolName) ?? ByteBuffer()
            return e
        }
    }

    /// Topics the live members subscribe to (over all their protocols), or nil when a member's
    /// metadata does not decode as a consumer subscription (then every topic counts as subscribed).
    func subscribedTopics() -> Set<String>? {
        guard protocolType == ConsumerProtocol.protocolType else { return nil }
        var topics = Set<String>()
        for m in members.values {
            for p in m.protocols {
                // Undecodable metadata is not a consumer subscription, as in Kafka's coordinator.
                guard let subscription = try? ConsumerProtocolSubscription(decoding: p.metadata) else { return nil }
                topics.formUnion(subscription.topics)
            }
        }
        return topics
    }

    func isSubscribed(to topic: String) -> Bool {
        subscribedTopics()?.contains(topic) ?? true
    }

    /// The group metadata record for the log, with `assignments` overriding members' current ones.
    func metadataValue(now: Int64, assignments: [String: ByteBuffer]? = nil) -> GroupMetadataValue {
        GroupMetadataValue(
            protocolType: protocolType ?? "",
            generation: generationId,
            protocolName: protocolName,
            leader: members.isEmpty ? nil : leaderId,
            currentStateTimestamp: stateTimestamp ?? now,
            members: orderedMembers.map { m in
                GroupMetadataValue.MemberMetadata(
                    memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                    rebalanceTimeout: m.rebalanceTimeoutMs, sessionTimeout: m.sessionTimeoutMs,
                    subscription: protocolName.flatMap { m.metadata(for: $0) } ?? ByteBuffer(),
                    assignment: assignments?[m.memberId] ?? m.assignment)
            })
    }

    /// Rebuilds membership from a loaded group metadata record: Stable with its members (who must
    /// heartbeat within their session), or Empty.
    func restore(from v: GroupMetadataValue, now: Int64) {
        protocolType = v.protocolType.isEmpty ? nil : v.protocolType
        generationId = v.generation
        protocolName = v.protocolName
        for m in v.members where members[m.memberId] == nil {
            let member = ClassicGroupMember(
                memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId, clientHost: m.clientHost,
                rebalanceTimeoutMs: m.rebalanceTimeout, sessionTimeoutMs: m.sessionTimeout,
                protocolType: v.protocolType,
                protocols: v.protocolName.map { [GroupProtocol(name: $0, metadata: m.subscription)] } ?? [])
            member.assignment = m.assignment
            member.heartbeatDeadline = now + Int64(m.sessionTimeout)
            add(member)
        }
        protocolType = v.protocolType.isEmpty ? nil : v.protocolType
        if let leader = v.leader, members[leader] != nil { leaderId = leader } else { leaderId = memberOrder.first }
        state = members.isEmpty ? .empty : .stable
        stateTimestamp = v.currentStateTimestamp >= 0 ? v.currentStateTimestamp : nil
    }
}
