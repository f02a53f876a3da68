import Brook
import BrookPipeline
import BrookProtocol
import Foundation
import Synchronization

/// Wraps a sink and counts what it commits: records, and the span from the first call's start
/// to the last call's end (throughput). Latency comes from the pipeline's stage timers.
public final class TimingSink: TransactionalSink {
    public typealias Value = LedgerEvent
    let inner: any TransactionalSink<LedgerEvent>
    struct State {
        var records = 0
        var firstStart: ContinuousClock.Instant?
        var lastEnd: ContinuousClock.Instant?
    }
    let state = Mutex(State())

    public init(_ inner: any TransactionalSink<LedgerEvent>) { self.inner = inner }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await inner.storedOffsets(group: group, partitions: partitions)
    }

    public func apply(_ records: [PipelineRecord<Value>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await apply(batches: [SinkBatch(partition: partition, records: records, expected: expected, next: next)], group: group)[0].get()
    }

    // Forwarded, not left to the protocol's default: that would apply one batch per transaction
    // and hide the inner sink's combined transactions from the benchmark.
    public func apply(batches: [SinkBatch<Value>], group: String) async throws -> [Result<Void, any Error>] {
        let start = ContinuousClock.now
        let results = try await inner.apply(batches: batches, group: group)
        let end = ContinuousClock.now
        var n = 0
        for (b, r) in zip(batches, results) { if case .success = r { n += b.records.count } }
        state.withLock { s in
            if s.firstStart == nil { s.firstStart = start }
            s.lastEnd = end
            s.records += n
        }
        return results
    }

    public var maxConcurrentApplies: Int { inner.maxConcurrentApplies }

    /// Clears what was counted so far.
    public func reset() { state.withLock { $0 = State() } }

    /// Records committed so far.
    public var records: Int { state.withLock { $0.records } }

    /// Records committed, and the span from the first call's start to the last call's end.
    public var throughput: (records: Int, seconds: Double) {
        state.withLock { s in
            guard let a = s.firstStart, let b = s.lastEnd else { return (0, 0) }
            return (s.records, (b - a).seconds)
        }
    }
}

extension LedgerStore {
    /// This store as a plain sink (an `any LedgerStore` does not convert to one by itself).
    public var asSink: any TransactionalSink<LedgerEvent> { self }
}
