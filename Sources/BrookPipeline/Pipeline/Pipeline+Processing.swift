import Brook
import BrookProtocol
import Foundation
import Logging
import NIOCore

extension Pipeline {
    /// A lane's worker: takes up to a batch at a time until the lane is empty or its partition
    /// is no longer this epoch's.
    func runLane(_ id: LaneID, epoch: UInt64) async {
        let max = configuration.maxBatchRecords
        while true {
            let items = state.withLock { s -> [PipelineItem<Value>]? in
                guard var lane = s.lanes[id] else {
                    s.workers -= 1
                    return nil
                }
                if !s.isActive(id.tp, epoch) {
                    s.release(lane.drain())
                    s.lanes[id] = nil
                    s.workers -= 1
                    return nil
                }
                if lane.isEmpty {
                    lane.running = false
                    s.lanes[id] = lane
                    s.workers -= 1
                    return nil
                }
                let items = lane.take(max: max)
                s.lanes[id] = lane
                return items
            }
            guard let items else {
                wake.yield()
                return
            }
            let taken = ContinuousClock.now
            let queued = metrics.stage(.queued)
            for i in items { queued.record(taken - i.fetchedAt) }
            await process(items, tp: id.tp, epoch: epoch, taken: taken)
        }
    }

    /// Processes one taken batch: dead-letters undecodable records, parks quarantined keys,
    /// calls the handler or sink with retries, and marks everything finished for the commit.
    func process(_ items: [PipelineItem<Value>], tp: TopicPartition, epoch: UInt64, taken: ContinuousClock.Instant) async {
        var pending = items[...]
        var isolate = false
        var attempts: [Int64: Int] = [:]
        while let first = pending.first {
            guard active(tp, epoch) else { return abandon(Array(pending)) }
            if case .failure(let error) = first.decoded {
                // Undecodable: dead-lettered alone and at once, in its place in the order.
                guard await deadLetterOrPark(first, error: error, attempts: 1, tp: tp, epoch: epoch),
                    await advanceSink(past: first.offset, tp: tp, epoch: epoch)
                else { return abandon(Array(pending)) }
                finish([first], tp: tp, epoch: epoch)
                pending.removeFirst()
                continue
            }
            let limit = isolate ? 1 : configuration.maxBatchRecords
            let segment = Array(pending.prefix { if case .success = $0.decoded { return true } else { return false } }.prefix(limit))
            var toRun: [PipelineItem<Value>] = []
            for item in segment {
                if configuration.deadLetter.quarantine, case .park(let entry) = quarantine.decide(item.record) {
                    guard await park(item, entry, tp: tp, epoch: epoch) else { return abandon(Array(pending)) }
                } else {
                    toRun.append(item)
                }
            }
            let outcome = await run(&toRun, upTo: segment.last!.offset, attempts: &attempts, isolate: isolate, tp: tp, epoch: epoch, taken: taken)
            switch outcome {
            case .done:
                guard await releaseReplayedKeys(toRun, tp: tp, epoch: epoch) else { return abandon(Array(pending)) }
                finish(segment, tp: tp, epoch: epoch)
                pending.removeFirst(segment.count)
            case .isolate:
                // Parked and dead-lettered records of the segment are done; the rest is run again
                // one record at a time.
                isolate = true
                let remaining = Set(toRun.map(\.offset))
                let handled = segment.filter { !remaining.contains($0.offset) }
                finish(handled, tp: tp, epoch: epoch)
                let handledOffsets = Set(handled.map(\.offset))
                pending = ArraySlice(pending.filter { !handledOffsets.contains($0.offset) })
            case .abandoned:
                return abandon(Array(pending))
            }
        }
    }

    enum RunOutcome { case done, isolate, abandoned }

    /// Calls the handler (or sink) for `toRun` until it succeeds, dead-lettering the records it
    /// names as failed for good. `toRun` ends as the records that were applied.
    func run(
        _ toRun: inout [PipelineItem<Value>], upTo last: Int64, attempts: inout [Int64: Int], isolate: Bool, tp: TopicPartition, epoch: UInt64,
        taken: ContinuousClock.Instant? = nil
    ) async -> RunOutcome {
        let maxAttempts = configuration.retry.maxAttempts
        let instruments = metrics.topic(tp.topic)
        var batchFailures = 0
        var transient = 0
        while true {
            guard active(tp, epoch) else { return .abandoned }
            if toRun.isEmpty, case .handler = target { return .done }
            let records = toRun.compactMap(\.pipelineRecord)
            let started = ContinuousClock.now
            do {
                switch target {
                case .handler(let handler):
                    if let taken { metrics.stage(.sinkWait).record(started - taken, count: records.count) }
                    try await handler(records)
                    metrics.stage(.sinkCall).record(ContinuousClock.now - started, count: records.count)
                case .sink:
                    // The combiner times the wait for and the length of the (shared) transaction.
                    let expected = state.withLock { $0.partitions[tp]?.stored }
                    try await combiner!.submit(SinkBatch(partition: tp, records: records, expected: expected, next: last + 1))
                    state.withLock { s in
                        if s.partitions[tp]?.epoch == epoch { s.partitions[tp]?.stored = last + 1 }
                    }
                }
                instruments.duration.record(duration: ContinuousClock.now - started)
                let nowMs = currentTimeMillis()
                let endToEnd = metrics.stage(.endToEnd)
                for r in records { endToEnd.record(sinceTimestampMs: r.timestamp, nowMs: nowMs) }
                return .done
            } catch let fenced as SinkFenced {
                fence(tp, epoch: epoch, fenced)
                return .abandoned
            } catch let e as RecordError where toRun.contains(where: { $0.offset == e.offset }) {
                let i = toRun.firstIndex { $0.offset == e.offset }!
                let a = attempts[e.offset, default: 0] + 1
                attempts[e.offset] = a
                if e.kind == .nonRetryable || a >= maxAttempts {
                    guard await deadLetterOrPark(toRun[i], error: e, attempts: a, tp: tp, epoch: epoch) else { return .abandoned }
                    let failed = toRun.remove(at: i)
                    guard await parkFollowers(of: failed, in: &toRun, from: i, tp: tp, epoch: epoch) else { return .abandoned }
                    continue
                }
                instruments.retries.increment()
                logger.warning("record failed, retrying", metadata: recordMetadata(toRun[i].record, e, attempt: a))
                guard await backoff(a, tp: tp, epoch: epoch) else { return .abandoned }
            } catch {
                if case .sink = target {
                    // The sink's contract: any other error is transient; the call is retried.
                    transient += 1
                    instruments.retries.increment()
                    logger.warning("sink failed, retrying", metadata: batchMetadata(toRun, tp, error, attempt: transient))
                    guard await backoff(transient, tp: tp, epoch: epoch) else { return .abandoned }
                    continue
                }
                if toRun.count > 1 {
                    batchFailures += 1
                    instruments.retries.increment()
                    logger.warning("batch failed, retrying", metadata: batchMetadata(toRun, tp, error, attempt: batchFailures))
                    // Tried as a whole often enough: one record at a time finds the culprit.
                    if batchFailures >= maxAttempts && !isolate { return .isolate }
                    guard await backoff(batchFailures, tp: tp, epoch: epoch) else { return .abandoned }
                    continue
                }
                let item = toRun[0]
                let a = attempts[item.offset, default: 0] + 1
                attempts[item.offset] = a
                let e = RecordError(offset: item.offset, kind: .retryable, type: String(describing: type(of: error)), message: "\(error)")
                if a >= maxAttempts {
                    guard await deadLetterOrPark(item, error: e, attempts: a, tp: tp, epoch: epoch) else { return .abandoned }
                    toRun.removeAll()
                    continue
                }
                instruments.retries.increment()
                logger.warning("record failed, retrying", metadata: recordMetadata(item.record, e, attempt: a))
                guard await backoff(a, tp: tp, epoch: epoch) else { return .abandoned }
            }
        }
    }

    /// After a record of key K was dead-lettered, K's later records of the batch park behind it.
    func parkFollowers(of failed: PipelineItem<Value>, in toRun: inout [PipelineItem<Value>], from i: Int, tp: TopicPartition, epoch: UInt64) async -> Bool {
        guard configuration.deadLetter.quarantine, let key = failed.record.key else { return true }
        var j = i
        while j < toRun.count {
            if toRun[j].record.key == key, case .park(let entry) = quarantine.decide(toRun[j].record) {
                guard await park(toRun[j], entry, tp: tp, epoch: epoch) else { return false }
                toRun.remove(at: j)
            } else {
                j += 1
            }
        }
        return true
    }

    /// Sink mode: moves the stored offset past records that were dead-lettered or parked
    /// without anything else to apply, so that a restart does not dead-letter them again.
    func advanceSink(past offset: Int64, tp: TopicPartition, epoch: UInt64) async -> Bool {
        guard case .sink = target else { return true }
        var none: [PipelineItem<Value>] = []
        var attempts: [Int64: Int] = [:]
        return await run(&none, upTo: offset, attempts: &attempts, isolate: false, tp: tp, epoch: epoch) == .done
    }

    // MARK: - bookkeeping

    func active(_ tp: TopicPartition, _ epoch: UInt64) -> Bool {
        state.withLock { $0.isActive(tp, epoch) }
    }

    /// Sleeps the backoff of `attempt`, in slices, giving up when the partition is no longer ours.
    func backoff(_ attempt: Int, tp: TopicPartition, epoch: UInt64) async -> Bool {
        let deadline = ContinuousClock.now + configuration.retry.backoff(attempt: attempt)
        while ContinuousClock.now < deadline {
            guard active(tp, epoch) else { return false }
            try? await Task.sleep(for: min(.milliseconds(50), deadline - .now))
        }
        return active(tp, epoch)
    }

    func finish(_ items: [PipelineItem<Value>], tp: TopicPartition, epoch: UInt64) {
        guard !items.isEmpty else { return }
        state.withLock { s in
            s.release(items)
            s.processed += Int64(items.count)
            guard var c = s.partitions[tp], c.epoch == epoch else { return }
            for i in items { c.tracker.complete(i.offset) }
            c.lastFinishedTimestamp = items.last!.record.timestamp
            if c.finishedSinceCommit == nil { c.finishedSinceCommit = .now }
            s.partitions[tp] = c
        }
        metrics.topic(tp.topic).records.increment(by: items.count)
        wake.yield()
    }

    /// Work given up (partition revoked or fenced, or stopping): not finished, so not committed.
    func abandon(_ items: [PipelineItem<Value>]) {
        state.withLock { $0.release(items) }
        wake.yield()
    }

    func fence(_ tp: TopicPartition, epoch: UInt64, _ error: SinkFenced) {
        let fenced = state.withLock { s -> Bool in
            guard s.partitions[tp]?.epoch == epoch else { return false }
            s.partitions[tp]?.fenced = true
            s.dropQueued(of: [tp])
            return true
        }
        guard fenced else { return }
        clients.withLock { $0?.consumer }?.pause([tp])
        logger.warning("fenced by the sink: partition stopped until reassigned", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(error)"])
    }

    /// A batch's log metadata: that of its first record (topic, partition, offset, key), the
    /// batch size, the error and the attempt.
    func batchMetadata(_ items: [PipelineItem<Value>], _ tp: TopicPartition, _ error: any Error, attempt: Int) -> Logger.Metadata {
        var m: Logger.Metadata = items.first.map { BrookLogKey.metadata($0.record) }
            ?? [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)"]
        m[BrookLogKey.batchRecords] = "\(items.count)"
        m[BrookLogKey.error] = "\(error)"
        m[BrookLogKey.attempt] = "\(attempt)"
        return m
    }

    func recordMetadata(_ r: ConsumerRecord, _ e: RecordError, attempt: Int) -> Logger.Metadata {
        var m = BrookLogKey.metadata(r)
        m[BrookLogKey.error] = "\(e.type): \(e.message)"
        m[BrookLogKey.attempt] = "\(attempt)"
        return m
    }
}
