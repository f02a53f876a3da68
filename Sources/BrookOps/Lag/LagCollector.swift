import Brook
import Foundation

/// Takes ``LagObservation``s of a cluster through the Kafka API only: ListGroups,
/// DescribeGroups (members and assignments), OffsetFetch, ListOffsets (earliest and latest) and
/// a Fetch at each lagging committed offset for the first unconsumed record's timestamp.
/// Works against Brook's broker and any Kafka cluster.
public struct LagCollector: Sendable {
    /// The admin client the reads go through (its cluster, security and timeouts).
    public let admin: KafkaAdmin
    /// The groups to watch; empty: every group the cluster lists.
    public var groups: [String]
    /// The clock the observation is stamped with (tests may replace it).
    public var now: @Sendable () -> Int64

    /// A collector over `admin` for `groups` (all when empty), stamping observations with `now`.
    public init(admin: KafkaAdmin, groups: [String] = [], now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.admin = admin
        self.groups = groups
        self.now = now
    }

    /// Reads every watched group once. A group that vanished between listing and describing is
    /// left out; any other failure throws.
    public func observe() async throws -> LagObservation {
        let names = groups.isEmpty ? try await admin.listGroups().map(\.groupId) : groups
        var ends: [String: [Int32: Int64]] = [:]
        var starts: [String: [Int32: Int64]] = [:]
        var pending: [(group: String, state: String, parts: [PartitionObservation])] = []
        for name in names {
            let desc = try await admin.describeGroup(name)
            if desc.state == "Dead" && desc.members.isEmpty && !groups.contains(name) { continue }
            let committed = try await admin.groupOffsets(name)
            var owners: [String: [Int32: PartitionOwner]] = [:]
            for m in desc.members {
                for (t, ps) in m.assignment {
                    for p in ps { owners[t, default: [:]][p] = PartitionOwner(consumerId: m.memberId, host: m.host, clientId: m.clientId) }
                }
            }
            var parts: [PartitionObservation] = []
            for topic in Set(committed.keys).union(owners.keys).sorted() {
                if ends[topic] == nil {
                    do {
                        ends[topic] = try await admin.listOffsets(topic: topic, spec: .latest)
                        starts[topic] = try await admin.listOffsets(topic: topic, spec: .earliest)
                    } catch let e as KafkaClientError where Self.isUnknownTopic(e) {
                        // Offsets can outlive their topic: nothing to measure against, so the
                        // topic's partitions are left out rather than failing every group.
                        ends[topic] = [:]
                        starts[topic] = [:]
                    }
                }
                let c = committed[topic] ?? [:]
                let o = owners[topic] ?? [:]
                for p in Set(c.keys).union(o.keys).sorted() {
                    guard let end = ends[topic]?[p] else { continue }
                    parts.append(PartitionObservation(topic: topic, partition: p, committedOffset: c[p], logEndOffset: end,
                                                      logStartOffset: starts[topic]?[p] ?? 0, owner: o[p]))
                }
            }
            pending.append((name, desc.state, parts))
        }
        // The first unconsumed record of every lagging partition: one Fetch per topic, leader
        // and round (groups at different offsets of one partition need a round each).
        var read: [String: Int64] = [:]  // "topic/partition/offset" -> timestamp, -1 when none
        func key(_ p: PartitionObservation) -> String { "\(p.topic)\u{0}\(p.partition)\u{0}\(Self.readOffset(p))" }
        var rounds: [String: [[Int32: Int64]]] = [:]
        for g in pending {
            for p in g.parts where (p.lag ?? 0) > 0 && read[key(p)] == nil {
                read[key(p)] = -1
                var r = rounds[p.topic] ?? []
                if let i = r.firstIndex(where: { $0[p.partition] == nil }) { r[i][p.partition] = Self.readOffset(p) } else { r.append([p.partition: Self.readOffset(p)]) }
                rounds[p.topic] = r
            }
        }
        for (topic, rs) in rounds {
            for round in rs {
                let ts: [Int32: Int64]
                do {
                    ts = try await admin.firstRecordTimestamps(topic: topic, at: round)
                } catch let e as KafkaClientError {
                    // A partition the broker will not serve (moving leader, deleted topic) keeps
                    // its offsets and lag; only its time lag is unknown (null) this time.
                    guard e.code == .broker else { throw e }
                    continue
                }
                for (p, off) in round { if let t = ts[p] { read["\(topic)\u{0}\(p)\u{0}\(off)"] = t } }
            }
        }
        let time = now()
        return LagObservation(timeMs: time, groups: pending.map { g in
            GroupObservation(group: g.group, state: g.state, partitions: g.parts.map { p in
                var p = p
                if (p.lag ?? 0) > 0, let t = read[key(p)], t >= 0 { p.firstUnconsumedTimestampMs = t }
                return p
            })
        })
    }

    static func isUnknownTopic(_ e: KafkaClientError) -> Bool {
        e.errorCode == .unknownTopicOrPartition
    }

    /// Where the oldest waiting record is: the committed offset, or the log start when the
    /// records before it are gone.
    static func readOffset(_ p: PartitionObservation) -> Int64 { max(p.committedOffset ?? 0, p.logStartOffset) }
}
