import BrookProtocol
import Logging
import Metrics
import NIOCore

/// The producer's machinery: it owns the shared state (accumulators, memory pool, idempotence
/// state machine — ``ProducerEngineState``), one sender task per broker
/// (`ProducerEngine+Sender.swift`) and a maintenance task for metadata, the producer id and
/// delivery timeouts (`ProducerEngine+Maintenance.swift`).
///
/// The state's methods decide; the engine runs what they decide (requests, wake-ups,
/// reports) and never holds the lock across a suspension.
final class ProducerEngine: Sendable {
    let config: ProducerConfiguration
    let cluster: KafkaCluster
    let ownsCluster: Bool
    let logger: Logger
    let idempotent: Bool
    let state: ProducerLock<ProducerEngineState>

    var stats: ProducerStats { state.withLock { $0.stats } }

    let maintenanceSignal = AsyncSignal()
    /// Delivery reports of `sendAsync` records, handed over per produce response.
    let reports: DeliveryReportBuffer

    // metrics
    let batchSizeRecorder: Recorder
    let requestLatency: Metrics.Timer

    init(config: ProducerConfiguration, cluster: KafkaCluster?, logger: Logger) {
        self.config = config
        self.ownsCluster = cluster == nil
        self.cluster = cluster ?? KafkaCluster(config: config.client, logger: logger)
        self.logger = logger
        self.idempotent = config.isIdempotent
        reports = DeliveryReportBuffer(capacity: config.maxBufferedDeliveryReports)
        let dims = [("client_id", config.client.clientId)]
        batchSizeRecorder = Recorder(label: "brook_producer_batch_size_bytes", dimensions: dims, aggregate: true)
        requestLatency = Metrics.Timer(label: "brook_producer_request_latency", dimensions: dims)
        let pool = BufferPool(capacity: config.bufferMemory,
                              gauge: Gauge(label: "brook_producer_buffer_bytes", dimensions: dims))
        state = ProducerLock(ProducerEngineState(config: config, logger: logger, pool: pool))
    }

    func start() {
        let task = Task { await self.runMaintenance() }
        state.withLock { $0.maintenanceTask = task }
    }

    func enableReports() {
        state.withLock { $0.reportsEnabled = true }
    }

    var bufferedBytes: Int { state.withLock { $0.pool.used } }

    var producerIdentity: ProducerIdentity? { state.withLock { $0.idempotence.identity } }

    // MARK: - appending

    /// Appends `record` to its partition's batch if everything it needs is at hand.
    ///
    /// - Parameter held: memory the caller already acquired for a new batch; consumed (or
    ///   returned to the pool) when the record is appended.
    func append(_ record: ProducerRecord, keyHash: Int32?, held: inout Int,
                waiter: SendWaiter?) -> AppendResult {
        var wake: AsyncSignal?
        let timestamp = record.timestamp ?? currentTimeMillis()
        let result = state.withLock { s in
            s.append(record, keyHash: keyHash, timestamp: timestamp, held: &held, waiter: waiter, wake: &wake)
        }
        wake?.signal()
        return result
    }

    // MARK: - memory

    /// Waits until `bytes` of `buffer.memory` are free and takes them (FIFO, at most max.block.ms).
    func acquireMemory(_ bytes: Int) async throws {
        let id = state.withLock { $0.pool.newWaiterId() }
        let maxBlock = config.maxBlock
        let timeout = Task {
            try? await Task.sleep(for: maxBlock)
            if !Task.isCancelled {
                self.abandonMemoryWait(id, error: KafkaClientError.timedOut("buffer.memory exhausted for max.block.ms (\(maxBlock))"))
            }
        }
        defer { timeout.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let (outcome, signals): (Bool?, [AsyncSignal]) = state.withLock { s in
                    if s.stopped { return (false, []) }
                    if s.pool.take(bytes) { return (true, []) }
                    s.pool.enqueue(.init(id: id, bytes: bytes, continuation: c))
                    // Blocked producers make every batch ready to send now (as Kafka does).
                    return (nil, s.senderSignals)
                }
                switch outcome {
                case true?: c.resume()
                case false?: c.resume(throwing: KafkaClientError.shutdown)
                case nil: break
                }
                for s in signals { s.signal() }
            }
        } onCancel: {
            self.abandonMemoryWait(id, error: CancellationError())
        }
    }

    private func abandonMemoryWait(_ id: UInt64, error: any Error) {
        let c = state.withLock { $0.pool.remove(waiter: id) }
        c?.resume(throwing: error)
    }

    func releaseMemory(_ bytes: Int) {
        guard bytes > 0 else { return }
        state.withLock { $0.pool.release(bytes) }
    }

    // MARK: - reporting

    /// Resumes `send` callers and yields delivery reports (outside the lock).
    func deliver(_ done: [BatchCompletion]) {
        guard !done.isEmpty else { return }
        var out: [DeliveryReport] = []
        out.reserveCapacity(done.reduce(0) { $0 + $1.batch.records.count })
        for c in done {
            let b = c.batch
            let topic = b.partition.topic.name
            let partition = b.partition.id
            switch c.result {
            case .success(let ack):
                if logger.logLevel <= .trace {
                    logger.trace("batch acknowledged", metadata: [
                        BrookLogKey.topic: "\(topic)", BrookLogKey.partition: "\(partition)", BrookLogKey.offset: "\(ack.baseOffset)",
                        BrookLogKey.records: "\(b.recordCount)", BrookLogKey.sequence: "\(b.baseSequence)",
                    ])
                }
                for r in b.records {
                    let md = RecordMetadata(topic: topic, partition: partition,
                                            offset: ack.baseOffset >= 0 ? ack.baseOffset + Int64(r.index) : -1,
                                            timestamp: ack.logAppendTime >= 0 ? ack.logAppendTime : r.timestamp)
                    if let w = r.waiter {
                        w.continuation.resume(returning: md)
                    } else {
                        out.append(DeliveryReport(id: r.id, topic: topic, partition: partition, result: .success(md)))
                    }
                }
            case .failure(let error):
                for r in b.records {
                    if let w = r.waiter {
                        w.continuation.resume(throwing: error)
                    } else {
                        out.append(DeliveryReport(id: r.id, topic: topic, partition: partition, result: .failure(error)))
                    }
                }
            }
            b.records = []
        }
        // One hand-over (one lock, at most one wake-up) for all the batches of this response.
        reports.append(out)
        let flushes: [CheckedContinuation<Void, Never>] = state.withLock { s in
            for c in done { s.retire(c.batch) }
            defer { s.flushResumes.removeAll() }
            return s.flushResumes
        }
        for f in flushes { f.resume() }
    }

    // MARK: - flush and close

    func flush() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let signals: [AsyncSignal]? = state.withLock { s in
                let target = s.nextBatchNumber - 1
                let low = s.incomplete.min() ?? .max
                if low > target { return nil }
                s.forceUpTo = max(s.forceUpTo, target)
                s.flushWaiters.append((target, c))
                return s.senderSignals
            }
            guard let signals else {
                c.resume()
                return
            }
            for s in signals { s.signal() }
        }
    }

    /// Flushes, then stops the senders and releases the connections.
    func close() async {
        let first: Bool = state.withLock { s in
            if s.closing { return false }
            s.closing = true
            return true
        }
        guard first else {
            await waitUntilClosed()
            return
        }
        logger.debug("producer closing")
        await flush()
        await stop(error: .shutdown)
    }

    /// Stops at once: what is not acknowledged yet fails with `error`.
    func stop(error: KafkaClientError) async {
        let (tasks, failed): ([Task<Void, Never>], [BatchCompletion]) = state.withLock { s in
            s.closing = true
            s.stopped = true
            var tasks = s.senders.values.map(\.task)
            if let m = s.maintenanceTask { tasks.append(m) }
            for h in s.senders.values { h.signal.signal() }
            for w in s.pool.removeAllWaiters() { w.continuation.resume(throwing: KafkaClientError.shutdown) }
            return (tasks, s.failAll(error))
        }
        deliver(failed)
        maintenanceSignal.signal()
        if ownsCluster { await cluster.close() }
        for t in tasks { await t.value }
        // In-flight requests ended with the connections; anything left fails.
        let rest = state.withLock { s in
            let out = s.failRemaining(error)
            for f in s.flushWaiters { s.flushResumes.append(f.continuation) }
            s.flushWaiters.removeAll()
            return out
        }
        deliver(rest)
        let flushes: [CheckedContinuation<Void, Never>] = state.withLock { s in
            defer { s.flushResumes.removeAll() }
            return s.flushResumes
        }
        for f in flushes { f.resume() }
        reports.finish()
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.closed = true
            defer { s.closeWaiters.removeAll() }
            return s.closeWaiters
        }
        for w in waiters { w.resume() }
        logger.debug("producer closed")
    }

    func waitUntilClosed() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done: Bool = state.withLock { s in
                if s.closed { return true }
                s.closeWaiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func backoff(attempt: Int) -> Duration {
        let base = config.retryBackoff * Double(1 << min(max(attempt - 1, 0), 16))
        return min(base, config.retryBackoffMax) * Double.random(in: 0.8...1.2)
    }
}
