import BrookProtocol
import Logging
import Metrics
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

/// The producer's machinery: accumulators, memory pool, idempotence state, one sender task per
/// broker and a maintenance task (metadata, producer id, delivery timeouts).
///
/// All mutable state is guarded by `lock`; the async parts never hold it across a suspension.
final class ProducerEngine: @unchecked Sendable {
    let config: ProducerConfiguration
    let cluster: KafkaCluster
    let ownsCluster: Bool
    let logger: Logger
    let idempotent: Bool
    let lock = ProducerLock()
    /// How keyless records without an explicit partition are placed (keyed ones: murmur2, or
    /// the custom function).
    enum PartitionerKind {
        case sticky
        case roundRobin
        case custom(@Sendable (ProducerRecord, Int32) -> Int32)
    }
    let partitionerKind: PartitionerKind
    /// A batch this full takes no more records (the next would hardly fit).
    let batchSizeClose: Int

    // MARK: state (under lock)
    @exclusivity(unchecked) private var topics: [String: TopicState] = [:]
    /// The topic of the previous append (most producers write one topic).
    @exclusivity(unchecked) private var lastTopic: TopicState?
    @exclusivity(unchecked) private var nodePartitions: [Int32: [PartitionState]] = [:]
    private var drainCursor: [Int32: Int] = [:]
    @exclusivity(unchecked) private var senders: [Int32: (signal: WakeupSignal, task: Task<Void, Never>)] = [:]
    @exclusivity(unchecked) private var nodeInFlight: [Int32: Int] = [:]
    // buffer.memory
    @exclusivity(unchecked) private var available: Int
    @exclusivity(unchecked) private var memoryWaiters: [(id: UInt64, bytes: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextWaiterId: UInt64 = 0
    // flush / completion
    @exclusivity(unchecked) private var nextBatchNumber: UInt64 = 1
    @exclusivity(unchecked) private var forceUpTo: UInt64 = 0
    @exclusivity(unchecked) private var incomplete: Set<UInt64> = []
    private var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private var flushResumes: [CheckedContinuation<Void, Never>] = []
    @exclusivity(unchecked) private var nextRecordId: UInt64 = 0
    // idempotence
    private var identity: (producerId: Int64, epoch: Int16)?
    private var identityGeneration = 0
    private var identityRequested: Bool
    @exclusivity(unchecked) private var fatalError: KafkaClientError?
    // lifecycle
    private var metadataRequested = false
    @exclusivity(unchecked) private var closing = false
    private var stopped = false
    private var closed = false
    private var closeWaiters: [CheckedContinuation<Void, Never>] = []
    private var maintenanceTask: Task<Void, Never>?
    @exclusivity(unchecked) private var reportsEnabled = false
    /// Counters for tests and diagnostics.
    struct Stats {
        var requests = 0
        var retries = 0
        var transportFailures = 0
        /// Failed attempts to connect to a partition leader.
        var connectFailures = 0
        var identities = 0
    }
    private var statsStorage = Stats()
    var stats: Stats { lock.withLock { statsStorage } }

    let maintenanceSignal = WakeupSignal()
    /// Delivery reports of `sendAsync` records, handed over per produce response.
    let reports: DeliveryReportBuffer

    // metrics
    private let batchSizeRecorder: Recorder
    private let requestLatency: Metrics.Timer
    private let bufferGauge: Gauge

    init(config: ProducerConfiguration, cluster: KafkaCluster?, logger: Logger) {
        self.config = config
        self.ownsCluster = cluster == nil
        self.cluster = cluster ?? KafkaCluster(config: config.client, logger: logger)
        self.logger = logger
        self.idempotent = config.isIdempotent
        self.identityRequested = config.isIdempotent
        self.available = config.bufferMemory
        switch config.partitioner {
        case .default: partitionerKind = .sticky
        case .roundRobin: partitionerKind = .roundRobin
        case .custom(let f): partitionerKind = .custom(f)
        }
        batchSizeClose = config.batchSize - 32
        reports = DeliveryReportBuffer(capacity: config.maxBufferedDeliveryReports)
        let dims = [("client_id", config.client.clientId)]
        batchSizeRecorder = Recorder(label: "brook_producer_batch_size_bytes", dimensions: dims, aggregate: true)
        requestLatency = Metrics.Timer(label: "brook_producer_request_latency", dimensions: dims)
        bufferGauge = Gauge(label: "brook_producer_buffer_bytes", dimensions: dims)
    }

    func start() {
        let task = Task { await self.runMaintenance() }
        lock.withLock { maintenanceTask = task }
    }

    func enableReports() {
        lock.withLock { reportsEnabled = true }
    }

    var bufferedBytes: Int { lock.withLock { config.bufferMemory - available } }

    var producerIdentity: (producerId: Int64, epoch: Int16)? { lock.withLock { identity } }

    // MARK: - appending

    /// Upper bound of a record's encoded size inside a batch.
    static func estimatedSize(_ r: ProducerRecord) -> Int {
        var size = 5 + 1 + 10 + 5 + 5 + 5 + 5
        size += r.key?.readableBytes ?? 0
        size += r.value?.readableBytes ?? 0
        for h in r.headers { size += 10 + h.key.utf8.count + (h.value?.readableBytes ?? 0) }
        return size
    }

    /// Appends `record` to its partition's batch if everything it needs is at hand.
    ///
    /// - Parameter held: memory the caller already acquired for a new batch; consumed (or
    ///   returned to the pool) when the record is appended.
    func append(_ record: ProducerRecord, keyHash: Int32?, held: inout Int,
                waiter: SendWaiter?) -> AppendResult {
        var wake: WakeupSignal?
        let timestamp = record.timestamp ?? currentTimeMillis()
        let result: AppendResult = lock.withLock {
            if closing { return .failed(fatalError ?? .shutdown) }
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
            // Partition.
            let partitionId: Int32
            var sticky = false
            if let p = record.partition {
                guard p >= 0 && p < count else {
                    return .failed(.broker(.unknownTopicOrPartition, resource: "\(record.topic)-\(p)",
                                           message: "the topic has \(count) partitions"))
                }
                partitionId = p
            } else if let keyHash {
                partitionId = (keyHash & 0x7fff_ffff) % count
            } else {
                switch partitionerKind {
                case .sticky:
                    partitionId = stickyPartition(topic, count: count)
                    sticky = true
                case .roundRobin:
                    topic.roundRobin &+= 1
                    let available = topic.available
                    partitionId = available.isEmpty ? Int32(topic.roundRobin % Int(count)) : available[topic.roundRobin % available.count]
                case .custom(let f):
                    let p = f(record, count) % count
                    partitionId = p < 0 ? p + count : p
                }
            }
            let part = topic.partitions[Int(partitionId)]
            // The open batch, if the record fits.
            if let batch = part.open {
                var size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers,
                                        limit: batch.reserved)
                if size == nil, growReservationLocked(batch, for: record) {
                    size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers,
                                        limit: batch.reserved)
                }
                if let size {
                    let id = register(batch, timestamp: timestamp, waiter: waiter)
                    if sticky { noteStickyBytes(topic, size) }
                    if batch.approximateSize >= batchSizeClose {
                        part.closeOpen()
                        wake = senders[part.leader]?.signal
                    }
                    if held > 0 { returnHeld(&held) }
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
            // (`growReservationLocked`): a partition with little traffic holds little memory.
            // Starting at the size the partition's previous batch reached saves growing (and
            // copying) every batch of a busy partition.
            let need = max(min(config.batchSize, max(Self.firstReservation, part.lastBatchBytes)), estimated)
            if held >= need {
                available += held - need
                held = 0
                wakeMemoryWaitersLocked()
            } else if memoryWaiters.isEmpty && available >= need {
                available -= need
                returnHeld(&held)
                bufferGauge.record(config.bufferMemory - available)
            } else {
                return .needMemory(need)
            }
            let number = nextBatchNumber
            nextBatchNumber += 1
            let capacity = config.compression == .none ? need : 0
            let builder = RecordBatchBuilder(codec: config.compression, compressionLevel: config.compressionLevel,
                                             appendingTo: ByteBufferAllocator().buffer(capacity: capacity))
            let now = ContinuousClock.now
            // `consume`: the local's copy would live to the end of the scope, and the first
            // append below would then copy the batch's whole buffer (it was not uniquely owned).
            let batch = ProducerBatch(number: number, partition: part, builder: consume builder, reserved: need,
                                      createdAt: now, deadline: now + config.deliveryTimeout)
            incomplete.insert(number)
            if waiter != nil || reportsEnabled { batch.records.reserveCapacity(part.lastBatchRecords) }
            part.open = batch
            let size = batch.append(timestamp: timestamp, key: record.key, value: record.value, headers: record.headers, limit: .max)!
            let id = register(batch, timestamp: timestamp, waiter: waiter)
            if sticky { noteStickyBytes(topic, size) }
            if batch.approximateSize >= batchSizeClose { part.closeOpen() }
            wake = senders[part.leader]?.signal
            return .appended(id)
        }
        wake?.signal()
        return result
    }

    /// Bytes a new batch reserves before it grows.
    static let firstReservation = 16 * 1024

    /// Grows an open batch's share of `buffer.memory` (doubling, up to batch.size) so `record`
    /// fits; false when the batch is at batch.size or the memory is not free now (then the batch
    /// closes and the record starts a new one, waiting for memory like any other).
    private func growReservationLocked(_ batch: ProducerBatch, for record: ProducerRecord) -> Bool {
        guard batch.reserved < config.batchSize, memoryWaiters.isEmpty else { return false }
        let wanted = batch.approximateSize + Self.estimatedSize(record)
        guard wanted <= config.batchSize else { return false }
        let target = min(config.batchSize, max(batch.reserved * 2, wanted))
        let delta = target - batch.reserved
        guard available >= delta else { return false }
        available -= delta
        batch.reserved = target
        bufferGauge.record(config.bufferMemory - available)
        return true
    }

    private func returnHeld(_ held: inout Int) {
        guard held > 0 else { return }
        available += held
        held = 0
        wakeMemoryWaitersLocked()
    }

    /// Assigns the record's id and remembers what its report or waiting `send` needs.
    @inline(__always)
    private func register(_ batch: ProducerBatch, timestamp: Int64, waiter: SendWaiter?) -> UInt64 {
        let id = nextRecordId
        nextRecordId &+= 1
        if waiter != nil || reportsEnabled {
            batch.records.append(PendingRecord(index: batch.recordCount - 1, id: id, timestamp: timestamp, waiter: waiter))
        }
        return id
    }

    /// Keyless records stay on one partition until about `batch.size` bytes went there.
    private func stickyPartition(_ topic: TopicState, count: Int32) -> Int32 {
        if topic.sticky < 0 || topic.sticky >= count {
            topic.sticky = pickSticky(topic, count: count, avoiding: -1)
            topic.stickyBytes = 0
        }
        return topic.sticky
    }

    private func noteStickyBytes(_ topic: TopicState, _ bytes: Int) {
        topic.stickyBytes += bytes
        if topic.stickyBytes >= config.batchSize {
            topic.sticky = pickSticky(topic, count: Int32(topic.partitions.count), avoiding: topic.sticky)
            topic.stickyBytes = 0
        }
    }

    private func pickSticky(_ topic: TopicState, count: Int32, avoiding: Int32) -> Int32 {
        let candidates = topic.available.isEmpty ? Array(0..<count) : topic.available
        if candidates.count == 1 { return candidates[0] }
        while true {
            let p = candidates.randomElement()!
            if p != avoiding { return p }
        }
    }

    // MARK: - memory

    /// Waits until `bytes` of `buffer.memory` are free and takes them (FIFO, at most max.block.ms).
    func acquireMemory(_ bytes: Int) async throws {
        let id: UInt64 = lock.withLock {
            nextWaiterId += 1
            return nextWaiterId
        }
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
                let (outcome, signals): (Bool?, [WakeupSignal]) = lock.withLock {
                    if stopped { return (false, []) }
                    if memoryWaiters.isEmpty && available >= bytes {
                        available -= bytes
                        return (true, [])
                    }
                    memoryWaiters.append((id, bytes, c))
                    // Blocked producers make every batch ready to send now (as Kafka does).
                    return (nil, senders.values.map(\.signal))
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
        let c: CheckedContinuation<Void, any Error>? = lock.withLock {
            guard let i = memoryWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            let w = memoryWaiters.remove(at: i)
            if i == 0 { wakeMemoryWaitersLocked() }
            return w.continuation
        }
        c?.resume(throwing: error)
    }

    func releaseMemory(_ bytes: Int) {
        guard bytes > 0 else { return }
        lock.withLock {
            available += bytes
            wakeMemoryWaitersLocked()
        }
    }

    /// Hands freed memory to waiters in order (resuming only enqueues their tasks).
    private func wakeMemoryWaitersLocked() {
        while let first = memoryWaiters.first, first.bytes <= available {
            available -= first.bytes
            memoryWaiters.removeFirst()
            first.continuation.resume()
        }
        bufferGauge.record(config.bufferMemory - available)
    }

    // MARK: - topics and metadata

    /// Fetches the topic's metadata (creating it if the cluster auto-creates topics), waiting
    /// at most max.block.ms while it has no partitions or leaders yet.
    func ensureTopic(_ name: String) async throws {
        let deadline = ContinuousClock.now + config.maxBlock
        var attempt = 0
        while true {
            if lock.withLock({ topics[name].map { !$0.partitions.isEmpty } ?? false }) { return }
            do {
                let t = try await cluster.metadata(for: name, allowAutoCreate: true)
                if !t.partitions.isEmpty {
                    install([t])
                    return
                }
                throw KafkaClientError.broker(.leaderNotAvailable, resource: "topic \(name)", message: "no partitions yet")
            } catch let e as KafkaClientError where e.isRetriable {
                attempt += 1
                if ContinuousClock.now >= deadline {
                    throw KafkaClientError.timedOut("topic \(name) not available after max.block.ms (\(config.maxBlock)): \(e)")
                }
                await cluster.invalidate()
                try await Task.sleep(for: backoff(attempt: attempt))
            }
        }
    }

    /// Updates partitions and leaders; starts senders for brokers that became leaders.
    private func install(_ updated: [ClusterMetadata.Topic]) {
        var newNodes: [Int32] = []
        var wake: [WakeupSignal] = []
        lock.withLock {
            for t in updated {
                let state = topics[t.name] ?? {
                    let s = TopicState(name: t.name, clientId: config.client.clientId)
                    topics[t.name] = s
                    return s
                }()
                while state.partitions.count < t.partitions.count {
                    state.partitions.append(PartitionState(topic: state, id: Int32(state.partitions.count)))
                }
                var available: [Int32] = []
                for p in t.partitions where Int(p.id) < state.partitions.count {
                    let part = state.partitions[Int(p.id)]
                    let leader = (p.error == .none || p.leader >= 0) ? p.leader : -1
                    if leader != part.leader {
                        if part.leader >= 0 {
                            nodePartitions[part.leader]?.removeAll { $0 === part }
                        }
                        part.leader = leader
                        if leader >= 0 {
                            nodePartitions[leader, default: []].append(part)
                            if senders[leader] == nil && !stopped { newNodes.append(leader) }
                        }
                    }
                    if leader >= 0 { available.append(p.id) }
                }
                state.available = available
            }
            for node in Set(newNodes) {
                let signal = WakeupSignal()
                let task = Task { await self.runSender(node: node, signal: signal) }
                senders[node] = (signal, task)
            }
            wake = senders.values.map(\.signal)
        }
        for s in wake { s.signal() }
    }

    func requestMetadata() {
        lock.withLock { metadataRequested = true }
        maintenanceSignal.signal()
    }

    private func refreshMetadata() async throws {
        let names: [String] = lock.withLock {
            metadataRequested = false
            return Array(topics.keys)
        }
        guard !names.isEmpty else { return }
        await cluster.invalidate()
        let md = try await cluster.refreshMetadata(topics: names)
        install(names.compactMap { md.topics[$0] })
        // Still leaderless partitions with data: ask again (after a backoff).
        let again: Bool = lock.withLock {
            topics.values.contains { t in t.partitions.contains { $0.leader < 0 && !$0.isIdle } }
        }
        if again { lock.withLock { metadataRequested = true } }
    }

    func backoff(attempt: Int) -> Duration {
        let base = config.retryBackoff * Double(1 << min(max(attempt - 1, 0), 16))
        return min(base, config.retryBackoffMax) * Double.random(in: 0.8...1.2)
    }

    // MARK: - maintenance task

    private func runMaintenance() async {
        var metadataFailures = 0
        var lastMetadata = ContinuousClock.now - .seconds(10)
        while true {
            let (stop, needIdentity, needMetadata) = lock.withLock {
                (stopped, identityRequested && fatalError == nil, metadataRequested)
            }
            if stop { return }
            if needIdentity { await obtainIdentity() }
            if needMetadata && ContinuousClock.now - lastMetadata >= backoff(attempt: metadataFailures + 1) {
                lastMetadata = .now
                do {
                    try await refreshMetadata()
                    metadataFailures = 0
                } catch {
                    metadataFailures += 1
                    lock.withLock { metadataRequested = true }
                    logger.debug("metadata refresh failed", metadata: ["error": "\(error)"])
                }
            }
            expireBatches()
            await maintenanceSignal.wait(until: .now + .milliseconds(100))
        }
    }

    /// InitProducerId for an idempotent producer (a fresh producer id; sequences start at 0).
    private func obtainIdentity() async {
        var attempt = 0
        while !lock.withLock({ stopped }) {
            do {
                let conn = try await cluster.anyConnection()
                var req = InitProducerIdRequest()
                req.transactionalId = nil
                req.transactionTimeoutMs = Int32.max
                req.producerId = -1
                req.producerEpoch = -1
                let resp = try await conn.send(req)
                if resp.errorCode != 0 {
                    let code = ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError
                    throw KafkaClientError.broker(code, resource: "InitProducerId", message: nil)
                }
                let signals: [WakeupSignal] = lock.withLock {
                    identity = (resp.producerId, resp.producerEpoch)
                    identityGeneration += 1
                    identityRequested = false
                    statsStorage.identities += 1
                    return senders.values.map(\.signal)
                }
                logger.debug("producer id assigned", metadata: ["kafka.producer_id": "\(resp.producerId)", "kafka.producer_epoch": "\(resp.producerEpoch)"])
                for s in signals { s.signal() }
                return
            } catch let e as KafkaClientError where !e.isRetriable && e.code != nil {
                logger.error("InitProducerId failed; the idempotent producer cannot send", metadata: ["error": "\(e)"])
                let failed = lock.withLock {
                    fatalError = e
                    return failAllLocked(e)
                }
                deliver(failed)
                return
            } catch {
                attempt += 1
                logger.debug("InitProducerId failed, retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff(attempt: attempt))
            }
        }
    }

    private func requestNewIdentityLocked(for p: PartitionState) {
        if !p.needsReset {
            p.needsReset = true
            p.resetGeneration = identityGeneration
        }
        identityRequested = true
    }

    /// Fails batches whose delivery.timeout.ms passed while not in flight.
    private func expireBatches() {
        let now = ContinuousClock.now
        let failed: [(ProducerBatch, KafkaClientError)] = lock.withLock {
            guard !incomplete.isEmpty else { return [] }
            var out: [(ProducerBatch, KafkaClientError)] = []
            for t in topics.values {
                for p in t.partitions where !p.isIdle {
                    func timeout(_ b: ProducerBatch) -> KafkaClientError {
                        .timedOut("delivery.timeout.ms (\(config.deliveryTimeout)) expired for \(b.recordCount) records of \(t.name)-\(p.id)"
                            + (b.lastError.map { "; last error: \($0)" } ?? ""))
                    }
                    // Sent before but unanswered: their outcome is unknown, and so is that of
                    // every later batch waiting for a retry.
                    if let i = p.unacked.firstIndex(where: { $0.state == .awaitingRetry && $0.deadline <= now }) {
                        let expired = p.unacked[i...].filter { $0.state == .awaitingRetry }
                        for b in expired { out.append((b, timeout(b))) }
                        if idempotent { requestNewIdentityLocked(for: p) }
                    }
                    for b in p.ready where b.deadline <= now { out.append((b, timeout(b))) }
                    if let b = p.open, b.deadline <= now { out.append((b, timeout(b))) }
                }
            }
            return out
        }
        guard !failed.isEmpty else { return }
        let done = lock.withLock {
            failed.compactMap { (b, e) in failLocked(b, e) }
        }
        for (b, e) in failed {
            logger.warning("records expired", metadata: [
                "kafka.topic": "\(b.partition.topic.name)", "kafka.partition": "\(b.partition.id)", "kafka.offset": "-1",
                "records": "\(b.recordCount)", "error": "\(e)",
            ])
        }
        deliver(done)
        maintenanceSignal.signal()
    }

    // MARK: - senders

    private enum SenderState {
        case stop
        case idle(ContinuousClock.Instant?)
        case work
    }

    private func runSender(node: Int32, signal: WakeupSignal) async {
        await withDiscardingTaskGroup { group in
            var connectFailures = 0
            while true {
                let state: SenderState = lock.withLock {
                    if stopped { return .stop }
                    var wake: ContinuousClock.Instant?
                    if (nodeInFlight[node] ?? 0) >= config.maxInFlightRequestsPerConnection { return .idle(nil) }
                    let now = ContinuousClock.now
                    for p in nodePartitions[node] ?? [] where !p.isIdle {
                        if candidateLocked(p, now: now, wake: &wake) != nil { return .work }
                    }
                    return .idle(wake)
                }
                switch state {
                case .stop:
                    return
                case .idle(let wake):
                    await signal.wait(until: wake)
                    continue
                case .work:
                    break
                }
                let conn: BrokerConnection
                do {
                    conn = try await cluster.connection(to: node)
                    connectFailures = 0
                } catch {
                    connectFailures += 1
                    lock.withLock { statsStorage.connectFailures += 1 }
                    logger.debug("cannot connect to leader", metadata: ["kafka.node": "\(node)", "error": "\(error)"])
                    requestMetadata()
                    await signal.wait(until: .now + backoff(attempt: connectFailures))
                    continue
                }
                let batches = lock.withLock { drainLocked(node: node) }
                if batches.isEmpty { continue }
                guard let started = startProduce(batches, node: node, connection: conn) else {
                    lock.withLock { nodeInFlight[node, default: 1] -= 1 }
                    continue
                }
                group.addTask {
                    await self.finishProduce(started, node: node)
                    self.lock.withLock { self.nodeInFlight[node, default: 1] -= 1 }
                    signal.signal()
                }
            }
        }
    }

    /// The batch `p` would send next, if any; notes in `wake` when one becomes sendable.
    private func candidateLocked(_ p: PartitionState, now: ContinuousClock.Instant, wake: inout ContinuousClock.Instant?) -> ProducerBatch? {
        if idempotent {
            guard let identity else { return nil }
            if p.needsReset {
                guard p.inFlight == 0, identityGeneration > p.resetGeneration else { return nil }
                // Re-sequence everything not yet acknowledged under the new producer id.
                var seq: Int32 = 0
                for b in p.unacked {
                    b.producerId = identity.producerId
                    b.producerEpoch = identity.epoch
                    b.baseSequence = seq
                    b.headerStale = b.bytes != nil
                    seq = incrementSequence(seq, by: b.recordCount)
                }
                p.producerId = identity.producerId
                p.producerEpoch = identity.epoch
                p.identityGeneration = identityGeneration
                p.nextSequence = seq
                p.needsReset = false
                logger.info("partition re-sequenced under a new producer id", metadata: [
                    "kafka.topic": "\(p.topic.name)", "kafka.partition": "\(p.id)", "kafka.producer_id": "\(identity.producerId)",
                ])
            } else if p.identityGeneration < 0 {
                p.producerId = identity.producerId
                p.producerEpoch = identity.epoch
                p.identityGeneration = identityGeneration
                p.nextSequence = 0
            }
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
            if closing || o.number <= forceUpTo || !memoryWaiters.isEmpty || due <= now { return o }
            wake = min(wake ?? due, due)
        }
        return nil
    }

    /// Takes at most one batch per partition led by `node`, up to max.request.size.
    private func drainLocked(node: Int32) -> [ProducerBatch] {
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
            guard !p.isIdle, let b = candidateLocked(p, now: now, wake: &wake) else { continue }
            let bsize = b.size + 64
            if !out.isEmpty && size + bsize > config.maxRequestSize { break }
            size += bsize
            take(b, from: p)
            p.inFlightNode = node
            out.append(b)
        }
        if !out.isEmpty {
            nodeInFlight[node, default: 0] += 1
            statsStorage.requests += 1
        }
        return out
    }

    private func take(_ b: ProducerBatch, from p: PartitionState) {
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
                b.producerId = p.producerId
                b.producerEpoch = p.producerEpoch
                b.baseSequence = p.nextSequence
                p.nextSequence = incrementSequence(p.nextSequence, by: b.recordCount)
            }
            p.unacked.append(b)
        }
        b.state = .inFlight
        p.inFlight += 1
    }

    // MARK: - produce requests

    /// A produce request written to the connection, its response still to come.
    private struct StartedProduce: @unchecked Sendable {
        var batches: [ProducerBatch]
        var future: EventLoopFuture<ByteBuffer>?
        var version: Int16 = 0
        var started: ContinuousClock.Instant
        var error: (any Error)?
    }

    /// Encodes the batches and writes the request, synchronously: the sender loop calls this so
    /// that a partition's requests reach the broker in sequence order.
    private func startProduce(_ batches: [ProducerBatch], node: Int32, connection: BrokerConnection) -> StartedProduce? {
        var sendable: [ProducerBatch] = []
        var encodeFailures: [(ProducerBatch, KafkaClientError)] = []
        for b in batches {
            do {
                try b.prepareForSend()
                sendable.append(b)
            } catch {
                encodeFailures.append((b, .protocolViolation("could not encode the record batch: \(error)")))
            }
        }
        if !encodeFailures.isEmpty {
            let done = lock.withLock {
                encodeFailures.compactMap { (b, e) -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? in
                    b.partition.inFlight -= 1
                    if idempotent && b.baseSequence >= 0 { requestNewIdentityLocked(for: b.partition) }
                    return failLocked(b, e)
                }
            }
            deliver(done)
        }
        guard !sendable.isEmpty else { return nil }

        var request = ProduceRequest()
        request.acks = config.acks.rawValue
        request.timeoutMs = Int32(clamping: config.requestTimeout.milliseconds)
        var byTopic: [String: Int] = [:]
        for b in sendable {
            var pd = ProduceRequest.PartitionProduceData()
            pd.index = b.partition.id
            pd.records = b.bytes
            let name = b.partition.topic.name
            if let i = byTopic[name] {
                request.topicData[i].partitionData.append(pd)
            } else {
                var td = ProduceRequest.TopicProduceData()
                td.name = name
                td.partitionData = [pd]
                byTopic[name] = request.topicData.count
                request.topicData.append(td)
            }
            batchSizeRecorder.record(b.bytes?.readableBytes ?? 0)
        }
        do {
            let version = try connection.version(for: .produce)
            let future = connection.enqueue(request, version: version, expectsResponse: config.acks != .none,
                                            timeout: config.requestTimeout + .seconds(5))
            return StartedProduce(batches: sendable, future: future, version: version, started: .now)
        } catch {
            return StartedProduce(batches: sendable, started: .now, error: error)
        }
    }

    /// Awaits the response of a started request and settles its batches.
    private func finishProduce(_ s: StartedProduce, node: Int32) async {
        let sendable = s.batches
        var body: ByteBuffer
        do {
            if let e = s.error { throw e }
            body = try await s.future!.get()
        } catch {
            await transportFailure(sendable, node: node, error: error)
            return
        }
        requestLatency.recordNanoseconds((ContinuousClock.now - s.started).nanoseconds)
        if config.acks == .none {
            let done = lock.withLock {
                sendable.compactMap { b -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? in
                    b.partition.inFlight -= 1
                    return completeLocked(b, baseOffset: -1, logAppendTime: -1)
                }
            }
            deliver(done)
            return
        }
        let response: ProduceResponse
        do {
            response = try ProduceResponse(from: &body, version: s.version)
        } catch {
            await transportFailure(sendable, node: node, error: KafkaClientError.protocolViolation("could not decode Produce v\(s.version) response: \(error)"))
            return
        }

        var results: [ObjectIdentifier: ProduceResponse.PartitionProduceResponse] = [:]
        var lookup: [String: [Int32: ProducerBatch]] = [:]
        for b in sendable { lookup[b.partition.topic.name, default: [:]][b.partition.id] = b }
        for t in response.responses {
            for pr in t.partitionResponses {
                if let b = lookup[t.name]?[pr.index] { results[ObjectIdentifier(b)] = pr }
            }
        }
        var needMetadata = false
        var logs: [(ProducerBatch, ErrorCode, String?, Bool)] = []
        let done: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] = lock.withLock {
            var out: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] = []
            for b in sendable {
                b.partition.inFlight -= 1
                guard let pr = results[ObjectIdentifier(b)] else {
                    let e = KafkaClientError.protocolViolation("produce response lacks \(b.partition.topic.name)-\(b.partition.id)")
                    if let r = handleErrorLocked(b, code: .unknownServerError, error: e, definitelyNotWritten: false, needMetadata: &needMetadata) {
                        out.append(r)
                    }
                    continue
                }
                let code = ErrorCode(rawValue: pr.errorCode) ?? .unknownServerError
                switch code {
                case .none:
                    if let r = completeLocked(b, baseOffset: pr.baseOffset, logAppendTime: pr.logAppendTimeMs) { out.append(r) }
                case .duplicateSequenceNumber:
                    // A retry of a batch the broker already has but can no longer place.
                    if let r = completeLocked(b, baseOffset: pr.baseOffset >= 0 ? pr.baseOffset : -1, logAppendTime: pr.logAppendTimeMs) { out.append(r) }
                default:
                    let e = KafkaClientError.broker(code, resource: "\(b.partition.topic.name)-\(b.partition.id)", message: pr.errorMessage)
                    let r = handleErrorLocked(b, code: code, error: e, definitelyNotWritten: true, needMetadata: &needMetadata)
                    logs.append((b, code, pr.errorMessage, r == nil))
                    if let r { out.append(r) }
                }
            }
            return out
        }
        for (b, code, message, retrying) in logs {
            let meta: Logger.Metadata = [
                "kafka.topic": "\(b.partition.topic.name)", "kafka.partition": "\(b.partition.id)", "kafka.offset": "-1",
                "error": "\(code.name)", "records": "\(b.recordCount)", "attempt": "\(b.attempts)",
                "kafka.sequence": "\(b.baseSequence)", "kafka.producer_id": "\(b.producerId)",
                "message": "\(message ?? "")", "kafka.node": "\(node)",
            ]
            if retrying { logger.debug("produce failed, will retry", metadata: meta) } else { logger.warning("produce failed", metadata: meta) }
        }
        if needMetadata { requestMetadata() }
        deliver(done)
    }

    private func transportFailure(_ batches: [ProducerBatch], node: Int32, error: any Error) async {
        let e = (error as? KafkaClientError) ?? .connectionClosed("\(error)")
        logger.debug("produce request failed", metadata: ["kafka.node": "\(node)", "error": "\(e)", "batches": "\(batches.count)"])
        await cluster.connectionFailed(node)
        var needMetadata = true
        let done = lock.withLock {
            statsStorage.transportFailures += 1
            return batches.compactMap { b -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? in
                b.partition.inFlight -= 1
                return handleErrorLocked(b, code: nil, error: e, definitelyNotWritten: false, needMetadata: &needMetadata)
            }
        }
        requestMetadata()
        deliver(done)
    }

    /// Decides between retry and failure for a batch that came back with an error (Kafka's
    /// rules for idempotent producers). Returns the completion if the batch failed for good.
    private func handleErrorLocked(_ b: ProducerBatch, code: ErrorCode?, error: KafkaClientError, definitelyNotWritten: Bool,
                                   needMetadata: inout Bool) -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? {
        let p = b.partition
        let now = ContinuousClock.now
        var retriable = code.map { $0.isRetriable } ?? error.isRetriable
        if let code {
            switch code {
            case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch,
                 .unknownLeaderEpoch, .kafkaStorageError, .unknownTopicId, .brokerNotAvailable:
                needMetadata = true
            default:
                break
            }
        } else {
            needMetadata = true
        }
        if idempotent && !stopped {
            switch code {
            case .outOfOrderSequenceNumber?:
                if p.needsReset || p.unacked.first !== b {
                    // A consequence of an earlier batch's failure: resend in order.
                    retriable = true
                } else {
                    // The oldest unacknowledged batch is out of order: the broker lost our
                    // sequence. Kafka fails the batch and starts over with a new producer id.
                    requestNewIdentityLocked(for: p)
                    maintenanceSignal.signal()
                    return failLocked(b, error)
                }
            case .unknownProducerId?:
                // The broker forgot the producer (e.g. retention removed its batches): the
                // batch was not written; resend under a new producer id.
                requestNewIdentityLocked(for: p)
                maintenanceSignal.signal()
                retriable = true
            case .invalidProducerEpoch?, .invalidProducerIdMapping?:
                requestNewIdentityLocked(for: p)
                maintenanceSignal.signal()
                retriable = true
            default:
                if p.needsReset {
                    // Waiting to re-sequence: a rejected batch is rewritten, an unknown outcome fails.
                    retriable = definitelyNotWritten
                }
            }
        }
        if retriable && !stopped && b.attempts < config.retries && now < b.deadline {
            b.attempts += 1
            statsStorage.retries += 1
            b.state = .awaitingRetry
            b.retryAt = now + backoff(attempt: b.attempts)
            b.lastError = error
            p.topic.metrics.retries.increment()
            senders[p.leader]?.signal.signal()
            return nil
        }
        if idempotent && b.baseSequence >= 0 && !stopped {
            // Later batches of this partition carry sequences after this one: start over.
            requestNewIdentityLocked(for: p)
            maintenanceSignal.signal()
        }
        let final: KafkaClientError = (retriable && now >= b.deadline)
            ? .timedOut("delivery.timeout.ms (\(config.deliveryTimeout)) expired for \(p.topic.name)-\(p.id); last error: \(error)")
            : error
        return failLocked(b, final)
    }

    /// Marks a batch acknowledged; returns what to deliver outside the lock.
    private func completeLocked(_ b: ProducerBatch, baseOffset: Int64, logAppendTime: Int64) -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? {
        guard b.state != .done else { return nil }
        let p = b.partition
        p.topic.metrics.records.increment(by: Int64(b.recordCount))
        p.topic.metrics.bytes.increment(by: Int64(b.size))
        finishLocked(b)
        return (b, .success((baseOffset, logAppendTime)))
    }

    private func failLocked(_ b: ProducerBatch, _ error: KafkaClientError) -> (ProducerBatch, Result<(Int64, Int64), KafkaClientError>)? {
        guard b.state != .done else { return nil }
        let p = b.partition
        if b === p.open { p.open = nil }
        p.ready.removeAll { $0 === b }
        finishLocked(b)
        p.topic.metrics.errors.increment(by: Int64(b.recordCount))
        return (b, .failure(error))
    }

    private func finishLocked(_ b: ProducerBatch) {
        let p = b.partition
        if let i = p.unacked.firstIndex(where: { $0 === b }) { p.unacked.remove(at: i) }
        b.state = .done
        b.builder = nil
        b.bytes = nil
        available += b.reserved
        wakeMemoryWaitersLocked()
        // The batch stays in `incomplete` until `deliver` reported its records.
    }

    /// After a batch's records were reported: flush waiters it held up can go.
    private func retireLocked(_ b: ProducerBatch) {
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

    private func failAllLocked(_ error: KafkaClientError) -> [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] {
        var out: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] = []
        for t in topics.values {
            for p in t.partitions {
                var all: [ProducerBatch] = p.unacked.filter { $0.state != .inFlight } + p.ready
                if let o = p.open { all.append(o) }
                for b in all { if let r = failLocked(b, error) { out.append(r) } }
            }
        }
        return out
    }

    /// Resumes `send` callers and yields delivery reports (outside the lock).
    private func deliver(_ done: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)]) {
        guard !done.isEmpty else { return }
        var out: [DeliveryReport] = []
        out.reserveCapacity(done.reduce(0) { $0 + $1.0.records.count })
        for (b, result) in done {
            let topic = b.partition.topic.name
            let partition = b.partition.id
            switch result {
            case .success(let (base, logAppendTime)):
                if logger.logLevel <= .trace {
                    logger.trace("batch acknowledged", metadata: [
                        "kafka.topic": "\(topic)", "kafka.partition": "\(partition)", "kafka.offset": "\(base)", "records": "\(b.recordCount)",
                        "kafka.sequence": "\(b.baseSequence)",
                    ])
                }
                for r in b.records {
                    let md = RecordMetadata(topic: topic, partition: partition, offset: base >= 0 ? base + Int64(r.index) : -1,
                                            timestamp: logAppendTime >= 0 ? logAppendTime : r.timestamp)
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
        let flushes: [CheckedContinuation<Void, Never>] = lock.withLock {
            for (b, _) in done { retireLocked(b) }
            defer { flushResumes.removeAll() }
            return flushResumes
        }
        for f in flushes { f.resume() }
    }

    // MARK: - flush and close

    func flush() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let signals: [WakeupSignal]? = lock.withLock {
                let target = nextBatchNumber - 1
                let low = incomplete.min() ?? .max
                if low > target { return nil }
                forceUpTo = max(forceUpTo, target)
                flushWaiters.append((target, c))
                return senders.values.map(\.signal)
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
        let first: Bool = lock.withLock {
            if closing { return false }
            closing = true
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
        let (tasks, failed): ([Task<Void, Never>], [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)]) = lock.withLock {
            closing = true
            stopped = true
            var tasks = senders.values.map(\.task)
            if let m = maintenanceTask { tasks.append(m) }
            for s in senders.values { s.signal.signal() }
            let waiters = memoryWaiters
            memoryWaiters.removeAll()
            for w in waiters { w.continuation.resume(throwing: KafkaClientError.shutdown) }
            return (tasks, failAllLocked(error))
        }
        deliver(failed)
        maintenanceSignal.signal()
        if ownsCluster { await cluster.close() }
        for t in tasks { await t.value }
        // In-flight requests ended with the connections; anything left fails.
        let rest = lock.withLock {
            var out: [(ProducerBatch, Result<(Int64, Int64), KafkaClientError>)] = []
            for t in topics.values {
                for p in t.partitions {
                    for b in p.unacked + p.ready + (p.open.map { [$0] } ?? []) {
                        if let r = failLocked(b, error) { out.append(r) }
                    }
                }
            }
            for f in flushWaiters { flushResumes.append(f.continuation) }
            flushWaiters.removeAll()
            return out
        }
        deliver(rest)
        let flushes: [CheckedContinuation<Void, Never>] = lock.withLock {
            defer { flushResumes.removeAll() }
            return flushResumes
        }
        for f in flushes { f.resume() }
        reports.finish()
        let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
            closed = true
            defer { closeWaiters.removeAll() }
            return closeWaiters
        }
        for w in waiters { w.resume() }
        logger.debug("producer closed")
    }

    func waitUntilClosed() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done: Bool = lock.withLock {
                if closed { return true }
                closeWaiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    var isClosed: Bool { lock.withLock { closed } }
}
