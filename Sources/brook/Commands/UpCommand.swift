import ArgumentParser
import Brook
import BrookBroker
import BrookLedger
import BrookOps
import BrookPipeline
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `brook up`: the whole balance-update system on one machine — the embedded broker, topics from
/// brook.yaml, a trade generator, ledger workers on SQLite, a status page with /metrics, and a
/// live summary line. Ctrl-C stops cleanly; running it again resumes where it stopped.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run Brook locally: broker, topics, trade generator, ledger workers on SQLite, status page.",
        discussion: """
            Everything lives under --dir (./.brook): the broker's log in data/, the ledger in \
            ledger.sqlite, the generator's position in generator.json. Stop with Ctrl-C and start \
            again: nothing acknowledged is lost and nothing is applied twice (check with \
            `brook ledger verify --db sqlite:.brook/ledger.sqlite`).
            """)

    @Option(help: "Address the broker listens on for Kafka clients.") var listen: String = "127.0.0.1:9092"
    @Option(help: "Where Brook keeps the broker's data, the ledger database and the generator position.") var dir: String = "./.brook"
    @Option(help: "Status page and Prometheus /metrics address.") var http: String = "127.0.0.1:9644"
    @Option(help: "Broker durability: fsync (acknowledge after fsync) or os (after the page cache).") var flush: FlushPolicy = .fsync
    @Option(name: .customLong("config"), help: "Topics-as-code file applied at start.") var topicsFile: String = "brook.yaml"
    @Option(help: "Trade events generated per second (0: no generator).") var rate: Double = 200
    @Option(help: "Accounts the generator trades for.") var accounts: Int = 1000
    @Option(name: .customLong("poison-rate"), help: "Fraction of generated records that are poison (they go to the DLT).") var poisonRate: Double = 0.001
    @Option(help: "Ledger workers (one consumer group, static members).") var workers: Int = 2
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(name: .customLong("run-for"), help: "Stop after this many seconds (0: until Ctrl-C).") var runFor: Int = 0
    @Option(name: .customLong("log-level"), help: "Log level on stderr: trace, debug, info, notice, warning, error.") var logLevel: String = "warning"

    func run() async throws {
        Bootstrap.run(logLevel: Logger.Level(rawValue: logLevel) ?? .warning)
        let logger = Logger(label: "brook.up")
        let root = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)

        // The broker first: everything else is its client.
        let (host, port) = try parseHostPort(listen, defaultPort: 9092)
        // The broker runs in its own service group: it starts first and stops last, after every
        // client of it. A port in use fails here with the bind error.
        let embedded = try await EmbeddedBroker.start(.standard, dataDirectory: root.appendingPathComponent("data"), logger: logger) {
            $0.host = host
            $0.port = port
            $0.flushPolicy = flush
        }
        let boundPort = embedded.port
        let client = ClientConfiguration(bootstrapServers: [BrokerAddress(host: host, port: boundPort)])

        do {
            try await apply(topicsFile, client: client, logger: logger)
            let store = try await SQLiteLedgerStore.open(path: root.appendingPathComponent("ledger.sqlite").path)
            var ledgerWorkers: [LedgerWorker] = []
            for i in 0..<max(workers, 1) {
                var c = LedgerWorker.Configuration(client: client)
                c.instanceId = "brook-up-\(i)"
                c.relayOutbox = i == 0
                var l = logger
                l[metadataKey: "worker"] = "\(i)"
                ledgerWorkers.append(LedgerWorker(configuration: c, store: store, logger: l))
            }
            let generator = GeneratorService(
                client: client, topic: "trades", rate: rate, positionFile: root.appendingPathComponent("generator.json"),
                config: LedgerGeneratorConfig(accounts: accounts, events: Int.max / 4, seed: seed, poisonRate: poisonRate), logger: logger)
            let (hh, hp) = try parseHostPort(http, defaultPort: 9644)
            let workerList = ledgerWorkers
            let status = MetricsServer(host: hh, port: hp, registry: Bootstrap.registry, logger: logger) {
                StatusPage.html(
                    title: "Brook — balance updates", snapshots: workerList.map { $0.snapshot() },
                    lines: ["Broker: \(host):\(boundPort) (flush: \(flush))", "Generator: \(generator.produced) events produced, target \(Int(rate))/s"])
            }
            let summary = SummaryService(workers: ledgerWorkers, generator: generator)
            // Shutdown runs in reverse: summary, generator, workers (commit, leave), status page.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: status)]
            services += ledgerWorkers.map { .init(service: $0) }
            if rate > 0 { services.append(.init(service: generator)) }
            services.append(.init(service: summary))
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            say("brook up: broker on \(host):\(boundPort), status and /metrics on http://\(hh):\(hp)/ — Ctrl-C to stop\n")
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                if runFor > 0 {
                    tasks.addTask {
                        try await Task.sleep(for: .seconds(runFor))
                        await group.triggerGracefulShutdown()
                    }
                }
                try await tasks.next()
                tasks.cancelAll()
            }
            try await store.close()
            say("\nbrook up: stopped cleanly (\(generator.produced) events produced this run)\n")
        } catch {
            await embedded.stop(removeData: false)
            throw error
        }
        await embedded.stop(removeData: false)
    }

    private func apply(_ path: String, client: ClientConfiguration, logger: Logger) async throws {
        let file = try TopicsFile.load(path: path)
        let admin = KafkaAdmin(config: client, logger: logger)
        defer { Task { await admin.close() } }
        let applier = TopicApplier(admin: admin, logger: logger)
        let plan = try await applier.plan(file)
        try await applier.apply(plan)
        if !plan.isEmpty { say("brook up: applied \(plan.changes.count) topic change(s) from \(path)\n") }
    }
}

/// Produces generated trade events at a steady rate and remembers how far it got, so a restart
/// continues the same deterministic stream instead of repeating it.
final class GeneratorService: Service, Sendable {
    let client: ClientConfiguration
    let topic: String
    let rate: Double
    let positionFile: URL
    let config: LedgerGeneratorConfig
    let logger: Logger
    private let count = Mutex<Int>(0)

    init(client: ClientConfiguration, topic: String, rate: Double, positionFile: URL, config: LedgerGeneratorConfig, logger: Logger) {
        self.client = client
        self.topic = topic
        self.rate = rate
        self.positionFile = positionFile
        self.config = config
        self.logger = logger
    }

    /// Events produced (and acknowledged) in this run.
    var produced: Int { count.withLock { $0 } }

    func run() async throws {
        let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client), logger: logger)
        do {
            try await cancelWhenGracefulShutdown { [self] in try await produce(producer) }
        } catch is CancellationError {
        } catch {
            logger.error("generator stopped", metadata: ["error": "\(error)"])
            await producer.close()
            throw error
        }
        await producer.close()
    }

    private func produce(_ producer: KafkaProducer) async throws {
        do {
            let start = (try? JSONDecoder().decode(Position.self, from: Data(contentsOf: positionFile)).next) ?? 0
            var generator = LedgerGenerator(config)
            for _ in 0..<start { _ = generator.next() }
            var next = start
            let clock = ContinuousClock()
            let began = clock.now
            // One chunk a tick: produce, wait for every acknowledgement, then record the position.
            let chunk = max(1, Int(rate / 10))
            var sentThisRun = 0
            while !Task.isCancelled {
                var tasks: [Task<Void, any Error>] = []
                for _ in 0..<chunk {
                    guard let r = generator.next() else { break }
                    let record = ProducerRecord(topic: topic, key: Array(r.key.utf8), value: r.value)
                    tasks.append(Task { _ = try await producer.send(record) })
                }
                for t in tasks { try await t.value }
                next += tasks.count
                sentThisRun += tasks.count
                count.withLock { $0 = sentThisRun }
                try save(next)
                let due = began + .seconds(Double(sentThisRun) / rate)
                if due > clock.now { try await Task.sleep(until: due, clock: clock) }
            }
        }
    }

    private struct Position: Codable { var next: Int }

    private func save(_ next: Int) throws {
        let tmp = positionFile.appendingPathExtension("tmp")
        try JSONEncoder().encode(Position(next: next)).write(to: tmp)
        // rename(2) replaces atomically, whether or not the file exists yet.
        guard rename(tmp.path, positionFile.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: positionFile.path])
        }
    }
}

/// Prints one live line a second: events/s applied, lag in records and seconds, DLT counts.
final class SummaryService: Service, Sendable {
    let workers: [LedgerWorker]
    let generator: GeneratorService

    init(workers: [LedgerWorker], generator: GeneratorService) {
        self.workers = workers
        self.generator = generator
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var last = 0 as Int64
            var lastTime = ContinuousClock.now
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let snaps = self.workers.map { $0.snapshot() }
                let processed = snaps.reduce(0) { $0 + $1.processed }
                let now = ContinuousClock.now
                let rate = Double(processed - last) / (now - lastTime).seconds
                last = processed
                lastTime = now
                let lag = snaps.reduce(0) { $0 + $1.lagRecords }
                let lagSeconds = snaps.map(\.lagSeconds).max() ?? 0
                let dlt = snaps.reduce(0) { $0 + $1.deadLettered }
                let parked = snaps.reduce(0) { $0 + $1.parked }
                let line = String(
                    format: "\r%7.0f events/s applied | produced %d | lag %lld records, %.1f s | DLT %lld (+%lld parked) | processed %lld   ",
                    rate, self.generator.produced, lag, lagSeconds, dlt, parked, processed)
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        }
    }
}

/// Unbuffered stdout, so lines show even when stdout is a file or pipe.
func say(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
