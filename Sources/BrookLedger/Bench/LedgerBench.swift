import Brook
import BrookPipeline
import Foundation
import Logging
import PostgresNIO

/// Stream vs poller on the same database and the same events (`brook ledger bench`).
///
/// Each side gets a fresh scratch database of the same kind (SQLite: a new file next to the
/// given path; PostgreSQL: a new database on the same server), so neither sees the other's
/// rows. Loading is not timed on either side: the poller's queue is filled first and the topic
/// is produced first; the clock runs from the first claim or apply to the last commit.
public enum LedgerBench {
    public struct Configuration: Sendable {
        public var events = 50_000
        public var accounts = 5_000
        public var seed: UInt64 = 1
        public var skew: AccountSkew = .uniform
        public var pollers = 4
        public var pollerBatch = 500
        /// Ledger workers (pipelines in this process, one group).
        public var workers = 1
        public var partitions: Int32 = 16
        /// Seconds of paced load at half the measured stream rate, for latency (0: skip).
        public var latencySeconds = 10
        public init() {}
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var events: Int
        public var streamPerSecond: Double
        public var pollerPerSecond: Double
        public var ratio: Double { pollerPerSecond > 0 ? streamPerSecond / pollerPerSecond : 0 }
        public var latencyRate: Double = 0
        public var latencyP50Ms: Int64?
        public var latencyP99Ms: Int64?

        public var description: String {
            var s = String(format: "stream: %.0f events/s | poller: %.0f events/s | stream/poller: %.1fx", streamPerSecond, pollerPerSecond, ratio)
            if let p50 = latencyP50Ms, let p99 = latencyP99Ms {
                s += String(format: " | produce→commit at %.0f events/s: p50 %lld ms, p99 %lld ms", latencyRate, p50, p99)
            }
            return s
        }
    }

    public static func run(database: LedgerDatabase, client: ClientConfiguration, configuration c: Configuration,
                           logger: Logger = Logger(label: "brook.ledger.bench")) async throws -> Result {
        let records = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: c.accounts, events: c.events, seed: c.seed, skew: c.skew)))

        // The poller.
        let pollerDB = try await scratch(database, "poller")
        var pollers: [any LedgerPoller] = []
        for _ in 0..<max(c.pollers, 1) { pollers.append(try await pollerDB.openPoller()) }
        for chunk in stride(from: 0, to: records.count, by: 5000) {
            try await pollers[0].enqueue(records[chunk..<min(chunk + 5000, records.count)].map(\.pendingEvent))
        }
        let t0 = ContinuousClock.now
        let claimed = try await PollerRunner.drain(pollers, batchSize: c.pollerBatch)
        let pollerSeconds = (ContinuousClock.now - t0).seconds
        for p in pollers { try await p.close() }
        logger.info("poller done", metadata: ["events": "\(claimed)", "seconds": "\(pollerSeconds)"])

        // The stream.
        let streamDB = try await scratch(database, "stream")
        let store = try await streamDB.openStore()
        let sink = TimingSink(store.asSink)
        let run = UUID().uuidString.prefix(8)
        let topic = "bench-trades-\(run)"
        let admin = KafkaAdmin(config: client, logger: logger)
        try await admin.createTopics([.init(name: topic, partitions: c.partitions)])
        try await produce(records, topic: topic, client: client, rate: 0, logger: logger)
        var workers: [LedgerWorker] = []
        for i in 0..<max(c.workers, 1) {
            var wc = LedgerWorker.Configuration(client: client)
            wc.topic = topic
            wc.group = "bench-\(run)"
            wc.instanceId = "bench-\(run)-\(i)"
            workers.append(LedgerWorker(configuration: wc, sink: sink, store: store, logger: logger))
        }
        let running = workers.map { w in Task { try await w.run() } }
        var result = Result(events: records.count, streamPerSecond: 0, pollerPerSecond: Double(claimed) / max(pollerSeconds, 1e-9))
        do {
            try await waitForEnd(topic: topic, group: "bench-\(run)", store: store, admin: admin)
            let (n, secs) = sink.throughput
            result.streamPerSecond = Double(n) / max(secs, 1e-9)

            if c.latencySeconds > 0 {
                sink.reset()
                result.latencyRate = result.streamPerSecond / 2
                let more = Array(LedgerGenerator(LedgerGeneratorConfig(
                    accounts: c.accounts, events: Int(result.latencyRate * Double(c.latencySeconds)), seed: c.seed &+ 1, skew: c.skew)))
                try await produce(more, topic: topic, client: client, rate: result.latencyRate, logger: logger)
                try await waitForEnd(topic: topic, group: "bench-\(run)", store: store, admin: admin)
                result.latencyP50Ms = sink.latency(quantile: 0.5)
                result.latencyP99Ms = sink.latency(quantile: 0.99)
            }
        } catch {
            for w in workers { w.pipeline.stop() }
            for t in running { _ = try? await t.value }
            throw error
        }
        for w in workers { w.pipeline.stop() }
        for t in running { _ = try? await t.value }
        try? await admin.deleteTopics([topic, topic + ".dlt", topic + ".quarantine"])
        await admin.close()
        try await store.close()
        return result
    }

    /// Produces `records` paced at `rate`/s (0: as fast as acknowledgements allow); all acknowledged on return.
    public static func produce(_ records: [GeneratedRecord], topic: String, client: ClientConfiguration, rate: Double, logger: Logger) async throws {
        let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client), logger: logger)
        let clock = ContinuousClock()
        let start = clock.now
        var pending: [Task<Void, any Error>] = []
        for (i, r) in records.enumerated() {
            if rate > 0 {
                let due = start + .seconds(Double(i) / rate)
                if due > clock.now { try await Task.sleep(until: due, clock: clock) }
            }
            // A fresh timestamp per record: latency is measured from here.
            let record = ProducerRecord(topic: topic, key: Array(r.key.utf8), value: r.value, timestamp: Int64(Date().timeIntervalSince1970 * 1000))
            pending.append(Task { _ = try await producer.send(record) })
            if pending.count >= 5000 {
                for t in pending { try await t.value }
                pending.removeAll(keepingCapacity: true)
            }
        }
        for t in pending { try await t.value }
        await producer.close()
    }

    static func waitForEnd(topic: String, group: String, store: any LedgerStore, admin: KafkaAdmin, timeout: Duration = .seconds(600)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let ends = try await admin.listOffsets(topic: topic, spec: .latest)
            let stored = try await store.storedOffsets(group: group, partitions: ends.keys.map { TopicPartition(topic: topic, partition: $0) })
            if ends.allSatisfy({ $0.value == 0 || (stored[TopicPartition(topic: topic, partition: $0.key)] ?? 0) >= $0.value }) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LedgerBenchError(description: "the workers did not reach the end of \(topic) within \(timeout)")
    }

    /// A fresh, empty database of the same kind as `db`.
    static func scratch(_ db: LedgerDatabase, _ name: String) async throws -> LedgerDatabase {
        switch db {
        case .sqlite(let path):
            let p = "\(path).\(name)"
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + suffix) }
            return .sqlite(path: p)
        case .postgres(let config):
            let dbName = "brook_bench_\(name)_\(UUID().uuidString.prefix(8).lowercased())"
            let pg = PostgresClient(configuration: config)
            try await withThrowingTaskGroup(of: Void.self) { g in
                g.addTask { await pg.run() }
                try await pg.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(dbName)"))
                g.cancelAll()
            }
            var scratch = config
            scratch.database = dbName
            return .postgres(scratch)
        }
    }
}

public struct LedgerBenchError: Error, CustomStringConvertible {
    public var description: String
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
