import BrookProtocol
import NIOCore

/// How members give up partitions during a rebalance.
public enum RebalanceProtocol: Sendable, Hashable {
    /// Every member revokes all its partitions before rejoining (range, round-robin).
    case eager
    /// Members keep their partitions while rejoining and revoke only those that move; a moved
    /// partition is handed to its new owner in a follow-up rebalance (cooperative-sticky).
    case cooperative
}

/// One member of the group as the leader's assignor sees it.
public struct GroupMemberSubscription: Sendable {
    public var memberId: String
    public var groupInstanceId: String?
    public var subscription: ConsumerProtocolSubscription

    public init(memberId: String, groupInstanceId: String? = nil, subscription: ConsumerProtocolSubscription) {
        self.memberId = memberId
        self.groupInstanceId = groupInstanceId
        self.subscription = subscription
    }

    /// Kafka's member order: members with an instance id first, by instance id; then by member id.
    static func kafkaOrder(_ a: GroupMemberSubscription, _ b: GroupMemberSubscription) -> Bool {
        switch (a.groupInstanceId, b.groupInstanceId) {
        case let (x?, y?): return x == y ? a.memberId < b.memberId : x < y
        case (_?, nil): return true
        case (nil, _?): return false
        case (nil, nil): return a.memberId < b.memberId
        }
    }
}

/// A partition assignor run by the group leader. Implementations are pure functions of the
/// members' subscriptions and the partition counts, so they are easy to test and to replace.
public protocol ConsumerPartitionAssignor: Sendable {
    /// The protocol name in JoinGroup ("range", "roundrobin", "cooperative-sticky", …); every
    /// member must use the same name for the same algorithm.
    var name: String { get }
    var rebalanceProtocol: RebalanceProtocol { get }
    /// User data for this member's subscription (nil by default).
    func subscriptionUserData(generation: Int32) -> ByteBuffer?
    /// Member id → its partitions. `partitionsPerTopic` lists only topics that exist.
    func assign(members: [GroupMemberSubscription], partitionsPerTopic: [String: Int32]) -> [String: [TopicPartition]]
}

extension ConsumerPartitionAssignor {
    public func subscriptionUserData(generation: Int32) -> ByteBuffer? { nil }
}

/// An entry of ``ConsumerConfiguration/Group/assignors``.
public struct PartitionAssignmentStrategy: Sendable {
    public let assignor: any ConsumerPartitionAssignor

    public init(_ assignor: any ConsumerPartitionAssignor) { self.assignor = assignor }

    /// Kafka's `RangeAssignor`: per topic, consecutive ranges of partitions to the members
    /// subscribed to it, the first members getting one more when it doesn't divide evenly.
    public static let range = PartitionAssignmentStrategy(RangeAssignor())
    /// Kafka's `RoundRobinAssignor`: all partitions, sorted, dealt in turn to the members.
    public static let roundRobin = PartitionAssignmentStrategy(RoundRobinAssignor())
    /// Kafka's `CooperativeStickyAssignor`: balanced, moving as few partitions as possible,
    /// with cooperative (incremental) rebalancing.
    public static let cooperativeSticky = PartitionAssignmentStrategy(CooperativeStickyAssignor())
    public static func custom(_ assignor: any ConsumerPartitionAssignor) -> PartitionAssignmentStrategy {
        PartitionAssignmentStrategy(assignor)
    }

    public var name: String { assignor.name }
}

// MARK: - range

public struct RangeAssignor: ConsumerPartitionAssignor {
    public init() {}
    public var name: String { "range" }
    public var rebalanceProtocol: RebalanceProtocol { .eager }

    public func assign(members: [GroupMemberSubscription], partitionsPerTopic: [String: Int32]) -> [String: [TopicPartition]] {
        var result: [String: [TopicPartition]] = [:]
        for m in members { result[m.memberId] = [] }
        let ordered = members.sorted(by: GroupMemberSubscription.kafkaOrder)
        for topic in partitionsPerTopic.keys.sorted() {
            let count = Int(partitionsPerTopic[topic]!)
            let consumers = ordered.filter { $0.subscription.topics.contains(topic) }
            guard !consumers.isEmpty, count > 0 else { continue }
            let per = count / consumers.count
            let extra = count % consumers.count
            for (i, c) in consumers.enumerated() {
                let start = per * i + min(i, extra)
                let length = per + (i < extra ? 1 : 0)
                for p in start..<(start + length) {
                    result[c.memberId, default: []].append(TopicPartition(topic: topic, partition: Int32(p)))
                }
            }
        }
        return result
    }
}

// MARK: - round robin

public struct RoundRobinAssignor: ConsumerPartitionAssignor {
    public init() {}
    public var name: String { "roundrobin" }
    public var rebalanceProtocol: RebalanceProtocol { .eager }

    public func assign(members: [GroupMemberSubscription], partitionsPerTopic: [String: Int32]) -> [String: [TopicPartition]] {
        var result: [String: [TopicPartition]] = [:]
        for m in members { result[m.memberId] = [] }
        let ordered = members.sorted(by: GroupMemberSubscription.kafkaOrder)
        guard !ordered.isEmpty else { return result }
        let subscribed = Set(ordered.flatMap(\.subscription.topics))
        var next = 0
        for topic in partitionsPerTopic.keys.sorted() where subscribed.contains(topic) {
            for p in 0..<partitionsPerTopic[topic]! {
                // The next member (in circular order) subscribed to the topic.
                for _ in 0..<ordered.count {
                    let m = ordered[next % ordered.count]
                    next += 1
                    if m.subscription.topics.contains(topic) {
                        result[m.memberId, default: []].append(TopicPartition(topic: topic, partition: p))
                        break
                    }
                }
            }
        }
        return result
    }
}

// MARK: - cooperative sticky

/// Balanced and sticky: members keep the partitions they own as long as the assignment stays
/// balanced (no member more than one partition above another that could take it), and only the
/// surplus moves. In cooperative mode a partition that changes owner is left out of the new
/// owner's assignment until the old owner has revoked it (the follow-up rebalance).
public struct CooperativeStickyAssignor: ConsumerPartitionAssignor {
    public init() {}
    public var name: String { "cooperative-sticky" }
    public var rebalanceProtocol: RebalanceProtocol { .cooperative }

    /// Like Kafka's: the generation as an int32, read by leaders whose members send
    /// subscriptions older than version 2.
    public func subscriptionUserData(generation: Int32) -> ByteBuffer? {
        var b = ByteBuffer()
        b.writeInteger(generation)
        return b
    }

    public func assign(members: [GroupMemberSubscription], partitionsPerTopic: [String: Int32]) -> [String: [TopicPartition]] {
        let (assignment, owners) = StickyAssignment.compute(members: members, partitionsPerTopic: partitionsPerTopic)
        // Hold back partitions still owned by another member: it revokes them first.
        var result: [String: [TopicPartition]] = [:]
        for (member, partitions) in assignment {
            result[member] = partitions.filter { tp in owners[tp].map { $0 == member } ?? true }
        }
        return result
    }
}

/// The sticky balancing algorithm (pure).
enum StickyAssignment {
    /// Returns the target assignment and the valid current owner of each owned partition.
    static func compute(
        members: [GroupMemberSubscription], partitionsPerTopic: [String: Int32]
    ) -> (assignment: [String: [TopicPartition]], owners: [TopicPartition: String]) {
        let ordered = members.sorted(by: GroupMemberSubscription.kafkaOrder)
        var assignment: [String: [TopicPartition]] = [:]
        var subscriptions: [String: Set<String>] = [:]
        for m in ordered {
            assignment[m.memberId] = []
            subscriptions[m.memberId] = Set(m.subscription.topics)
        }
        func exists(_ tp: TopicPartition) -> Bool {
            guard let n = partitionsPerTopic[tp.topic] else { return false }
            return tp.partition >= 0 && tp.partition < n
        }
        // Current owners: a claim from a newer generation wins; a claim must be to an existing
        // partition of a topic the member still subscribes to.
        var owners: [TopicPartition: String] = [:]
        let byGeneration = ordered.enumerated().sorted { a, b in
            let ga = generation(of: a.element), gb = generation(of: b.element)
            return ga != gb ? ga > gb : a.offset < b.offset
        }.map(\.element)
        for m in byGeneration {
            for tp in m.subscription.ownedTopicPartitions where owners[tp] == nil && exists(tp) && subscriptions[m.memberId]!.contains(tp.topic) {
                owners[tp] = m.memberId
                assignment[m.memberId]!.append(tp)
            }
        }
        // Every partition some member subscribes to, sorted.
        let subscribed = Set(ordered.flatMap(\.subscription.topics))
        var all: [TopicPartition] = []
        for topic in partitionsPerTopic.keys.sorted() where subscribed.contains(topic) {
            for p in 0..<partitionsPerTopic[topic]! { all.append(TopicPartition(topic: topic, partition: p)) }
        }
        let memberOrder = ordered.map(\.memberId)
        func eligible(_ tp: TopicPartition) -> [String] { memberOrder.filter { subscriptions[$0]!.contains(tp.topic) } }

        // Members over the balanced quota give up their surplus first (keeping their lowest
        // partitions), so that unowned partitions are not piled on already-full members.
        // The quota only applies among members with identical subscriptions; the general
        // balancing below covers the rest.
        if Set(subscriptions.values).count == 1, !ordered.isEmpty {
            let total = all.count
            let minQuota = total / ordered.count
            var maxQuotaSlots = total % ordered.count
            // Members keeping more than minQuota, most-owning first, take the extra slots.
            for id in memberOrder.sorted(by: { assignment[$0]!.count > assignment[$1]!.count }) {
                var owned = assignment[id]!.sorted()
                var keep = minQuota
                if owned.count > minQuota && maxQuotaSlots > 0 {
                    keep = minQuota + 1
                    maxQuotaSlots -= 1
                }
                if owned.count > keep {
                    owned = Array(owned.prefix(keep))
                    assignment[id] = owned
                }
            }
        }
        var assigned = Set(assignment.values.joined())
        // Unassigned partitions to the eligible member with the fewest partitions.
        for tp in all where !assigned.contains(tp) {
            let candidates = eligible(tp)
            guard let target = candidates.min(by: { assignment[$0]!.count < assignment[$1]!.count }) else { continue }
            assignment[target]!.append(tp)
            assigned.insert(tp)
        }
        // Balance: move a partition from a member to an eligible one with at least two fewer.
        var moves = 0
        let maxMoves = all.count * max(ordered.count, 1) + 1
        while moves < maxMoves {
            var moved = false
            let byLoad = memberOrder.sorted { assignment[$0]!.count > assignment[$1]!.count }
            outer: for src in byLoad {
                let srcCount = assignment[src]!.count
                // Prefer moving partitions the source did not own before, then the highest.
                let candidates = assignment[src]!.sorted { a, b in
                    let ao = owners[a] == src, bo = owners[b] == src
                    return ao != bo ? !ao : b < a
                }
                for tp in candidates {
                    let targets = eligible(tp).filter { $0 != src && assignment[$0]!.count < srcCount - 1 }
                    // Prefer the previous owner, then the least loaded.
                    if let dst = targets.first(where: { owners[tp] == $0 })
                        ?? targets.min(by: { assignment[$0]!.count < assignment[$1]!.count }) {
                        assignment[src]!.removeAll { $0 == tp }
                        assignment[dst]!.append(tp)
                        moved = true
                        break outer
                    }
                }
            }
            if !moved { break }
            moves += 1
        }
        for id in memberOrder { assignment[id]!.sort() }
        return (assignment, owners)
    }

    /// A member's generation: the subscription's (v2+), else the user data's int32.
    static func generation(of m: GroupMemberSubscription) -> Int32 {
        if m.subscription.version >= 2 { return m.subscription.generationId }
        if var u = m.subscription.userData, u.readableBytes >= 4, let g = u.readInteger(as: Int32.self) { return g }
        return -1
    }
}
