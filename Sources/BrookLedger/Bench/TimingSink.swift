import Brook
import BrookPipeline
import Foundation
import Synchronization

/// Wraps a sink and records, for every record of every committed call, the time from the
/// record's timestamp (when the producer created it) to the commit: end-to-end latency.
public final class TimingSink: TransactionalSink {
    public typealias Value = LedgerEvent
    let inner: any TransactionalSink<LedgerEvent>
    struct State {
        var latenciesMs: [Int64] = []
        var records = 0
        var firstStart: ContinuousClock.Instant?
        var lastEnd: ContinuousClock.Instant?
        var recording = true
    }
    let state = Mutex(State())

    public init(_ inner: any TransactionalSink<LedgerEvent>) { self.inner = inner }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await inner.storedOffsets(group: group, partitions: partitions)
    }

    public func apply(_ records: [PipelineRecord<Value>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        let start = ContinuousClock.now
        try await inner.apply(records, partition: partition, group: group, expected: expected, next: next)
        let end = ContinuousClock.now
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        state.withLock { s in
            guard s.recording else { return }
            if s.firstStart == nil { s.firstStart = start }
            s.lastEnd = end
            s.records += records.count
            for r in records { s.latenciesMs.append(max(nowMs - r.timestamp, 0)) }
        }
    }

    /// Clears what was recorded so far.
    public func reset() { state.withLock { $0 = State() } }

    /// Records committed, and the span from the first call's start to the last call's end.
    public var throughput: (records: Int, seconds: Double) {
        state.withLock { s in
            guard let a = s.firstStart, let b = s.lastEnd else { return (0, 0) }
            let d = b - a
            return (s.records, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
    }

    /// The latency at quantile `q` (0…1) in milliseconds, nil before any commit.
    public func latency(quantile q: Double) -> Int64? {
        let sorted = state.withLock { $0.latenciesMs }.sorted()
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }
}

extension LedgerStore {
    /// This store as a plain sink (an `any LedgerStore` does not convert to one by itself).
    public var asSink: any TransactionalSink<LedgerEvent> { self }
}
