import BrookProtocol
import Logging
import NIOCore

/// Why an append could not complete synchronously.
enum AppendResult {
    case appended(UInt64)
    /// The topic's metadata is needed first.
    case needTopic
    /// A new batch needs this many bytes of `buffer.memory`.
    case needMemory(Int)
    case failed(KafkaClientError)
}

/// Thrown into a `send` continuation to make it retry after awaiting what the append needed.
enum AppendRetry: Error {
    case needTopic
    case needMemory(Int)
}

/// What the broker said about an acknowledged batch.
struct Acknowledgement: Sendable {
    /// Offset of the batch's first record (-1 with acks=0).
    var baseOffset: Int64
    /// The broker's LogAppendTime, or -1 when the topic uses CreateTime.
    var logAppendTime: Int64
}

/// A batch settled under the lock, to be reported outside it.
struct BatchCompletion {
    let batch: ProducerBatch
    let result: Result<Acknowledgement, KafkaClientError>
}

/// A broker's sender task and the signal that wakes it.
struct SenderHandle {
    let signal: AsyncSignal
    let task: Task<Void, Never>
}

/// Counters for tests and diagnostics.
struct ProducerStats: Sendable {
    var requests = 0
    var retries = 0
    var transportFailures = 0
    /// Failed attempts to connect to a partition leader.
    var connectFailures = 0
    var identities = 0
}

/// Everything the producer's tasks share, reachable only through ``ProducerLock/withLock(_:)``:
/// the accumulators (topics, partitions, batches), the memory pool, the idempotence state
/// machine, flush tracking and the lifecycle flags. Its methods decide; the engine's tasks do
/// the I/O, outside the lock.
struct ProducerEngineState {
    let config: ProducerConfiguration
    let partitioner: Partitioner
    let logger: Logger
    /// A batch this full takes no more records (the next would hardly fit).
    let batchSizeClose: Int

    var topics: [String: TopicState] = [:]
    /// The topic of the previous append (most producers write one topic).
    var lastTopic: TopicState?
    var nodePartitions: [Int32: [PartitionState]] = [:]
    var drainCursor: [Int32: Int] = [:]
    var senders: [Int32: SenderHandle] = [:]
    var nodeInFlight: [Int32: Int] = [:]
    var pool: BufferPool
    var idempotence: IdempotenceStateMachine
    // flush / completion
    var nextBatchNumber: UInt64 = 1
    var forceUpTo: UInt64 = 0
    var incomplete: Set<UInt64> = []
    var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    var flushResumes: [CheckedContinuation<Void, Never>] = []
    var nextRecordId: UInt64 = 0
    // lifecycle
    var metadataRequested = false
    var closing = false
    var stopped = false
    var closed = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var maintenanceTask: Task<Void, Never>?
    var reportsEnabled = false
    var stats = ProducerStats()

    init(config: ProducerConfiguration, logger: Logger, pool: BufferPool) {
        self.config = config
        self.logger = logger
        self.partitioner = Partitioner(config.partitioner, batchSize: config.batchSize)
        self.batchSizeClose = config.batchSize - 32
        self.pool = pool
        self.idempotence = IdempotenceStateMachine(enabled: config.isIdempotent, retries: config.retries,
                                                   deliveryTimeout: config.deliveryTimeout)
    }

    var idempotent: Bool { idempotence.enabled }
    var senderSignals: [AsyncSignal] { senders.values.map(\.signal) }

    // MARK: - appending

    /// Bytes a new batch reserves before it grows.
    static let firstReservation = 16 * 1024

    /// Upper bound of a record's encoded size inside a batch.
    static func estimatedSize(_ r: ProducerRecord) -> Int {
        var size = 5 + 1 + 10 + 5 + 5 + 5 + 5
        size += r.key?.readableBytes ?? 0
        size += r.value?.readableBytes ?? 0
        for h in r.headers { size += 10 + h.key.utf8.count + (h.value?.readableBytes ?? 0) }
        return size
    }

    /// Appends `record` to its partition's batch if everything it needs is at hand; `wake` is
    /// set to the sender to signal (outside the lock) when a batch became ready.
    ///
    /// - Parameter held: memory the caller already acquired for a new batch; consumed (or
    ///   returned to the pool) when the record is appended.
    @inline(__always)
    mutating func append(_ record: ProducerRecord, keyHash: Int32?, timestamp: Int64, held: inout Int,
                         waiter: SendWaiter?, wake: inout AsyncSignal?) -> AppendResult {
        if closing { return .failed(idempotence.fatal ?? .shutdown) }
        let topic: TopicState
        if let last = lastTopic, last.name == record.topic {
            topic = last
        } else {
            guard let t = topics[record.topic] else { return .needTopic }
            topic = t
            lastTopic = t
        }
        let count = Int32(truncatingIfNeeded: topic.partitions.count)
        guard count > 0 else { return .needTopic }
        let partitionId: Int32
        let sticky: Bool
        switch partitioner.partition(for: record, keyHash: keyHash, topic: topic, count: count) {
        case .success(let p): (partitionId, sticky) = p
        case .failure(let e): return .failed(e)
        }
        let part = topic.partitions[Int(partitionId)]
        // The open batch, if the record fits.
        if let batch = part.open {
            var size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers,
                                    limit: batch.reserved)
            if size == nil, growReservation(batch, for: record) {
                size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers,
                                    limit: batch.reserved)
            }
            if let size {
                let id = register(batch, timestamp: timestamp, waiter: waiter)
                if sticky { partitioner.noteSticky(topic, bytes: size) }
                if batch.approximateSize >= batchSizeClose {
                    part.closeOpen()
                    wake = senders[part.leader]?.signal
                }
                returnHeld(&held)
                return .appended(id)
            }
            part.closeOpen()
            wake = senders[part.leader]?.signal
        }
        // A new batch.
        let estimated = Self.estimatedSize(record) + RecordBatchHeader.size
        if estimated > config.maxRequestSize || estimated > config.bufferMemory {
            return .failed(.broker(.messageTooLarge, resource: "topic \(record.topic)",
                                   message: "record of about \(estimated) bytes exceeds max.request.size \(config.maxRequestSize) or buffer.memory \(config.bufferMemory)"))
        }
        // A new batch reserves a first step of batch.size and grows while records come
        // (`growReservation`): a partition with little traffic holds little memory. Starting at
        // the size the partition's previous batch reached saves growing (and copying) every
        // batch of a busy partition.
        let need = max(min(config.batchSize, max(Self.firstReservation, part.lastBatchBytes)), estimated)
        if held >= need {
            pool.release(held - need)
            held = 0
        } else if pool.take(need) {
            returnHeld(&held)
        } else {
            return .needMemory(need)
        }
        let number = nextBatchNumber
        nextBatchNumber += 1
        let capacity = config.compression == .none ? need : 0
        let builder = RecordBatchBuilder(codec: config.compression, compressionLevel: config.compressionLevel,
                                         appendingTo: ByteBufferAllocator().buffer(capacity: capacity))
        let now = ContinuousClock.now
        // `consume`: the local's copy would live to the end of the scope, and the first append
        // below would then copy the batch's whole buffer (it was not uniquely owned).
        let batch = ProducerBatch(number: number, partition: part, builder: consume builder, reserved: need,
                                  createdAt: now, deadline: now + config.deliveryTimeout)
        incomplete.insert(number)
        if waiter != nil || reportsEnabled { batch.records.reserveCapacity(part.lastBatchRecords) }
        part.open = batch
        let size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers, limit: .max)!
        let id = register(batch, timestamp: timestamp, waiter: waiter)
        if sticky { partitioner.noteSticky(topic, bytes: size) }
        if batch.approximateSize >= batchSizeClose { part.closeOpen() }
        wake = senders[part.leader]?.signal
        return .appended(id)
    }

    /// Grows an open batch's share of `buffer.memory` (doubling, up to batch.size) so `record`
    /// fits; false when the batch is at batch.size or the memory is not free now (then the batch
    /// closes and the record starts a new one, waiting for memory like any other).
    private mutating func growReservation(_ batch: ProducerBatch, for record: ProducerRecord) -> Bool {
        guard batch.reserved < config.batchSize else { return false }
        let wanted = batch.approximateSize + Self.estimatedSize(record)
        guard wanted <= config.batchSize else { return false }
        let target = min(config.batchSize, max(batch.reserved * 2, wanted))
        guard pool.take(target - batch.reserved) else { return false }
        batch.reserved = target
        return true
    }

    mutating func returnHeld(_ held: inout Int) {
        guard held > 0 else { return }
        pool.release(held)
        held = 0
    }

    /// Assigns the record's id and remembers what its report or waiting `send` needs.
    @inline(__always)
    private mutating func register(_ batch: ProducerBatch, timestamp: Int64, waiter: SendWaiter?) -> UInt64 {
        let id = nextRecordId
        nextRecordId &+= 1
        if waiter != nil || reportsEnabled {
            batch.records.append(PendingRecord(index: batch.recordCount - 1, id: id, timestamp: timestamp, waiter: waiter))
        }
        return id
    }

    // MARK: - choosing what to send

    /// The batch `p` would send next, if any; notes in `wake` when one becomes sendable.
    mutating func candidate(_ p: PartitionState, now: ContinuousClock.Instant, wake: inout ContinuousClock.Instant?) -> ProducerBatch? {
        switch idempotence.readiness(&p.sequence, inFlight: p.inFlight) {
        case .blocked:
            return nil
        case .ready:
            break
        case .resequence(let identity):
            // Re-sequence everything not yet acknowledged under the new producer id.
            let bases = idempotence.resequence(&p.sequence, under: identity, recordCounts: p.unacked.map(\.recordCount))
            for (b, base) in zip(p.unacked, bases) {
                b.producerId = identity.producerId
                b.producerEpoch = identity.epoch
                b.baseSequence = base
                b.headerStale = b.bytes != nil
            }
            logger.info("partition re-sequenced under a new producer id", metadata: [
                BrookLogKey.topic: "\(p.topic.name)", BrookLogKey.partition: "\(p.id)",
                BrookLogKey.producerId: "\(identity.producerId)",
            ])
        }
        // After a leader change, requests still in flight to the old leader come back first:
        // a later batch must not reach the new leader before an earlier one is settled.
        if p.inFlight > 0 && p.inFlightNode != p.leader {
            let poll = now + .milliseconds(5)
            wake = min(wake ?? poll, poll)
            return nil
        }
        // Retries go first, strictly one at a time and in sequence order; nothing new is sent
        // until every retried batch was acknowledged (or failed).
        if p.unacked.contains(where: { $0.attempts > 0 }) {
            guard p.inFlight == 0, let retry = p.unacked.first(where: { $0.state == .awaitingRetry }) else { return nil }
            if let at = retry.retryAt, at > now {
                wake = min(wake ?? at, at)
                return nil
            }
            return retry
        }
        guard p.inFlight < config.maxInFlightRequestsPerConnection else { return nil }
        if let r = p.ready.first { return r }
        if let o = p.open {
            let due = o.createdAt + config.linger
            if closing || o.number <= forceUpTo || pool.hasWaiters || due <= now { return o }
            wake = min(wake ?? due, due)
        }
        return nil
    }

    /// Whether `node`'s sender has something to send now; else when to look again (nil: when
    /// signalled).
    mutating func hasWork(node: Int32, now: ContinuousClock.Instant) -> (Bool, ContinuousClock.Instant?) {
        var wake: ContinuousClock.Instant?
        if (nodeInFlight[node] ?? 0) >= config.maxInFlightRequestsPerConnection { return (false, nil) }
        for p in nodePartitions[node] ?? [] where !p.isIdle {
            if candidate(p, now: now, wake: &wake) != nil { return (true, nil) }
        }
        return (false, wake)
    }

    /// Takes at most one batch per partition led by `node`, up to max.request.size.
    mutating func drain(node: Int32) -> [ProducerBatch] {
        guard !stopped, (nodeInFlight[node] ?? 0) < config.maxInFlightRequestsPerConnection,
              let parts = nodePartitions[node], !parts.isEmpty else { return [] }
        let now = ContinuousClock.now
        var wake: ContinuousClock.Instant?
        var out: [ProducerBatch] = []
        var size = 128
        let start = (drainCursor[node] ?? 0) % parts.count
        drainCursor[node] = start + 1
        for k in 0..<parts.count {
            let p = parts[(start + k) % parts.count]
            guard !p.isIdle, let b = candidate(p, now: now, wake: &wake) else { continue }
            let bsize = b.size + 64
            if !out.isEmpty && size + bsize > config.maxRequestSize { break }
            size += bsize
            take(b, from: p)
            p.inFlightNode = node
            out.append(b)
        }
        if !out.isEmpty {
            nodeInFlight[node, default: 0] += 1
            stats.requests += 1
        }
        return out
    }

    private mutating func take(_ b: ProducerBatch, from p: PartitionState) {
        if b.state == .awaitingRetry {
            b.retryAt = nil
        } else {
            if b === p.open {
                p.open = nil
                p.noteClosed(b)
            } else if let i = p.ready.firstIndex(where: { $0 === b }) {
                p.ready.remove(at: i)
            }
            if idempotent {
                b.producerId = p.sequence.producerId
                b.producerEpoch = p.sequence.producerEpoch
                b.baseSequence = idempotence.takeSequence(&p.sequence, records: b.recordCount)
            }
            p.unacked.append(b)
        }
        b.state = .inFlight
        p.inFlight += 1
    }

    // MARK: - outcomes

    /// Runs the idempotence state machine's decision for a batch that came back without an
    /// acknowledgement. Returns the completion if the batch is settled (failed, or a duplicate);
    /// sets the flags of what the engine must do next.
    mutating func produceFailed(_ b: ProducerBatch, code: ErrorCode?, error: KafkaClientError, definitelyNotWritten: Bool,
                                backoff: Duration, needMetadata: inout Bool, needIdentity: inout Bool,
                                duplicate: Acknowledgement = Acknowledgement(baseOffset: -1, logAppendTime: -1)) -> BatchCompletion? {
        let p = b.partition
        let now = ContinuousClock.now
        let failure = ProduceFailure(code: code, error: error, definitelyNotWritten: definitelyNotWritten,
                                     isOldestUnacknowledged: p.unacked.first === b, attempts: b.attempts,
                                     deadline: b.deadline, hasSequence: b.baseSequence >= 0,
                                     partitionName: "\(p.topic.name)-\(p.id)")
        let actions = idempotence.produceFailed(failure, partition: &p.sequence, now: now, retryBackoff: backoff,
                                                stopping: stopped)
        if actions.refreshMetadata { needMetadata = true }
        if actions.resetIdentity { needIdentity = true }
        switch actions.batch {
        case .complete:
            return complete(b, duplicate)
        case .retry(let at):
            b.attempts += 1
            stats.retries += 1
            b.state = .awaitingRetry
            b.retryAt = at
            b.lastError = error
            p.topic.metrics.retries.increment()
            senders[p.leader]?.signal.signal()
            return nil
        case .fail(let e):
            return fail(b, e)
        }
    }

    /// Marks a batch acknowledged; returns what to deliver outside the lock.
    mutating func complete(_ b: ProducerBatch, _ ack: Acknowledgement) -> BatchCompletion? {
        guard b.state != .done else { return nil }
        let p = b.partition
        p.topic.metrics.records.increment(by: Int64(b.recordCount))
        p.topic.metrics.bytes.increment(by: Int64(b.size))
        finish(b)
        return BatchCompletion(batch: b, result: .success(ack))
    }

    mutating func fail(_ b: ProducerBatch, _ error: KafkaClientError) -> BatchCompletion? {
        guard b.state != .done else { return nil }
        let p = b.partition
        if b === p.open { p.open = nil }
        p.ready.removeAll { $0 === b }
        finish(b)
        p.topic.metrics.errors.increment(by: Int64(b.recordCount))
        return BatchCompletion(batch: b, result: .failure(error))
    }

    private mutating func finish(_ b: ProducerBatch) {
        let p = b.partition
        if let i = p.unacked.firstIndex(where: { $0 === b }) { p.unacked.remove(at: i) }
        b.state = .done
        b.builder = nil
        b.bytes = nil
        pool.release(b.reserved)
        // The batch stays in `incomplete` until `deliver` reported its records.
    }

    /// After a batch's records were reported: flush waiters it held up can go.
    mutating func retire(_ b: ProducerBatch) {
        incomplete.remove(b.number)
        if !flushWaiters.isEmpty {
            let low = incomplete.min() ?? .max
            var still: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
            for w in flushWaiters {
                if w.target < low { flushResumes.append(w.continuation) } else { still.append(w) }
            }
            flushWaiters = still
        }
    }

    /// Fails every batch not in flight.
    mutating func failAll(_ error: KafkaClientError) -> [BatchCompletion] {
        var out: [BatchCompletion] = []
        for t in topics.values {
            for p in t.partitions {
                var all: [ProducerBatch] = p.unacked.filter { $0.state != .inFlight } + p.ready
                if let o = p.open { all.append(o) }
                for b in all { if let r = fail(b, error) { out.append(r) } }
            }
        }
        return out
    }

    /// Fails every batch left, in flight or not (after the senders stopped).
    mutating func failRemaining(_ error: KafkaClientError) -> [BatchCompletion] {
        var out: [BatchCompletion] = []
        for t in topics.values {
            for p in t.partitions {
                for b in p.unacked + p.ready + (p.open.map { [$0] } ?? []) {
                    if let r = fail(b, error) { out.append(r) }
                }
            }
        }
        return out
    }

    /// Fails batches whose delivery.timeout.ms passed while not in flight; sets `needIdentity`
    /// when a partition's sequences must start over.
    mutating func expire(now: ContinuousClock.Instant, needIdentity: inout Bool) -> [BatchCompletion] {
        guard !incomplete.isEmpty else { return [] }
        var expired: [(ProducerBatch, KafkaClientError)] = []
        for t in topics.values {
            for p in t.partitions where !p.isIdle {
                func timeout(_ b: ProducerBatch) -> KafkaClientError {
                    .timedOut("delivery.timeout.ms (\(config.deliveryTimeout)) expired for \(b.recordCount) records of \(t.name)-\(p.id)"
                        + (b.lastError.map { "; last error: \($0)" } ?? ""))
                }
                // Sent before but unanswered: their outcome is unknown, and so is that of every
                // later batch waiting for a retry.
                if let i = p.unacked.firstIndex(where: { $0.state == .awaitingRetry && $0.deadline <= now }) {
                    for b in p.unacked[i...] where b.state == .awaitingRetry { expired.append((b, timeout(b))) }
                    if idempotence.batchesExpired(&p.sequence) { needIdentity = true }
                }
                for b in p.ready where b.deadline <= now { expired.append((b, timeout(b))) }
                if let b = p.open, b.deadline <= now { expired.append((b, timeout(b))) }
            }
        }
        return expired.compactMap { fail($0.0, $0.1) }
    }
}
