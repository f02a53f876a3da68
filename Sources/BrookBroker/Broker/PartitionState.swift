import BrookProtocol
import Foundation
import Logging
import NIOCore
import Synchronization

/// One partition as the broker sees it: its log, the idempotent-producer state, the high
/// watermark consumers may read up to, and the fetches waiting for new data.
final class PartitionState: Sendable {
    let tp: TopicPartition
    let log: PartitionLog
    let logger: Logger
    private let snapshotURL: URL
    /// Producer state and the append itself happen under this lock, so a sequence check and the
    /// append it guards are atomic.
    private let producers: Mutex<ProducerStateTable>
    /// Offsets below this are durable and visible to consumers.
    private let hw: Atomic<Int64>
    private let waiters = Mutex<[ObjectIdentifier: Wakeup]>([:])

    init(tp: TopicPartition, log: PartitionLog, stateDirectory: URL, logger: Logger) throws {
        self.tp = tp
        self.log = log
        var l = logger
        l[metadataKey: BrookLogKey.topic] = "\(tp.topic)"
        l[metadataKey: BrookLogKey.partition] = "\(tp.partition)"
        self.logger = l
        self.snapshotURL = stateDirectory.appendingPathComponent("\(tp.topic)-\(tp.partition).json")
        var table = (try? ProducerStateTable.load(from: snapshotURL)) ?? ProducerStateTable()
        if table.snapshotOffset > log.logEndOffset { table = ProducerStateTable() }
        // Replay batch headers written after the snapshot: the state is exact after kill -9.
        try table.replay(from: log, startingAt: max(table.snapshotOffset, log.logStartOffset))
        self.producers = Mutex(table)
        // What survived recovery is on disk; fsync it so it is durable before anyone reads it.
        try? log.flush()
        self.hw = Atomic(log.logEndOffset)
    }

    var highWatermark: Int64 { hw.load(ordering: .acquiring) }
    var logStartOffset: Int64 { log.logStartOffset }
    var logEndOffset: Int64 { log.logEndOffset }

    /// Checks idempotence and appends. Returns the offsets assigned, or the original offsets of a
    /// duplicate retry.
    func append(_ batches: ByteBuffer, info: [BatchInfo], logAppendTime: Int64?) throws(ErrorCode) -> AppendOutcome {
        try producers.withLock { table throws(ErrorCode) -> AppendOutcome in
            // Idempotence: every batch of the request is checked before anything is written.
            var pending: [(Int, BatchInfo)] = []
            for (i, b) in info.enumerated() where b.producerId >= 0 {
                switch table.check(b) {
                case .ok: pending.append((i, b))
                case .duplicate(let first, let last):
                    return AppendOutcome(firstOffset: first, lastOffset: last, duplicate: true)
                case .error(let code): throw code
                }
            }
            let result: AppendInfo
            do {
                result = try log.append(batches, logAppendTime: logAppendTime)
            } catch {
                logger.error("append failed", metadata: [BrookLogKey.error: "\(error)"])
                throw ErrorCode.kafkaStorageError
            }
            // Offsets of each batch follow from the first offset and the record counts.
            var offset = result.firstOffset
            var perBatch: [(Int64, Int64)] = []
            for b in info {
                perBatch.append((offset, offset + Int64(b.lastOffsetDelta)))
                offset += Int64(b.lastOffsetDelta) + 1
            }
            for (i, b) in pending {
                table.record(b, firstOffset: perBatch[i].0, lastOffset: perBatch[i].1)
            }
            return AppendOutcome(firstOffset: result.firstOffset, lastOffset: result.lastOffset, duplicate: false)
        }
    }

    /// Makes `offset` visible to consumers (after it became durable) and wakes waiting fetches.
    func advanceHighWatermark(to offset: Int64) {
        var current = hw.load(ordering: .relaxed)
        while offset > current {
            let (exchanged, original) = hw.compareExchange(expected: current, desired: offset, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        let toWake = waiters.withLock { w -> [Wakeup] in
            let all = Array(w.values)
            w.removeAll()
            return all
        }
        for w in toWake { w.fire() }
    }

    func register(_ w: Wakeup) {
        waiters.withLock { $0[ObjectIdentifier(w)] = w }
    }

    func unregister(_ w: Wakeup) {
        _ = waiters.withLock { $0.removeValue(forKey: ObjectIdentifier(w)) }
    }

    func read(from offset: Int64, maxBytes: Int, minOneBatch: Bool) throws -> ByteBuffer {
        try log.read(from: offset, maxBytes: maxBytes, minOneBatch: minOneBatch, upTo: highWatermark)
    }

    /// Snapshots producer state so recovery replays only batches written after it.
    func saveProducerSnapshot() {
        do {
            try producers.withLock { try $0.save(to: snapshotURL, offset: log.logEndOffset) }
        } catch {
            logger.warning("producer state snapshot failed", metadata: [BrookLogKey.error: "\(error)"])
        }
    }

    func closeForShutdown() {
        do {
            try log.flush()
            try producers.withLock { try $0.save(to: snapshotURL, offset: log.logEndOffset) }
        } catch {
            logger.warning("close failed", metadata: [BrookLogKey.error: "\(error)"])
        }
    }

    /// Removes the producer snapshot and wakes waiting fetches (topic deleted; the log manager
    /// removes the log itself).
    func deleteFiles() {
        try? FileManager.default.removeItem(at: snapshotURL)
        advanceHighWatermark(to: highWatermark)
    }
}

struct AppendOutcome: Sendable {
    var firstOffset: Int64
    var lastOffset: Int64
    var duplicate: Bool
}

/// What the broker needs from one validated batch of a produce request.
struct BatchInfo: Sendable {
    var producerId: Int64
    var producerEpoch: Int16
    var baseSequence: Int32
    var lastOffsetDelta: Int32
    var recordCount: Int32
    var maxTimestamp: Int64
    var lastSequence: Int32 {
        let s = Int64(baseSequence) + Int64(lastOffsetDelta)
        return s > Int64(Int32.max) ? Int32(s - Int64(Int32.max) - 1) : Int32(s)
    }
}

/// A one-shot signal a waiting fetch sleeps on; fired by new data or by its timeout.
final class Wakeup: Sendable {
    private let state = Mutex<(fired: Bool, continuation: CheckedContinuation<Void, Never>?)>((false, nil))

    func fire() {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.fired { return nil }
            s.fired = true
            let c = s.continuation
            s.continuation = nil
            return c
        }
        c?.resume()
    }

    func wait(timeoutMs: Int64) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: .milliseconds(timeoutMs))
            self.fire()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.fired { return true }
                s.continuation = c
                return false
            }
            if resumeNow { c.resume() }
        }
        timer.cancel()
    }
}
