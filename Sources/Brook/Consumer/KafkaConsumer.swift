import BrookProtocol
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A Kafka consumer in pure Swift: consumer groups (classic protocol) or manual assignment,
/// records as an `AsyncSequence`, bounded prefetch, commits, seeks, pause/resume and lag.
///
/// ```swift
/// var config = ConsumerConfiguration(bootstrapServers: [try BrokerAddress(parsing: "127.0.0.1:9092")],
///                                    groupId: "billing")
/// config.offsets.autoOffsetReset = .earliest
/// let consumer = try KafkaConsumer(configuration: config)
/// try consumer.subscribe(topics: ["payments"])
/// for try await record in consumer.messages {
///     try await handle(record)        // the previous record counts as processed once the loop asks for the next
/// }
/// ```
///
/// ## Lifecycle
/// The consumer starts its background work (group membership, heartbeats, fetching,
/// auto-commit) on the first `subscribe`, `assign`, iteration or `run()`. It is a
/// swift-service-lifecycle `Service`: `run()` returns after a graceful shutdown, having
/// committed (with auto-commit) and left the group. Without a service group, call ``close()``;
/// leaving the `for await` loop early (break, throw) closes the consumer as well, so its
/// partitions go to other members at once instead of after a session timeout.
///
/// ## Delivery semantics
/// A record is *processed* once the application asks for the next one (or closes the
/// consumer). Auto-commit and the commit before a revocation commit processed positions, so
/// a crash re-delivers at most the record being processed (at-least-once). ``commit()`` commits
/// the position after every record handed out so far, including the current one.
///
/// Iterate ``messages`` or ``batches`` from one task at a time, once per consumer.
public final class KafkaConsumer: Sendable {
    /// The settings the consumer was created with.
    public let configuration: ConsumerConfiguration
    let cluster: KafkaCluster
    let logger: Logger
    let listener: (any ConsumerRebalanceListener)?
    let state: Mutex<ConsumerState>
    let assignors: [any ConsumerPartitionAssignor]
    let rebalanceProtocol: RebalanceProtocol
    let metrics: ConsumerMetrics
    /// The group coordinator connection (group mode).
    let coordinator = CoordinatorLink()

    /// Records arrived, an error is pending, or the consumer closes.
    let dataSignal = AsyncSignal()
    /// Fetchers: assignment, positions, pause/resume, prefetch room.
    let fetchSignal = AsyncSignal()
    /// The group task: rejoin needed, subscription changed, closing.
    let groupSignal = AsyncSignal()
    /// The application finished a record of a partition being revoked.
    let progressSignal = AsyncSignal()
    /// Closing was requested.
    let stopSignal = AsyncSignal()

    /// - Parameters:
    ///   - rebalanceListener: called when partitions are assigned, revoked or lost.
    public convenience init(
        configuration: ConsumerConfiguration,
        rebalanceListener: (any ConsumerRebalanceListener)? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "brook.consumer")
    ) throws {
        try self.init(
            configuration: configuration, rebalanceListener: rebalanceListener, eventLoopGroup: eventLoopGroup, logger: logger,
            metricsFactory: MetricsSystem.factory)
    }

    init(
        configuration: ConsumerConfiguration,
        rebalanceListener: (any ConsumerRebalanceListener)?,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        metricsFactory: any MetricsFactory
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        var logger = logger
        if let g = configuration.groupId { logger[metadataKey: BrookLogKey.group] = "\(g)" }
        self.logger = logger
        self.cluster = KafkaCluster(config: configuration.client, eventLoopGroup: eventLoopGroup, logger: logger)
        self.listener = rebalanceListener
        self.assignors = configuration.group.assignors.map(\.assignor)
        self.rebalanceProtocol = assignors.allSatisfy { $0.rebalanceProtocol == .cooperative } ? .cooperative : .eager
        self.metrics = ConsumerMetrics(group: configuration.groupId, enabled: configuration.metrics.enabled, factory: metricsFactory)
        var s = ConsumerState()
        s.maxPrefetchHint = configuration.fetch.maxPrefetchBytes
        s.group = GroupMembershipStateMachine(
            configuration: .init(
                groupId: configuration.groupId ?? "", groupInstanceId: configuration.group.groupInstanceId,
                rebalanceProtocol: rebalanceProtocol, defaultProtocolName: assignors.first?.name ?? "",
                retryBackoff: configuration.client.retryBackoff))
        self.state = Mutex(s)
    }

    // MARK: - subscription and assignment

    /// Joins the group (``ConsumerConfiguration/groupId``) and consumes the partitions the
    /// group assigns of `topics`. Calling it again changes the subscription (a rebalance).
    public func subscribe(topics: [String]) throws {
        guard configuration.groupId != nil else { throw KafkaConsumerError.noGroup }
        guard !topics.isEmpty else { throw KafkaConsumerError.invalidConfiguration("subscribe to at least one topic") }
        try state.withLock { s in
            guard s.lifecycle == .idle || s.lifecycle == .running else { throw KafkaConsumerError.closed }
            if s.manual { throw KafkaConsumerError.invalidConfiguration("partitions were assigned manually; subscribe and assign cannot be mixed") }
            let wanted = Set(topics)
            if s.subscription != wanted {
                s.subscription = wanted
                s.group.requestRejoin("subscription changed to \(topics.sorted())")
            }
        }
        startIfNeeded()
        groupSignal.signal()
    }

    /// Consumes exactly these partitions, without group membership. With a ``ConsumerConfiguration/groupId``
    /// positions start from the group's committed offsets and commits go to that group;
    /// without, from the reset policy. Replaces any previous manual assignment.
    public func assign(_ partitions: [TopicPartition]) throws {
        let hasGroup = configuration.groupId != nil
        let policy = configuration.offsets.autoOffsetReset
        try state.withLock { s in
            guard s.lifecycle == .idle || s.lifecycle == .running else { throw KafkaConsumerError.closed }
            if s.subscription != nil { throw KafkaConsumerError.invalidConfiguration("already subscribed; subscribe and assign cannot be mixed") }
            s.manual = true
            let wanted = Set(partitions)
            s.remove(Set(s.partitions.keys).subtracting(wanted))
            s.add(partitions, need: hasGroup ? .committed : .reset(policy))
        }
        startIfNeeded()
        fetchSignal.signal()
        dataSignal.signal()
    }

    /// The subscribed topics (empty without ``subscribe(topics:)``).
    public func subscription() -> Set<String> {
        state.withLock { $0.subscription ?? [] }
    }

    /// The partitions currently assigned.
    public func assignment() -> Set<TopicPartition> {
        state.withLock { Set($0.partitions.keys) }
    }

    /// The member id and generation in the group (empty id and -1 outside a generation).
    public func groupMembership() -> (memberId: String, generationId: Int32) {
        state.withLock { ($0.group.memberId, $0.group.generation) }
    }

    // MARK: - positions

    /// The next offset the application will receive from `partition` (nil until known).
    public func position(_ partition: TopicPartition) -> Int64? {
        state.withLock { $0.partitions[partition]?.position }
    }

    /// Moves the position of `partition`: the next record handed out is the one at `offset`.
    /// Records already buffered for it are dropped.
    public func seek(_ partition: TopicPartition, to offset: Int64) throws {
        try seek(to: [partition: offset])
    }

    /// Moves several positions at once (see ``seek(_:to:)``).
    public func seek(to offsets: [TopicPartition: Int64]) throws {
        try state.withLock { s in
            for tp in offsets.keys where s.partitions[tp] == nil { throw KafkaConsumerError.notAssigned(tp) }
            for (tp, o) in offsets { try s.seek(tp, to: o) }
        }
        fetchSignal.signal()
        dataSignal.signal()
    }

    /// Moves the positions to the oldest records still in the log.
    public func seekToBeginning(_ partitions: [TopicPartition]) throws {
        try reset(partitions, .earliest)
    }

    /// Moves the positions after the newest records.
    public func seekToEnd(_ partitions: [TopicPartition]) throws {
        try reset(partitions, .latest)
    }

    private func reset(_ partitions: [TopicPartition], _ policy: AutoOffsetReset) throws {
        try state.withLock { s in
            for tp in partitions where s.partitions[tp] == nil { throw KafkaConsumerError.notAssigned(tp) }
            for tp in partitions { try s.reset(tp, policy) }
        }
        fetchSignal.signal()
    }

    /// Stops handing out and fetching records of these partitions (they stay assigned).
    public func pause(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions { s.partitions[tp]?.paused = true }
        }
    }

    /// Resumes paused partitions.
    public func resume(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions { s.partitions[tp]?.paused = false }
        }
        fetchSignal.signal()
        dataSignal.signal()
    }

    /// The paused partitions.
    public func paused() -> Set<TopicPartition> {
        state.withLock { s in Set(s.partitions.filter { $0.value.paused }.keys) }
    }

    // MARK: - lag

    /// Per assigned partition: position, high watermark, records behind and time behind.
    public func lag() -> [TopicPartition: PartitionLag] {
        state.withLock { $0.lag() }
    }

    // MARK: - records

    /// The records, one by one, in offset order within each partition.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(consumer: self) }

    /// The records grouped per partition as fetched (each element holds consecutive records of
    /// one partition), for applications that process in bulk.
    public var batches: KafkaConsumerBatches { KafkaConsumerBatches(consumer: self) }

    enum Step {
        case record(ConsumerRecord)
        case batch(ConsumerRecordBatch)
        case error(any Error)
        case end
        case wait
    }

    enum Poll<T> {
        case value(T)
        case end
        case empty
    }

    /// One synchronous attempt: what the application gets now, if anything. The per-record
    /// path stays out of async calls (each costs task-allocator frames and a TLS lookup).
    @inline(__always)
    func poll<T: Sendable>(_ take: (inout ConsumerState) -> (T?, wake: Bool)) throws -> Poll<T> {
        let (value, error, end, revoking, wake, start) = state.withLock { s -> (T?, (any Error)?, Bool, Bool, Bool, Bool) in
            let start = s.lifecycle == .idle
            let revoking = s.completeInFlight()
            if !s.errors.isEmpty { return (nil, s.errors.removeFirst(), false, revoking, false, start) }
            guard s.isDelivering else { return (nil, nil, true, revoking, false, start) }
            let (v, wake) = take(&s)
            return (v, nil, false, revoking, wake, start)
        }
        if start { startIfNeeded() }
        if revoking { progressSignal.signal() }
        if wake { fetchSignal.signal() }
        if let error { throw error }
        if end { return .end }
        if let value { return .value(value) }
        return .empty
    }

    func next<T: Sendable>(
        isolation actor: isolated (any Actor)? = #isolation, _ take: (inout ConsumerState) -> (T?, wake: Bool)
    ) async throws -> T? {
        // The generation to wait on, read before the last check for records (no lost wake-ups).
        var generation: UInt64?
        while true {
            if Task.isCancelled { return nil }
            switch try poll(take) {
            case .value(let v): return v
            case .end: return nil
            case .empty: break
            }
            if let g = generation {
                await dataSignal.wait(since: g)
                generation = nil
            } else {
                generation = dataSignal.generation
            }
        }
    }

    /// A prefetched record, if there is one now (nil also when the consumer ended: the
    /// iterator's slow path, `waitRecord`, tells the two apart).
    @usableFromInline
    func pollRecord() throws -> ConsumerRecord? {
        if case .value(let r) = try poll({ $0.takeRecord() }) { return r }
        return nil
    }

    /// A prefetched batch, if there is one now (see `pollRecord`).
    @usableFromInline
    func pollBatch() throws -> ConsumerRecordBatch? {
        if case .value(let b) = try poll({ $0.takeBatch() }) { return b }
        return nil
    }

    /// The record iterator's slow path: checks for cancellation, takes a prefetched record in
    /// the caller's isolation, and otherwise waits for one.
    @usableFromInline
    func waitRecord(isolation actor: isolated (any Actor)?) async throws -> ConsumerRecord? {
        try await next(isolation: actor) { $0.takeRecord() }
    }

    /// The batch iterator's slow path (see `waitRecord`).
    @usableFromInline
    func waitBatch(isolation actor: isolated (any Actor)?) async throws -> ConsumerRecordBatch? {
        try await next(isolation: actor) { $0.takeBatch() }
    }

    /// The application stopped iterating: what it received counts as processed, and the
    /// consumer closes (commit, LeaveGroup).
    func iterationEnded() {
        let close = state.withLock { s -> Bool in
            _ = s.completeInFlight()
            return s.lifecycle == .running || s.lifecycle == .idle
        }
        progressSignal.signal()
        if close {
            Task { await self.close() }
        }
    }

    // MARK: - lifecycle

    var isRunning: Bool { state.withLock { $0.lifecycle == .running } }

    func startIfNeeded() {
        state.withLock { s in
            guard s.lifecycle == .idle else { return }
            s.lifecycle = .running
            s.engine = Task { await self.runEngine() }
        }
    }

    /// Stops consuming: commits processed positions (with auto-commit), calls the revoke
    /// listener, leaves the group (static members stay until their session expires, so that a
    /// restart keeps their partitions), and ends the record sequences. Idempotent; returns once
    /// done.
    ///
    /// The record the application is processing when it calls `close` counts as processed.
    /// Do not call it from a rebalance listener.
    public func close() async {
        await shutdown(waitForInFlight: false)
    }

    func shutdown(waitForInFlight: Bool) async {
        let (engine, cluster) = state.withLock { s -> (Task<Void, Never>?, KafkaCluster?) in
            switch s.lifecycle {
            case .idle:
                s.lifecycle = .closed
                return (nil, self.cluster)
            case .running:
                s.lifecycle = .closing
                s.waitForInFlightOnClose = waitForInFlight
                if !waitForInFlight { _ = s.completeInFlight() }
                return (s.engine, nil)
            case .closing, .closed:
                return (s.engine, nil)
            }
        }
        stopSignal.signal()
        dataSignal.signal()
        groupSignal.signal()
        fetchSignal.signal()
        progressSignal.signal()
        if let cluster { await cluster.close() }
        await engine?.value
    }

    /// The background work: fetchers, group membership, heartbeats, auto-commit, metrics —
    /// until closing, then the orderly exit.
    func runEngine() async {
        let hasGroup = configuration.groupId != nil
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runFetchManager() }
            if hasGroup {
                group.addTask { await self.runGroupLoop() }
                group.addTask { await self.runHeartbeats() }
                if self.configuration.offsets.enableAutoCommit {
                    group.addTask { await self.runAutoCommit() }
                }
            }
            if self.configuration.metrics.enabled {
                group.addTask { await self.runMetrics() }
            }
            while true {
                let g = stopSignal.generation
                if state.withLock({ $0.lifecycle != .running }) { break }
                await stopSignal.wait(since: g)
            }
            group.cancelAll()
        }
        await finishShutdown()
    }

    private func finishShutdown() async {
        let wait = state.withLock { $0.waitForInFlightOnClose }
        if wait {
            let deadline = ContinuousClock.now + configuration.client.requestTimeout
            while ContinuousClock.now < deadline {
                let g = progressSignal.generation
                if state.withLock({ $0.inFlight == nil }) { break }
                await progressSignal.wait(since: g, timeout: deadline - .now)
            }
        }
        state.withLock { _ = $0.completeInFlight() }
        await leaveGroupOnClose()
        state.withLock { s in
            s.lifecycle = .closed
            s.chunks.removeAll()
            s.bufferedBytes = 0
            s.partitions.removeAll()
            s.group.ended()
        }
        coordinator.forget()
        metrics.removeAll()
        await cluster.close()
        dataSignal.signal()
        progressSignal.signal()
    }
}

// MARK: - Service

extension KafkaConsumer: Service {
    /// Runs the consumer until a graceful shutdown (or cancellation), then commits and leaves
    /// the group. Throws the consumer's fatal error, if any (e.g. a fenced static member).
    public func run() async throws {
        startIfNeeded()
        guard let engine = state.withLock({ $0.engine }) else { return }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await engine.value
            } onGracefulShutdown: {
                Task { await self.shutdown(waitForInFlight: true) }
            }
        } onCancel: {
            Task { await self.shutdown(waitForInFlight: false) }
        }
        if let fatal = state.withLock({ $0.fatal }) { throw fatal }
    }
}

// MARK: - sequences

/// The consumer's records, one at a time (see ``KafkaConsumer/messages``). Ending the iteration
/// closes the consumer.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    /// Starts the iteration (and the consumer's background work, if not yet running).
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(box: IterationBox(consumer))
    }

    /// Hands out records in offset order per partition; dropping it closes the consumer.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let box: IterationBox
        @usableFromInline var cadence = CancellationCadence()

        init(box: IterationBox) { self.box = box }

        /// The next record, waiting for one if none is prefetched; nil once the consumer closed.
        /// Asking for it marks the previous record as processed.
        @inlinable
        public mutating func next() async throws -> ConsumerRecord? {
            try await next(isolation: nil)
        }

        /// What `for try await` calls. A prefetched record is polled synchronously, in code
        /// inlined into the caller: per record, an async call (task-allocator frame, executor
        /// check, TLS lookups) cost more than taking it.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ConsumerRecord? {
            if cadence.allowsFastPath(), let r = try box.consumer.pollRecord() { return r }
            return try await box.consumer.waitRecord(isolation: actor)
        }
    }
}

/// The consumer's records in per-partition batches (see ``KafkaConsumer/batches``). Ending the
/// iteration closes the consumer.
public struct KafkaConsumerBatches: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecordBatch
    let consumer: KafkaConsumer

    /// Starts the iteration (and the consumer's background work, if not yet running).
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(box: IterationBox(consumer))
    }

    /// Hands out one partition's prefetched records at a time; dropping it closes the consumer.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let box: IterationBox
        @usableFromInline var cadence = CancellationCadence()

        init(box: IterationBox) { self.box = box }

        /// The next batch, waiting for one if none is prefetched; nil once the consumer closed.
        /// Asking for it marks the previous batch as processed.
        @inlinable
        public mutating func next() async throws -> ConsumerRecordBatch? {
            try await next(isolation: nil)
        }

        /// What `for try await` calls: a prefetched batch is polled synchronously, as by the
        /// record iterator.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ConsumerRecordBatch? {
            if cadence.allowsFastPath(), let b = try box.consumer.pollBatch() { return b }
            return try await box.consumer.waitBatch(isolation: actor)
        }
    }
}

/// How often an iterator's inlined fast path steps aside for its slow path, which checks for
/// cancellation: every 64th call (a check per record cost a TLS lookup).
@usableFromInline
struct CancellationCadence {
    @usableFromInline var calls: UInt8 = 0

    @inlinable init() {}

    /// Whether this call may take the fast path.
    @inlinable
    mutating func allowsFastPath() -> Bool {
        calls &+= 1
        return calls & 63 != 0
    }
}

/// Notices when an iterator is dropped (the loop ended or was left).
@usableFromInline
final class IterationBox: Sendable {
    @usableFromInline let consumer: KafkaConsumer
    init(_ consumer: KafkaConsumer) { self.consumer = consumer }
    deinit { consumer.iterationEnded() }
}
