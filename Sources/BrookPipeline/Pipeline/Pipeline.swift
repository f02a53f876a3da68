import Brook
import BrookProtocol
import Foundation
import Logging
import Metrics
import NIOCore
import ServiceLifecycle
import Synchronization

/// A consumer framework as a swift-service-lifecycle `Service`: decode, hand bounded batches to
/// a handler (offsets committed to Kafka) or to a ``TransactionalSink`` (offsets stored with
/// the effects), in order per partition or per key, with backpressure, retries in place, a
/// dead-letter topic with per-key quarantine, metrics and graceful shutdown.
///
/// ```swift
/// var config = PipelineConfiguration(consumer: consumerConfig, topics: ["trades"])
/// let pipeline = Pipeline(configuration: config, decoder: { try Trade(json: $0) }) { batch in
///     try await apply(batch)
/// }
/// let group = ServiceGroup(services: [pipeline], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// Errors: a ``RecordError`` names the failing record of a batch. `.retryable` (and any other
/// error) is retried in place with exponential backoff, the batch handed again whole; after
/// ``PipelineConfiguration/Retry/maxAttempts``, or at once for `.nonRetryable` and undecodable
/// records, the record goes to the dead-letter topic and the batch is handed again without it.
/// A handler that keeps throwing an unnamed error is then given one record at a time, so that
/// the failing one is found. Nothing of a failed call counts as processed.
///
/// Shutdown: fetching stops, handler calls in progress finish (no new ones start, no retries),
/// the finished prefix is committed, and the consumer leaves the group.
public final class Pipeline<Value: Sendable>: Service, Sendable {
    /// Turns a record's value into a `Value` (a record without a value gets an empty buffer).
    /// Throwing makes the record poison: it goes to the DLT at once (a thrown ``RecordError``
    /// keeps its type and message, anything else becomes `DecodeError`).
    public typealias Decoder = @Sendable (ByteBuffer) throws -> Value
    public typealias BatchHandler = @Sendable ([PipelineRecord<Value>]) async throws -> Void

    enum Target: Sendable {
        case handler(BatchHandler)
        case sink(any TransactionalSink<Value>)
    }

    public let configuration: PipelineConfiguration
    let decoder: Decoder
    let target: Target
    let logger: Logger
    let metrics: PipelineMetrics
    let quarantine: Quarantine
    let state = Mutex(PipelineState<Value>())
    /// The consumer and producer of the current `run()`.
    let clients = Mutex<(consumer: KafkaConsumer, producer: KafkaProducer)?>(nil)
    /// Wakes the fetch loop: work finished (room for more) or stop requested.
    let wake: AsyncStream<Void>.Continuation
    let wakeups: AsyncStream<Void>
    /// The fetch loop of the current `run()`, cancelled by ``stop()`` (it may wait for records).
    let fetchTask = Mutex<Task<(any Error)?, Never>?>(nil)
    /// Sink mode: gathers the partitions' ready batches into shared transactions.
    let combiner: SinkCombiner<Value>?

    /// A pipeline whose handler receives batches; offsets are committed to Kafka.
    public convenience init(
        configuration: PipelineConfiguration, decoder: @escaping Decoder, logger: Logger = Logger(label: "brook.pipeline"),
        metricsFactory: (any MetricsFactory)? = nil, handler: @escaping BatchHandler
    ) {
        self.init(configuration: configuration, decoder: decoder, target: .handler(handler), logger: logger, metricsFactory: metricsFactory)
    }

    /// A pipeline writing to a transactional sink: on assignment it seeks to the sink's stored
    /// offsets; each call moves the stored offset with the effects. Needs ordering `.partition`.
    public convenience init(
        configuration: PipelineConfiguration, decoder: @escaping Decoder, sink: some TransactionalSink<Value>,
        logger: Logger = Logger(label: "brook.pipeline"), metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.init(configuration: configuration, decoder: decoder, target: .sink(sink), logger: logger, metricsFactory: metricsFactory)
    }

    init(configuration: PipelineConfiguration, decoder: @escaping Decoder, target: Target, logger: Logger, metricsFactory: (any MetricsFactory)?) {
        var config = configuration
        config.consumer.offsets.enableAutoCommit = false
        self.configuration = config
        self.decoder = decoder
        self.target = target
        var l = logger
        l[metadataKey: BrookLogKey.group] = "\(config.group)"
        self.logger = l
        self.metrics = PipelineMetrics(group: config.group, factory: metricsFactory ?? MetricsSystem.factory)
        self.quarantine = Quarantine(suffix: config.deadLetter.quarantineSuffix)
        if case .sink(let sink) = target {
            combiner = SinkCombiner(sink: sink, group: config.group, maxRecords: config.maxSinkCallRecords, metrics: metrics)
        } else {
            combiner = nil
        }
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var isSink: Bool {
        if case .sink = target { return true }
        return false
    }

    var reader: TopicReader {
        var l = logger
        l.logLevel = max(l.logLevel, .warning)
        return TopicReader(client: configuration.consumer.client, logger: l)
    }

    // MARK: - Service

    /// Runs until graceful shutdown, ``stop()`` or cancellation, then finishes the handler calls
    /// in progress, commits and leaves the group. Call it once per pipeline. Throws the
    /// consumer's fatal error (e.g. another member with the same static instance id).
    public func run() async throws {
        try configuration.validate(hasSink: isSink)
        if configuration.deadLetter.createTopics { try await createDeadLetterTopics() }
        var producerConfig = ProducerConfiguration(client: configuration.consumer.client)
        producerConfig.linger = .milliseconds(1)
        let producer = try KafkaProducer(configuration: producerConfig, logger: logger)
        let listener = RebalanceCallbacks(
            assigned: { [self] tps, consumer in await self.assigned(tps, consumer: consumer) },
            revoked: { [self] tps, consumer in await self.revoked(tps, consumer: consumer, commit: true) },
            lost: { [self] tps, consumer in await self.revoked(tps, consumer: consumer, commit: false) })
        let consumer = try KafkaConsumer(configuration: configuration.consumer, rebalanceListener: listener, logger: logger)
        clients.withLock { $0 = (consumer, producer) }
        try consumer.subscribe(topics: configuration.topics)

        let fetch = Task<(any Error)?, Never> { await self.fetchLoop(consumer) }
        let stopped = fetchTask.withLock { t in
            t = fetch
            return state.withLock { $0.stopping }
        }
        if stopped { fetch.cancel() }
        let background = Task {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { await self.commitLoop(consumer) }
                g.addTask { await self.metricsLoop(consumer) }
            }
        }
        let fatal = await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await fetch.value
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        stop()
        background.cancel()
        await background.value
        // Closing revokes every partition through the listener: it waits for the handler calls
        // in progress and commits the finished prefix; then the member leaves the group.
        await consumer.close()
        while state.withLock({ $0.workers > 0 }) { try? await Task.sleep(for: .milliseconds(10)) }
        await producer.close()
        clients.withLock { $0 = nil }
        logger.info("pipeline stopped")
        if let fatal { throw fatal }
    }

    /// Starts a graceful stop (what a service-lifecycle shutdown does); ``run()`` returns once done.
    public func stop() {
        state.withLock { $0.stopping = true }
        fetchTask.withLock { $0 }?.cancel()
        wake.yield()
    }

    private func createDeadLetterTopics() async throws {
        let admin = KafkaAdmin(config: configuration.consumer.client, logger: logger)
        defer { Task { await admin.close() } }
        for t in configuration.topics {
            var topics = [KafkaAdmin.NewTopic(name: t + configuration.deadLetter.topicSuffix, partitions: configuration.deadLetter.partitions, replicationFactor: -1)]
            if configuration.deadLetter.quarantine {
                topics.append(
                    KafkaAdmin.NewTopic(name: quarantine.topic(for: t), partitions: 1, replicationFactor: -1, configs: ["cleanup.policy": "compact"]))
            }
            for nt in topics {
                do {
                    try await admin.createTopics([nt])
                } catch let e as KafkaClientError where e.errorCode == .topicAlreadyExists {
                    continue
                }
            }
        }
    }

    // MARK: - snapshot

    /// Lag, counts and bounds now (for status pages and summary lines).
    public func snapshot() -> PipelineSnapshot {
        let lag = clients.withLock { $0?.consumer.lag() } ?? [:]
        let paused = clients.withLock { $0.map { $0.consumer.paused() } } ?? []
        let now = currentTimeMillis()
        return state.withLock { s in
            var parts: [TopicPartition: PipelineSnapshot.Partition] = [:]
            for (tp, c) in s.partitions {
                let (records, seconds) = Self.lag(c, lag[tp], listedEnd: s.listedEnds[tp], now: now)
                parts[tp] = PipelineSnapshot.Partition(lagRecords: records, lagSeconds: seconds, paused: paused.contains(tp), fenced: c.fenced)
            }
            return PipelineSnapshot(
                lagRecords: parts.values.reduce(0) { $0 + $1.lagRecords },
                lagSeconds: parts.values.map(\.lagSeconds).max() ?? 0,
                processed: s.processed, recordsPerSecond: s.recordsPerSecond, deadLettered: s.deadLettered, parked: s.parked, quarantinedKeys: quarantine.count,
                inFlightRecords: s.inFlightRecords, inFlightBytes: s.inFlightBytes, partitions: parts)
        }
    }

    /// Records between the committable offset and the high watermark, and the age of the
    /// oldest unfinished record (or, while behind with nothing accepted, of the last finished one).
    static func lag(_ c: PartitionContext, _ l: PartitionLag?, listedEnd: Int64? = nil, now: Int64) -> (Int64, Double) {
        let fetched = l?.highWatermark
        guard let hw = [fetched, listedEnd].compactMap({ $0 }).max(), let at = c.tracker.committable ?? l?.position else { return (0, 0) }
        let records = max(hw - at, 0)
        guard records > 0 else { return (0, 0) }
        guard let t = c.tracker.oldestPendingTimestamp ?? c.lastFinishedTimestamp ?? l?.lastConsumedTimestamp else { return (records, 0) }
        return (records, Double(max(now - t, 0)) / 1000)
    }

    func metricsLoop(_ consumer: KafkaConsumer) async {
        let admin = KafkaAdmin(config: configuration.consumer.client, logger: reader.logger)
        defer { Task { await admin.close() } }
        while !Task.isCancelled {
            state.withLock { $0.sampleRate(now: .now) }
            // Paused partitions do not fetch: ask for the log end so their lag keeps growing.
            let assigned = state.withLock { Set($0.partitions.keys) }
            var ends: [TopicPartition: Int64] = [:]
            for topic in Set(assigned.map(\.topic)) {
                if let offsets = try? await admin.listOffsets(topic: topic, spec: .latest) {
                    for (p, o) in offsets { ends[TopicPartition(topic: topic, partition: p)] = o }
                }
            }
            state.withLock { $0.listedEnds = ends.filter { assigned.contains($0.key) } }
            let snap = snapshot()
            for (tp, p) in snap.partitions { metrics.lag(tp, records: p.lagRecords, seconds: p.lagSeconds) }
            metrics.retain(Set(snap.partitions.keys))
            metrics.inFlightRecords.record(snap.inFlightRecords)
            metrics.inFlightBytes.record(snap.inFlightBytes)
            metrics.pausedPartitions.record(snap.partitions.values.filter(\.paused).count)
            metrics.quarantinedKeys.record(snap.quarantinedKeys)
            try? await Task.sleep(for: configuration.metricsInterval)
        }
    }
}
