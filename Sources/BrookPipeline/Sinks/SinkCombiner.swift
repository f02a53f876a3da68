import Brook
import Synchronization

/// Gathers the ready batches of several partitions into one sink call, so a database with one
/// writer commits once for all of them, and the next call collects what became ready while the
/// last one committed (small calls when idle, large ones under load, no timer).
///
/// Each lane submits its batch and waits for that batch's own outcome; at most
/// ``TransactionalSink/maxConcurrentApplies`` calls run at once.
final class SinkCombiner<Value: Sendable>: Sendable {
    private struct Waiting {
        var batch: SinkBatch<Value>
        var queuedAt: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var running = 0
    }

    private let sink: any TransactionalSink<Value>
    private let group: String
    /// Records per combined call; a single batch larger than this still goes alone.
    private let maxRecords: Int
    private let maxCalls: Int
    private let metrics: PipelineMetrics
    private let state = Mutex(State())

    init(sink: any TransactionalSink<Value>, group: String, maxRecords: Int, metrics: PipelineMetrics) {
        self.sink = sink
        self.group = group
        self.maxRecords = max(maxRecords, 1)
        self.maxCalls = max(sink.maxConcurrentApplies, 1)
        self.metrics = metrics
    }

    /// Applies `batch` within some combined call; throws that batch's error (``SinkFenced``,
    /// ``RecordError``, or the call's transient error).
    func submit(_ batch: SinkBatch<Value>) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let start = state.withLock { s -> Bool in
                s.queue.append(Waiting(batch: batch, queuedAt: .now, continuation: c))
                guard s.running < maxCalls else { return false }
                s.running += 1
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Runs calls until the queue is empty.
    private func drain() async {
        while true {
            let taken = state.withLock { s -> [Waiting]? in
                guard !s.queue.isEmpty else {
                    s.running -= 1
                    return nil
                }
                var n = 0
                var records = 0
                while n < s.queue.count, n == 0 || records + s.queue[n].batch.records.count <= maxRecords {
                    records += s.queue[n].batch.records.count
                    n += 1
                }
                let out = Array(s.queue.prefix(n))
                s.queue.removeFirst(n)
                return out
            }
            guard let taken else { return }
            let started = ContinuousClock.now
            for w in taken { metrics.stage(.sinkWait).record(started - w.queuedAt, count: w.batch.records.count) }
            do {
                let results = try await sink.apply(batches: taken.map(\.batch), group: group)
                let took = ContinuousClock.now - started
                for (i, w) in taken.enumerated() {
                    metrics.stage(.sinkCall).record(took, count: w.batch.records.count)
                    let r = i < results.count
                        ? results[i]
                        : .failure(PipelineError.invalidConfiguration("the sink returned \(results.count) results for \(taken.count) batches"))
                    w.continuation.resume(with: r)
                }
            } catch {
                for w in taken { w.continuation.resume(throwing: error) }
            }
        }
    }
}
