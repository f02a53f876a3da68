import Brook
import BrookPipeline
import BrookProtocol
import Synchronization

/// What a ``LedgerWorker`` has written to its store since it started, by kind: the generated
/// events and the transfer credits its outbox relay put back on the topic are different figures
/// (a credit is a record of the topic that no one generated).
public struct LedgerWorkerCounts: Sendable, Equatable {
    /// Events other than transfer credits committed to the store (including those its rules
    /// rejected, which are recorded with their outcome).
    public var appliedEvents: Int64 = 0
    /// Transfer credits (from the outbox) committed to the store.
    public var appliedCredits: Int64 = 0
    /// Transfer credits the relay published from the outbox to the topic.
    public var relayedCredits: Int64 = 0

    public init(appliedEvents: Int64 = 0, appliedCredits: Int64 = 0, relayedCredits: Int64 = 0) {
        self.appliedEvents = appliedEvents
        self.appliedCredits = appliedCredits
        self.relayedCredits = relayedCredits
    }

    public static func + (a: Self, b: Self) -> Self {
        Self(appliedEvents: a.appliedEvents + b.appliedEvents, appliedCredits: a.appliedCredits + b.appliedCredits,
             relayedCredits: a.relayedCredits + b.relayedCredits)
    }

    /// Counts the records of one committed batch.
    mutating func add(_ records: [PipelineRecord<LedgerEvent>]) {
        for r in records {
            if case .transferCredit = r.value.body { appliedCredits += 1 } else { appliedEvents += 1 }
        }
    }
}

/// A worker's counts, shared by its sink and its relay.
final class LedgerCounter: Sendable {
    private let counts = Mutex(LedgerWorkerCounts())
    var value: LedgerWorkerCounts { counts.withLock { $0 } }
    func withLock<T>(_ body: (inout LedgerWorkerCounts) -> T) -> T { counts.withLock { body(&$0) } }
}

/// Passes every call to `inner` and counts what it committed (a call that throws, or a batch
/// that fails, committed nothing).
struct CountingSink<Inner: TransactionalSink<LedgerEvent>>: TransactionalSink {
    typealias Value = LedgerEvent
    let inner: Inner
    let counts: LedgerCounter

    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await inner.storedOffsets(group: group, partitions: partitions)
    }

    func apply(_ records: [PipelineRecord<LedgerEvent>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await inner.apply(records, partition: partition, group: group, expected: expected, next: next)
        counts.withLock { $0.add(records) }
    }

    func apply(batches: [SinkBatch<LedgerEvent>], group: String) async throws -> [Result<Void, any Error>] {
        let results = try await inner.apply(batches: batches, group: group)
        counts.withLock { c in
            for (b, r) in zip(batches, results) { if case .success = r { c.add(b.records) } }
        }
        return results
    }

    var maxConcurrentApplies: Int { inner.maxConcurrentApplies }
}
