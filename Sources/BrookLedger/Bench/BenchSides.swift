import Brook
import BrookPipeline
import BrookProtocol
import Foundation
import Logging
import Synchronization

/// One architecture under load in ``LedgerBench``: a trading side that hands trades over as
/// they happen, and consumers that apply them at the same time, in the same process and
/// database, as in production.
protocol BenchSide: Sendable {
    /// Hands `records` over as one arrival: the stream produces them (not waiting for the
    /// acknowledgements, as a trading service would not); the poller INSERTs them in one
    /// transaction (a trading service's commit).
    func ingest(_ records: ArraySlice<GeneratedRecord>) async throws
    /// Waits until everything handed over is durable (the stream: acknowledged).
    func flush() async throws
    /// Events handed over but not applied yet (transfer credits included: both sides apply them).
    func backlog() async throws -> Int
    /// End-to-end latency (trade handed over → its effects committed) is recorded here as
    /// ``LedgerBench/endToEnd``.
    var histograms: LatencyHistograms { get }
    func close() async
}

/// The stream: a producer to the broker, ``LedgerWorker``s applying with exactly-once effects.
final class StreamSide: BenchSide {
    let histograms = LatencyHistograms()
    let topic: String
    let group: String
    let store: any LedgerStore
    let sink: TimingSink
    private let producer: KafkaProducer
    private let admin: KafkaAdmin
    private let workers: [LedgerWorker]
    private let running: [Task<Void, any Error>]
    private let reports: Task<Void, Never>
    /// sendAsync id → when the record was handed over (ns, ContinuousClock), for produce→ack.
    private let sent = HandOverTimes<UInt64>()

    init(database: LedgerDatabase, client: ClientConfiguration, partitions: Int32, workers n: Int, logger: Logger) async throws {
        store = try await database.openStore()
        sink = TimingSink(store.asSink)
        let run = UUID().uuidString.prefix(8)
        topic = "bench-trades-\(run)"
        group = "bench-\(run)"
        admin = KafkaAdmin(config: client, logger: logger)
        try await admin.createTopics([.init(name: topic, partitions: partitions)])
        var pc = ProducerConfiguration(client: client)
        // A trading service wants its trades out now: a short linger, batches form under load.
        pc.linger = .milliseconds(1)
        producer = try KafkaProducer(configuration: pc, logger: logger)
        let reportStream = producer.deliveryReports
        let histograms = histograms
        let sent = sent
        reports = Task {
            for await batch in reportStream.batches {
                let now = ContinuousClock.now
                let started = sent.take(batch.map(\.id))
                histograms.record(LedgerBench.produceToAck, nanoseconds: started.map { (now - $0).nanoseconds })
            }
        }
        var ws: [LedgerWorker] = []
        for i in 0..<max(n, 1) {
            var wc = LedgerWorker.Configuration(client: client)
            wc.topic = topic
            wc.group = group
            wc.instanceId = "\(group)-\(i)"
            // One relay is enough for workers sharing a store.
            wc.relayOutbox = i == 0
            ws.append(LedgerWorker(configuration: wc, sink: sink, store: store, logger: logger, metricsFactory: histograms))
        }
        workers = ws
        running = ws.map { w in Task { try await w.run() } }
    }

    func ingest(_ records: ArraySlice<GeneratedRecord>) async throws {
        for r in records {
            // The record's timestamp is the trade's time: the pipeline's record_to_applied
            // stage is then produce → commit.
            let record = ProducerRecord(topic: topic, key: Array(r.key.utf8), value: r.value, timestamp: currentTimeMillis())
            let now = ContinuousClock.now
            let id = try await producer.sendAsync(record)
            sent.put([id], at: now)
        }
    }

    func flush() async throws { await producer.flush() }

    func backlog() async throws -> Int {
        let ends = try await admin.listOffsets(topic: topic, spec: .latest)
        let tps = ends.keys.map { TopicPartition(topic: topic, partition: $0) }
        let stored = try await store.storedOffsets(group: group, partitions: tps)
        return tps.reduce(0) { n, tp in n + Int(max((ends[tp.partition] ?? 0) - (stored[tp] ?? 0), 0)) }
    }

    func close() async {
        for w in workers { w.pipeline.stop() }
        for t in running { _ = try? await t.value }
        await producer.close()
        await reports.value
        try? await admin.deleteTopics([topic, topic + ".dlt", topic + ".quarantine"])
        await admin.close()
        try? await store.close()
    }
}

/// The legacy poller: the trading side INSERTs into `pending_events` on its own connection
/// while several pollers (each its own connection; on PostgreSQL each on its own account
/// buckets) claim, apply and mark rows done.
final class PollerSide: BenchSide {
    let histograms = LatencyHistograms()
    private let inserter: any LedgerPoller
    private let pollers: [any LedgerPoller]
    private let running: [Task<Void, any Error>]
    /// event id → when it was handed over.
    private let handedOver = HandOverTimes<String>()

    init(database: LedgerDatabase, pollers n: Int, batch: Int) async throws {
        inserter = try await database.openPoller()
        var ps: [any LedgerPoller] = []
        for _ in 0..<max(n, 1) { ps.append(try await database.openPoller()) }
        pollers = ps
        let histograms = histograms
        let handedOver = handedOver
        running = ps.map { p in
            Task {
                while !Task.isCancelled {
                    let claim = try await p.claim(limit: batch)
                    if claim.rows == 0 {
                        // The best honest poller polls again soon (the classic one waits 50 ms+).
                        try await Task.sleep(for: .milliseconds(2))
                        continue
                    }
                    let now = ContinuousClock.now
                    let started = handedOver.take(claim.eventIds)
                    histograms.record(LedgerBench.endToEnd, nanoseconds: started.map { (now - $0).nanoseconds })
                }
            }
        }
    }

    func ingest(_ records: ArraySlice<GeneratedRecord>) async throws {
        let now = ContinuousClock.now
        handedOver.put(records.map(\.eventId), at: now)
        try await inserter.enqueue(records.map(\.pendingEvent))
    }

    func flush() async throws {}

    func backlog() async throws -> Int { try await inserter.pendingCount() }

    func close() async {
        for t in running { t.cancel() }
        for t in running { _ = try? await t.value }
        for p in pollers { try? await p.close() }
        try? await inserter.close()
    }
}

/// When each event was handed over, until it is seen done.
final class HandOverTimes<Key: Hashable & Sendable>: Sendable {
    private let times = Mutex<[Key: ContinuousClock.Instant]>([:])

    func put(_ keys: [Key], at t: ContinuousClock.Instant) {
        times.withLock { m in for k in keys { m[k] = t } }
    }

    /// The hand-over times of `keys` (those known), forgotten from here on.
    func take(_ keys: [Key]) -> [ContinuousClock.Instant] {
        times.withLock { m in keys.compactMap { m.removeValue(forKey: $0) } }
    }
}
