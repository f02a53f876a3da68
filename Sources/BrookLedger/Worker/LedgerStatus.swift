import Brook
import BrookPipeline
import BrookProtocol
import Foundation

/// The group's lag as an exactly-once sink sees it: per partition, the log end offset minus the
/// offset the store holds for the group (where the next worker starts), or minus the log start
/// where the store holds none yet (a worker then starts from the earliest offset). The Kafka
/// group's committed offsets are only informational for such a sink, and a worker's own view
/// covers only the partitions assigned to it — none before the group has formed.
public enum GroupLag {
    /// Records of each partition not yet applied. A partition without a log end is left out.
    public static func perPartition(ends: [Int32: Int64], starts: [Int32: Int64], stored: [Int32: Int64]) -> [Int32: Int64] {
        var out: [Int32: Int64] = [:]
        for (p, end) in ends {
            let from = stored[p] ?? starts[p] ?? 0
            out[p] = max(0, end - from)
        }
        return out
    }

    /// The sum over the partitions.
    public static func records(ends: [Int32: Int64], starts: [Int32: Int64], stored: [Int32: Int64]) -> Int64 {
        perPartition(ends: ends, starts: starts, stored: stored).values.reduce(0, +)
    }

    /// Asks the cluster for `topic`'s log start and end offsets and the store for `group`'s
    /// stored offsets, and returns the records not yet applied.
    public static func query(topic: String, group: String, admin: KafkaAdmin, store: some TransactionalSink) async throws -> Int64 {
        let ends = try await admin.listOffsets(topic: topic, spec: .latest)
        let starts = try await admin.listOffsets(topic: topic, spec: .earliest)
        let tps = ends.keys.sorted().map { TopicPartition(topic: topic, partition: $0) }
        let stored = try await store.storedOffsets(group: group, partitions: tps)
        return records(ends: ends, starts: starts, stored: Dictionary(uniqueKeysWithValues: stored.map { ($0.key.partition, $0.value) }))
    }
}

/// The figures of `brook up`'s live line, each labelled with what it counts. The topic holds
/// the generated events and the transfer credits the outbox relay adds, so "applied" is split
/// into the two and never compared with "generated" alone.
public struct LedgerStatusLine: Sendable, Equatable {
    /// Events the generator produced and had acknowledged in this run.
    public var generated: Int
    /// Committed to the store in this run (events include the ones the rules rejected).
    public var counts: LedgerWorkerCounts
    /// Records per second committed to the store (events and credits), since the last line.
    public var appliedPerSecond: Double
    /// Records dead-lettered as poison (failed), and parked behind a quarantined key, this run.
    public var deadLettered: Int64
    public var parked: Int64
    /// Records of the topic not applied yet (``GroupLag``); nil until the first answer.
    public var lagRecords: Int64?
    /// Age of the oldest record the workers hold unfinished; meaningful only when assigned.
    public var lagSeconds: Double
    /// Partitions assigned to the workers together.
    public var assignedPartitions: Int

    public init(generated: Int, counts: LedgerWorkerCounts, appliedPerSecond: Double, deadLettered: Int64, parked: Int64,
                lagRecords: Int64?, lagSeconds: Double, assignedPartitions: Int) {
        self.generated = generated
        self.counts = counts
        self.appliedPerSecond = appliedPerSecond
        self.deadLettered = deadLettered
        self.parked = parked
        self.lagRecords = lagRecords
        self.lagSeconds = lagSeconds
        self.assignedPartitions = assignedPartitions
    }

    /// One line, e.g. `generated 5400 events | lag 12 records, 0.1 s | applied 5276 events + 112
    /// outbox credits (200/s) | dead-lettered 4 poison + 9 parked`.
    public var text: String {
        var lag: String
        if let lagRecords {
            lag = "lag \(lagRecords) records"
            if assignedPartitions > 0 { lag += String(format: ", %.1f s", lagSeconds) }
        } else {
            lag = "lag unknown yet"
        }
        if assignedPartitions == 0 { lag += " (workers waiting for partitions)" }
        // Lag right after what was generated: on a narrow terminal the line is cut at the end.
        return "generated \(generated) events"
            + " | \(lag)"
            + " | applied \(counts.appliedEvents) events + \(counts.appliedCredits) outbox credits"
            + String(format: " (%.0f/s)", appliedPerSecond)
            + " | dead-lettered \(deadLettered) poison + \(parked) parked"
    }
}
