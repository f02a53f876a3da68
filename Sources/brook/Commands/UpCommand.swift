import BrookProtocol
import ArgumentParser
import Brook
import BrookBroker
import BrookLedger
import BrookOps
import BrookPipeline
import Foundation
import Logging
import NIOCore
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
            ledger.sqlite, the generator's position in generator.json, the log in brook.log. Stop \
            with Ctrl-C and start again: nothing acknowledged is lost and nothing is applied twice \
            (check with `brook ledger verify --data-dir .brook/data --db sqlite:.brook/ledger.sqlite` \
            once stopped, or without --data-dir while it runs).

            The live line: generated = events produced this run; lag = records of the topic the \
            ledger has not applied (log end minus the database's stored offsets), and the age of \
            the oldest one in flight; applied = events committed to the ledger this run \
            (rejected ones included) + transfer credits the outbox relay put on the topic; \
            dead-lettered = poison records (--poison-rate) + records parked behind a \
            quarantined key.
            """)

    @Option(help: "Address the broker listens on for Kafka clients.") var listen: String = "127.0.0.1:9092"
    @Option(help: "Where Brook keeps the broker's data, the ledger database and the generator position.") var dir: String = "./.brook"
    @Option(help: "Status page and Prometheus /metrics address.") var http: String = "127.0.0.1:9644"
    @Option(name: .customLong("lag-http"), help: "`brook lag serve` for this cluster: lag /metrics and Burrow's /v3/kafka API (off: none).")
    var lagHTTP: String = "127.0.0.1:9645"
    @Option(help: "Broker durability: fsync (acknowledge after fsync) or os (after the page cache).") var flush: FlushPolicy = .fsync
    @Option(name: .customLong("config"), help: "Topics-as-code file applied at start.") var topicsFile: String = "brook.yaml"
    @Option(help: "Trade events generated per second (0: no generator).") var rate: Double = 200
    @Option(help: "Accounts the generator trades for.") var accounts: Int = 1000
    @Option(name: .customLong("poison-rate"), help: "Fraction of generated records that are poison (they go to the DLT).") var poisonRate: Double = 0.001
    @Option(help: "Ledger workers (one consumer group, static members).") var workers: Int = 2
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(name: .customLong("run-for"), help: "Stop after this many seconds (0: until Ctrl-C).") var runFor: Int = 0
    @Option(name: .customLong("log-level"), help: "Log level of DIR/brook.log: trace, debug, info, notice, warning, error.") var logLevel: String = "warning"

    func run() async throws {
        let root = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        // The live line owns the terminal: logs go to a file.
        let logPath = (dir as NSString).appendingPathComponent("brook.log")
        try Bootstrap.run(logLevel: Logger.Level(rawValue: logLevel) ?? .warning, logFile: URL(fileURLWithPath: logPath))
        let logger = Logger(label: "brook.up")
        let (host, port) = try parseHostPort(listen, defaultPort: 9092)
        let (hh, hp) = try parseHostPort(http, defaultPort: 9644)
        say("brook up: logs in \(logPath)\n")
        logger.notice("brook up starting", metadata: [BrookLogKey.directory: "\(root.path)", BrookLogKey.listen: "\(listen)", BrookLogKey.http: "\(http)"])

        // The broker first: everything else is its client. It runs in its own service group:
        // it starts first and stops last, after every client of it.
        let embedded: EmbeddedBroker
        do {
            embedded = try await EmbeddedBroker.start(.standard, dataDirectory: root.appendingPathComponent("data"), logger: logger) {
                $0.host = host
                $0.port = port
                $0.flushPolicy = flush
            }
        } catch {
            throw Self.failure(error, address: "\(host):\(port)", option: "--listen", logger: logger)
        }
        // Everything opened from here on is closed on every way out, in reverse order.
        var store: SQLiteLedgerStore?
        var status: MetricsServer?
        var lagServer: LagHTTPServer?
        var lagAdmin: KafkaAdmin?
        do {
            let boundPort = embedded.port
            let client = ClientConfiguration(bootstrapServers: [BrokerAddress(host: host, port: boundPort)])
            try await apply(topicsFile, client: client, logger: logger)
            let opened = try await SQLiteLedgerStore.open(path: root.appendingPathComponent("ledger.sqlite").path)
            store = opened
            var ledgerWorkers: [LedgerWorker] = []
            for i in 0..<max(workers, 1) {
                var c = LedgerWorker.Configuration(client: client)
                c.instanceId = "brook-up-\(i)"
                c.relayOutbox = i == 0
                var l = logger
                l[metadataKey: "worker"] = "\(i)"
                ledgerWorkers.append(LedgerWorker(configuration: c, store: opened, logger: l))
            }
            let generator = GeneratorService(
                client: client, topic: "trades", rate: rate, positionFile: root.appendingPathComponent("generator.json"),
                config: LedgerGeneratorConfig(accounts: accounts, events: Int.max / 4, seed: seed, poisonRate: poisonRate), logger: logger)
            let workerList = ledgerWorkers
            let server = MetricsServer(host: hh, port: hp, registry: Bootstrap.registry, logger: logger) {
                StatusPage.html(
                    title: "Brook — balance updates", snapshots: workerList.map { $0.snapshot() },
                    lines: ["Broker: \(host):\(boundPort) (flush: \(flush))", "Generator: \(generator.produced) events produced, target \(Int(rate))/s"])
            }
            status = server
            // Bound before anything runs: a port in use is one clear line, not a failed group.
            do { try await server.bind() } catch {
                throw Self.failure(error, address: "\(hh):\(hp)", option: "--http", logger: logger)
            }
            // Lag of every group on the embedded cluster, evaluated as `brook lag serve` does.
            var lagServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
            if lagHTTP.lowercased() != "off" {
                let (lh, lp) = try parseHostPort(lagHTTP, defaultPort: 9645)
                let admin = KafkaAdmin(config: client, logger: logger)
                lagAdmin = admin
                let collector = LagCollector(admin: admin)
                let monitor = LagMonitorService(evaluator: LagEvaluator(cluster: "brook"), interval: .seconds(2), logger: logger) {
                    try await collector.observe()
                }
                let lag = LagHTTPServer(host: lh, port: lp, monitor: monitor, logger: logger)
                lagServer = lag
                do { try await lag.bind() } catch {
                    throw Self.failure(error, address: "\(lh):\(lp)", option: "--lag-http", logger: logger)
                }
                lagServices = [.init(service: lag), .init(service: monitor)]
            }
            let summary = SummaryService(workers: ledgerWorkers, generator: generator, store: opened, client: client, logger: logger)
            // Shutdown runs in reverse: summary, generator, workers (commit, leave), status page.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)] + lagServices
            services += ledgerWorkers.map { .init(service: $0) }
            if rate > 0 { services.append(.init(service: generator)) }
            services.append(.init(service: summary))
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            let lagLine = lagServices.isEmpty ? "" : ", lag on http://\(lagHTTP)/metrics and /v3/kafka/brook/consumer"
            say("brook up: broker on \(host):\(boundPort), status and /metrics on http://\(hh):\(hp)/\(lagLine) — Ctrl-C to stop\n")
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
            await server.close()
            await lagServer?.close()
            await lagAdmin?.close()
            try await opened.close()
            store = nil
            await embedded.stop(removeData: false)
            say("\nbrook up: stopped cleanly (\(generator.produced) events produced this run)\n")
        } catch {
            await status?.close()
            await lagServer?.close()
            await lagAdmin?.close()
            if let store { try? await store.close() }
            await embedded.stop(removeData: false)
            if error is ExitCode { throw error }
            throw Self.failure(error, address: nil, option: nil, logger: logger)
        }
    }

    /// One clear line on stderr (and in the log) for a failure of `brook up`, then exit 1. A
    /// bind failing on a taken port says which option moves it.
    static func failure(_ error: any Error, address: String?, option: String?, logger: Logger) -> ExitCode {
        let line: String
        if let address, let option, isAddressInUse(error) {
            line = "brook up: port \(address) is in use; pass \(option) HOST:PORT to use another (or stop what holds it)"
        } else {
            line = "brook up: \(error)"
        }
        logger.error("brook up failed", metadata: [BrookLogKey.error: "\(error)"])
        say("\n")
        FileHandle.standardError.write(Data((line + "\n").utf8))
        return ExitCode(1)
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
            logger.error("generator stopped", metadata: [BrookLogKey.error: "\(error)"])
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

/// Prints one live line a second (``LedgerStatusLine``): events generated, events and outbox
/// credits applied, dead letters, and the group's lag from the store's offsets.
final class SummaryService: Service, Sendable {
    let workers: [LedgerWorker]
    let generator: GeneratorService
    let store: SQLiteLedgerStore
    let client: ClientConfiguration
    let logger: Logger

    init(workers: [LedgerWorker], generator: GeneratorService, store: SQLiteLedgerStore, client: ClientConfiguration, logger: Logger) {
        self.workers = workers
        self.generator = generator
        self.store = store
        self.client = client
        self.logger = logger
    }

    func run() async throws {
        let admin = KafkaAdmin(config: client, logger: logger)
        let tty = isatty(STDOUT_FILENO) != 0
        try? await cancelWhenGracefulShutdown {
            var last = 0 as Int64
            var lastTime = ContinuousClock.now
            var lag: Int64?
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let snaps = self.workers.map { $0.snapshot() }
                let counts = self.workers.map { $0.counts() }.reduce(LedgerWorkerCounts(), +)
                let applied = counts.appliedEvents + counts.appliedCredits
                let now = ContinuousClock.now
                let rate = Double(applied - last) / (now - lastTime).seconds
                (last, lastTime) = (applied, now)
                let config = self.workers.first?.configuration
                do {
                    lag = try await GroupLag.query(topic: config?.topic ?? "trades", group: config?.group ?? "brook-ledger", admin: admin, store: self.store)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    // Keep the last figure; the log says why it is not fresh.
                    self.logger.debug("lag query failed", metadata: [BrookLogKey.error: "\(error)"])
                }
                let line = LedgerStatusLine(
                    generated: self.generator.produced, counts: counts, appliedPerSecond: rate,
                    deadLettered: snaps.reduce(0) { $0 + $1.deadLettered }, parked: snaps.reduce(0) { $0 + $1.parked },
                    lagRecords: lag, lagSeconds: snaps.map(\.lagSeconds).max() ?? 0,
                    assignedPartitions: snaps.reduce(0) { $0 + $1.partitions.count })
                // On a terminal one line rewritten in place, cut to the width (a wrapped line
                // is not rewritten by \r but scrolls); into a file or pipe, a line each.
                say(tty ? "\r\(String(line.text.prefix(max(terminalColumns() - 1, 20))))\u{1B}[K" : "\(line.text)\n")
            }
        }
        await admin.close()
    }
}

/// The width of the terminal on stdout (a large number when unknown).
func terminalColumns() -> Int {
    var size = winsize()
    guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 10_000 }
    return Int(size.ws_col)
}

/// Whether `error` is a bind that failed because the address is taken.
func isAddressInUse(_ error: any Error) -> Bool {
    if let io = error as? IOError, io.errnoCode == EADDRINUSE { return true }
    return "\(error)".contains("Address already in use") || "\(error)".contains("EADDRINUSE")
}

/// Unbuffered stdout, so lines show even when stdout is a file or pipe.
func say(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
