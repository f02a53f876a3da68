import BrookProtocol
import Brook
import BrookPipeline
import CoreMetrics
import Logging
import ServiceLifecycle

/// One ledger worker: a ``Pipeline`` that applies trade events to a ``LedgerStore`` with
/// exactly-once effects (offsets stored with the balances), plus the relay that publishes
/// transfer credits from the store's outbox to the topic. Start several (in one process or
/// many) with the same group to share the partitions.
public final class LedgerWorker: Service, Sendable {
    public struct Configuration: Sendable {
        public var client: ClientConfiguration
        public var topic: String = "trades"
        public var group: String = "brook-ledger"
        /// Static membership: a restarted worker with the same id gets its partitions back
        /// without a rebalance of the others.
        public var instanceId: String?
        /// Events per database transaction (500).
        public var maxBatchRecords = 500
        /// Publish the store's outbox of transfer credits (true). Workers sharing one store in a
        /// process need only one relay; a credit published twice is harmless (fixed event id) but
        /// wasted work.
        public var relayOutbox = true
        /// How often the outbox of transfer credits is published (100 ms).
        public var outboxInterval: Duration = .milliseconds(100)
        /// Currencies this deployment books (nil: every one of ``LedgerCurrencies/known``). An
        /// event in another currency is invalid here: it is dead-lettered and its account
        /// quarantined until a deployment that books the currency replays it.
        public var currencies: Set<String>?
        /// Last changes to the pipeline's configuration (consumer fetch limits, batch and
        /// in-flight bounds): `brook loadtest sweep` varies them.
        public var tunePipeline: (@Sendable (inout PipelineConfiguration) -> Void)?
        public init(client: ClientConfiguration) { self.client = client }
    }

    public let configuration: Configuration
    public let pipeline: Pipeline<LedgerEvent>
    let store: any LedgerStore
    let logger: Logger
    private let counter: LedgerCounter

    public convenience init(configuration: Configuration, store: some LedgerStore, logger: Logger = Logger(label: "brook.ledger"),
                            metricsFactory: (any MetricsFactory)? = nil) {
        self.init(configuration: configuration, sink: store, store: store, logger: logger, metricsFactory: metricsFactory)
    }

    /// With a sink that wraps `store` (benchmarks time each commit this way).
    public init(configuration: Configuration, sink: some TransactionalSink<LedgerEvent>, store: any LedgerStore,
                logger: Logger = Logger(label: "brook.ledger"), metricsFactory: (any MetricsFactory)? = nil) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        var consumer = ConsumerConfiguration(client: configuration.client, groupId: configuration.group)
        consumer.group.groupInstanceId = configuration.instanceId
        consumer.offsets.autoOffsetReset = .earliest
        var pc = PipelineConfiguration(consumer: consumer, topics: [configuration.topic])
        pc.maxBatchRecords = configuration.maxBatchRecords
        configuration.tunePipeline?(&pc)
        let currencies = configuration.currencies
        let counter = LedgerCounter()
        self.counter = counter
        pipeline = Pipeline(
            configuration: pc,
            decoder: { buffer in
                let event = try LedgerEventCodec.decode(buffer, offset: -1)
                if let currencies, !currencies.contains(event.currency) {
                    throw LedgerEventError.invalid("event \(event.id): currency '\(event.currency)' is not booked here").recordError(offset: -1)
                }
                return event
            }, sink: CountingSink(inner: sink, counts: counter),
            logger: logger, metricsFactory: metricsFactory)
    }

    public func snapshot() -> PipelineSnapshot { pipeline.snapshot() }

    /// Events and transfer credits committed to the store, and credits relayed, since start.
    public func counts() -> LedgerWorkerCounts { counter.value }

    public func run() async throws {
        var pconf = ProducerConfiguration(client: configuration.client)
        pconf.linger = .milliseconds(2)
        let producer = try KafkaProducer(configuration: pconf, logger: logger)
        let relay = Task { [store, configuration, logger, counter] in
            while configuration.relayOutbox && !Task.isCancelled {
                do {
                    let n = try await store.relayOutbox(limit: 1000) { entries in
                        // Every send must be acknowledged before the outbox rows go (a lost credit
                        // is lost money). One key's credits in order; different keys concurrently.
                        let byKey = Dictionary(grouping: entries, by: \.key)
                        try await withThrowingTaskGroup(of: Void.self) { g in
                            for (_, credits) in byKey {
                                g.addTask {
                                    for e in credits {
                                        _ = try await producer.send(ProducerRecord(topic: configuration.topic, key: Array(e.key.utf8), value: e.value))
                                    }
                                }
                            }
                            try await g.waitForAll()
                        }
                    }
                    if n > 0 {
                        counter.withLock { $0.relayedCredits += Int64(n) }
                        continue
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("outbox relay failed; retrying", metadata: [BrookLogKey.error: "\(error)"])
                }
                try? await Task.sleep(for: configuration.outboxInterval)
            }
        }
        defer { relay.cancel() }
        try await pipeline.run()
        relay.cancel()
        _ = await relay.value
        await producer.close()
    }
}
