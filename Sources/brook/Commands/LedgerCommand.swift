import ArgumentParser
import Brook
import BrookLedger
import BrookPipeline
import Foundation
import Logging
import ServiceLifecycle
import BrookBroker
import BrookProtocol
import NIOCore

/// `brook ledger run|generate|verify|poller|bench`: the balance-update service and its tools.
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "The balance-update service: workers, event generator, verification, the legacy poller and the benchmark.",
        subcommands: [Run.self, Generate.self, Verify.self, Poller.self, Bench.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one ledger worker (start several with the same --group to share the partitions).")
        @OptionGroup var client: ClientOptions
        @Option(help: "sqlite:PATH or postgres://USER[:PASS]@HOST[:PORT]/DB") var db: String
        @Option(help: "Consumer group.") var group: String = "brook-ledger"
        @Option(help: "Topic of trade events.") var topic: String = "trades"
        @Option(name: .customLong("instance-id"), help: "Static member id: a restart gets the same partitions back without a rebalance.")
        var instanceId: String?
        @Option(help: "Serve Prometheus /metrics and a status page on HOST:PORT.") var metrics: String?
        @Option(name: .customLong("apply-delay-ms"), help: ArgumentHelp("Sleep before every database call (simulates a slow database).", visibility: .hidden))
        var applyDelayMs: Int = 0
        @Option(name: .customLong("max-batch"), help: "Events per database transaction.") var maxBatch: Int = 500
        @Option(
            help: ArgumentHelp(
                "Currencies this worker books, comma-separated (default: all it knows). Events in others are dead-lettered and their accounts quarantined until replayed.",
                valueName: "CODES"))
        var currencies: String?

        func run() async throws {
            Bootstrap.run(logLevel: .info)
            var logger = Logger(label: "brook.ledger")
            if let id = instanceId { logger[metadataKey: "instance"] = "\(id)" }
            try await runClient {
                let store = try await LedgerDatabase(url: db).openStore()
                var c = LedgerWorker.Configuration(client: try client.configuration())
                c.topic = topic
                c.group = group
                c.instanceId = instanceId
                c.maxBatchRecords = maxBatch
                if let currencies {
                    let codes = Set(currencies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() })
                    let unknown = codes.subtracting(LedgerCurrencies.known)
                    guard unknown.isEmpty else {
                        throw ValidationError("unknown currencies: \(unknown.sorted().joined(separator: ", ")) (known: \(LedgerCurrencies.known.sorted().joined(separator: ", ")))")
                    }
                    c.currencies = codes
                }
                let worker = applyDelayMs > 0
                    ? LedgerWorker(configuration: c, sink: DelaySink(store.asSink, delay: .milliseconds(applyDelayMs)), store: store, logger: logger)
                    : LedgerWorker(configuration: c, store: store, logger: logger)
                var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: worker)]
                if let metrics {
                    let (h, p) = try parseHostPort(metrics, defaultPort: 9645)
                    services.append(.init(service: MetricsServer(host: h, port: p, registry: Bootstrap.registry, logger: logger) {
                        StatusPage.html(title: "Brook ledger worker", snapshots: [worker.snapshot()])
                    }))
                }
                let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
                try await store.close()
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Produce deterministic synthetic trade events.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Topic of trade events.") var topic: String = "trades"
        @Option(help: "Number of accounts.") var accounts: Int = 1000
        @Option(help: "Number of events (the opening deposits count).") var events: Int = 10_000
        @Option(help: "Events per second (0 = as fast as acknowledgements allow).") var rate: Double = 0
        @Option(help: "Seed: the same seed gives the same events.") var seed: UInt64 = 1
        @Option(help: "uniform or zipf (or zipf:EXPONENT).") var skew: String = "uniform"
        @Option(name: .customLong("poison-rate"), help: "Fraction of records the worker cannot decode or apply.") var poisonRate: Double = 0
        @Option(name: .customLong("skip"), help: "Skip the first N generated events (resume a run).") var skip: Int = 0

        func run() async throws {
            try await runClient {
                let config = LedgerGeneratorConfig(
                    accounts: accounts, events: events, seed: seed, skew: try LedgerCLI.skew(skew), poisonRate: poisonRate)
                let producer = try KafkaProducer(configuration: ProducerConfiguration(client: try client.configuration()), logger: client.logger)
                let started = ContinuousClock.now
                let sent = try await LedgerCLI.produce(LedgerGenerator(config).dropFirst(skip), to: topic, producer: producer, rate: rate)
                await producer.close()
                let secs = (ContinuousClock.now - started).seconds
                FileHandle.standardError.write(Data(String(format: "produced %d events to %@ in %.2f s (%.0f/s)\n", sent, topic, secs, Double(sent) / max(secs, 1e-9)).utf8))
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute every balance from the topic and the DLT and compare with the database; non-zero exit on any difference.",
            discussion: """
                Reads the topic through a running cluster (--bootstrap), or straight from the data \
                directory of a stopped broker (--data-dir, e.g. .brook/data after `brook up` \
                stopped): its segment files are only read, nothing in the directory is written, \
                and no broker is started. Only records below the database's stored offsets for \
                --group are replayed, so verify is exact while workers run, too.
                """)
        @OptionGroup var client: ClientOptions
        @Option(help: "sqlite:PATH or postgres://…") var db: String
        @Option(help: "Topic of trade events.") var topic: String = "trades"
        @Option(help: "Consumer group whose stored offsets must reach the topic's end first.") var group: String = "brook-ledger"
        @Option(name: .customLong("wait-seconds"), help: "Wait up to this long for the workers to catch up (0 = do not wait).")
        var waitSeconds: Int = 0
        @Option(
            name: .customLong("data-dir"),
            help: ArgumentHelp("Read the topic from a stopped broker's data directory (read-only) instead of --bootstrap.", valueName: "DIR"))
        var dataDir: String?

        func validate() throws {
            if dataDir != nil && waitSeconds > 0 {
                throw ValidationError("--wait-seconds waits for running workers; with --data-dir the broker is stopped")
            }
        }

        func run() async throws {
            try await runClient {
                let source: LedgerCLI.VerifySource
                if let dataDir {
                    var isDirectory: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDirectory), isDirectory.boolValue else {
                        throw CommandFailure("no directory \(dataDir): --data-dir takes the broker's data directory (brook up: DIR/data, e.g. .brook/data)")
                    }
                    let reader = try StoredLogReader(dataDirectory: dataDir)
                    guard !reader.isInUse else {
                        throw CommandFailure("a broker is running on \(dataDir); verify through it with --bootstrap HOST:PORT instead of --data-dir")
                    }
                    source = .dataDirectory(reader)
                } else {
                    source = .cluster(try client.configuration(), client.logger)
                }
                let store = try await LedgerDatabase(url: db).openStore()
                let outcome: Result<([String], String), any Error>
                do {
                    if waitSeconds > 0, case .cluster(let cfg, _) = source {
                        try await LedgerCLI.waitUntilCaughtUp(store: store, client: cfg, topic: topic, group: group, timeout: .seconds(waitSeconds))
                    }
                    outcome = .success(try await LedgerCLI.verify(store: store, source: source, topic: topic, group: group))
                } catch {
                    outcome = .failure(error)
                }
                try await store.close()
                let (differences, summary) = try outcome.get()
                print(summary)
                for d in differences.prefix(50) { print(d) }
                if !differences.isEmpty {
                    print("\(differences.count) difference(s)")
                    throw ExitCode(2)
                }
                print("OK: every balance and position matches")
            }
        }
    }

    struct Poller: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the legacy poller over the pending_events table.")
        @Option(help: "sqlite:PATH or postgres://…") var db: String
        @Option(help: "Concurrent pollers.") var pollers: Int = 4
        @Option(name: .customLong("batch-size")) var batchSize: Int = 500
        @Flag(help: "Stop once the queue is empty.") var drain = false

        func run() async throws {
            let database = try LedgerDatabase(url: db)
            var list: [any LedgerPoller] = []
            for _ in 0..<max(pollers, 1) { list.append(try await database.openPoller()) }
            if drain {
                let n = try await PollerRunner.drain(list, batchSize: batchSize)
                print("drained \(n) events")
            } else {
                try await withThrowingTaskGroup(of: Void.self) { g in
                    for p in list { g.addTask { try await PollerRunner.run(p, batchSize: batchSize) } }
                    try await g.waitForAll()
                }
            }
            for p in list { try await p.close() }
        }
    }
}


/// Shared plumbing of the ledger commands and `brook up`.
enum LedgerCLI {
    static func skew(_ s: String) throws -> AccountSkew {
        if s == "uniform" { return .uniform }
        if s == "zipf" { return .zipf(exponent: 1.0) }
        if s.hasPrefix("zipf:"), let e = Double(s.dropFirst(5)), e > 0 { return .zipf(exponent: e) }
        throw ValidationError("--skew must be uniform, zipf or zipf:EXPONENT")
    }

    /// Produces generated records, paced at `rate` per second (0: unpaced), each acknowledged
    /// before the function returns. Returns how many were sent.
    static func produce(_ records: some Sequence<GeneratedRecord>, to topic: String, producer: KafkaProducer, rate: Double,
                        onSent: (@Sendable (Int) -> Void)? = nil) async throws -> Int {
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        var pending: [Task<Void, any Error>] = []
        for r in records {
            if rate > 0 {
                let due = start + .seconds(Double(sent) / rate)
                if due > clock.now { try await Task.sleep(until: due, clock: clock) }
            }
            let record = ProducerRecord(topic: topic, key: Array(r.key.utf8), value: r.value)
            pending.append(Task { _ = try await producer.send(record) })
            sent += 1
            onSent?(sent)
            // Bound what is outstanding: the producer's buffer bounds memory, this bounds tasks.
            if pending.count >= 10_000 {
                for t in pending { try await t.value }
                pending.removeAll(keepingCapacity: true)
            }
        }
        for t in pending { try await t.value }
        return sent
    }

    /// Where `brook ledger verify` reads the topic and its DLT: a cluster, or a stopped broker's
    /// data directory read in place.
    enum VerifySource {
        case cluster(ClientConfiguration, Logger)
        case dataDirectory(StoredLogReader)

        /// The partitions of `topic`; nil when there is no such topic.
        func partitions(_ topic: String) async throws -> [Int32]? {
            switch self {
            case .cluster(let client, let logger):
                let admin = KafkaAdmin(config: client, logger: logger)
                defer { Task { await admin.close() } }
                // Only the broker saying so means "no such topic". A broker started a moment ago
                // may not listen yet: retriable errors are retried for a while, then reported.
                let deadline = ContinuousClock.now + .seconds(20)
                while true {
                    do {
                        return try await admin.describeTopic(topic).partitions.map(\.id)
                    } catch let error as KafkaClientError where error.errorCode == .unknownTopicOrPartition {
                        return nil
                    } catch let error as KafkaClientError where error.isRetriable && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
            case .dataDirectory(let reader):
                let ps = try reader.partitions(of: topic)
                return ps.isEmpty ? nil : ps
            }
        }

        /// Calls `body` with each record of `topic`, per partition in offset order.
        func forEachRecord(_ topic: String, _ body: (_ partition: Int32, _ offset: Int64, _ value: ByteBuffer?, _ headers: [RecordHeader]) -> Void) async throws {
            switch self {
            case .cluster(let client, let logger):
                try await TopicReader(client: client, logger: logger).read(topic) { batch, _ in
                    for r in batch.records { body(r.partition, r.offset, r.value, r.headers) }
                }
            case .dataDirectory(let reader):
                for p in try reader.partitions(of: topic) {
                    let start = try reader.logStartOffset(topic: topic, partition: p)
                    try reader.forEachBatch(topic: topic, partition: p) { batch in
                        for r in try batch.decodeRecords() where batch.offset(of: r) >= start {
                            body(p, batch.offset(of: r), r.value, r.headers)
                        }
                    }
                }
            }
        }
    }

    /// Every record of `topic` below the offsets the store holds for `group` (what the database
    /// claims to have consumed), minus the positions dead-lettered from it, replayed
    /// independently and compared with the database. Valid while workers run: a transfer credit
    /// not consumed yet is missing on both sides. A group with no stored offsets is an error
    /// (there would be nothing to compare).
    static func verify(store: any LedgerStore, source: VerifySource, topic: String, group: String) async throws -> ([String], String) {
        guard let ids = try await source.partitions(topic) else {
            if case .dataDirectory(let reader) = source { throw CommandFailure("topic '\(topic)' has no partition logs in \(reader.directory)") }
            throw CommandFailure("topic '\(topic)' not found")
        }
        let partitions = ids.map { BrookProtocol.TopicPartition(topic: topic, partition: $0) }
        // Offsets, balances and counts from one snapshot of the database, so they agree while
        // workers write; the topic is read afterwards, up to those offsets.
        let state = try await store.state(group: group, partitions: partitions)
        let stored = state.storedOffsets
        if let line = LedgerVerifier.missingStoredOffsets(
            group: group, topic: topic, storedPartitions: stored.count, groupsWithOffsets: try await store.storedGroups(topic: topic)) {
            throw CommandFailure(line)
        }
        var records: [VerifyRecord] = []
        var beyond = 0
        try await source.forEachRecord(topic) { partition, offset, value, _ in
            guard offset < stored[BrookProtocol.TopicPartition(topic: topic, partition: partition)] ?? 0 else {
                beyond += 1
                return
            }
            records.append(VerifyRecord(partition: partition, offset: offset, value: value.map { Array($0.readableBytesView) } ?? []))
        }
        var dead = Set<RecordPosition>()
        if try await source.partitions(topic + ".dlt") != nil {
            try await source.forEachRecord(topic + ".dlt") { _, _, _, headers in
                if let p = DeadLetterProvenance(headers: headers), p.originalTopic == topic,
                   let partition = p.originalPartition, let offset = p.originalOffset {
                    dead.insert(RecordPosition(partition: partition, offset: offset))
                }
            }
        }
        let expected = LedgerVerifier.replay(records, deadLettered: dead)
        let diffs = LedgerVerifier.differences(expected: expected, cash: state.cash, positions: state.positions)
        var problems = diffs.map(\.description)
        // Exactly once, counted: every event the replay applied or rejected is recorded once.
        let counts = state.processedCounts
        let (dbApplied, dbRejected) = (counts["applied"] ?? 0, counts["rejected"] ?? 0)
        if dbApplied != expected.applied || dbRejected != expected.rejected {
            problems.append("processed events: expected \(expected.applied) applied and \(expected.rejected) rejected, database has \(dbApplied) and \(dbRejected)")
        }
        let summary = "verified \(records.count) consumed records of \(topic) (\(beyond) not consumed yet): \(expected.applied) applied, \(expected.rejected) rejected, \(expected.skipped) skipped (poison or dead-lettered), \(expected.duplicates) duplicate ids; database: \(dbApplied) applied, \(dbRejected) rejected"
        return (problems, summary)
    }

    /// Waits until the store's offsets for `group` reach the end of every partition of `topic`.
    static func waitUntilCaughtUp(store: any LedgerStore, client: ClientConfiguration, topic: String, group: String, timeout: Duration) async throws {
        let admin = KafkaAdmin(config: client, logger: Logger(label: "brook.verify"))
        defer { Task { await admin.close() } }
        let deadline = ContinuousClock.now + timeout
        var stable = 0
        while ContinuousClock.now < deadline {
            let ends = try await admin.listOffsets(topic: topic, spec: .latest)
            let tps = ends.keys.map { BrookProtocol.TopicPartition(topic: topic, partition: $0) }
            let stored = try await store.storedOffsets(group: group, partitions: tps)
            let behind = ends.filter { $0.value > 0 && (stored[BrookProtocol.TopicPartition(topic: topic, partition: $0.key)] ?? 0) < $0.value }
            // Twice in a row: the outbox may still add a transfer credit right after the last apply.
            if behind.isEmpty { stable += 1; if stable >= 3 { return } } else { stable = 0 }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw ValidationError("workers did not catch up within \(timeout)")
    }
}

extension LedgerCommand {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream vs poller, each ingesting while it applies: maximum sustained events/s, the ratio, produce→commit latency by stage, CPU, worker RSS.")
        @Option(help: "Bootstrap servers (default: an embedded broker in a temporary directory).") var bootstrap: String?
        @Option(help: "sqlite:PATH or postgres://… (scratch databases are made next to it).") var db: String
        @Option(help: "Events of the flat-out phase of each side.") var events: Int = 100_000
        @Option var accounts: Int = 5_000
        @Option var seed: UInt64 = 1
        @Option(help: "uniform or zipf[:EXPONENT].") var skew: String = "uniform"
        @Option(help: "Concurrent legacy pollers.") var pollers: Int = 4
        @Option(help: "Ledger workers (one group).") var workers: Int = 1
        @Option(help: "Partitions of the benchmark topic.") var partitions: Int32 = 16
        @Option(name: .customLong("phase-seconds"), help: "Seconds of each paced phase (the sustained-rate search, latency).")
        var phaseSeconds: Double = 8
        @Option(help: "Durability of the embedded broker: fsync or os.") var flush: FlushPolicy = .fsync
        @Option(help: "Also write the figures to this JSON file.") var json: String?
        @Option(name: .customLong("rss-events"), help: "Events a separate worker process catches up on for its peak RSS (0: skip).")
        var rssEvents: Int = 100_000
        @Option(name: .customLong("store-only"), help: ArgumentHelp("Only the store's apply, N events per call, no broker (profiling).", visibility: .hidden))
        var storeOnly: Int?
        @Option(name: .customLong("stream-rate"), help: ArgumentHelp("Only the stream side, at this rate, with its stages (profiling).", visibility: .hidden))
        var streamRate: Double?

        func run() async throws {
            Bootstrap.run(logLevel: .warning)
            if let storeOnly {
                let (scratchDB, _) = try await LedgerBench.scratch(url: db, "store")
                let rate = try await StoreBench.run(database: scratchDB, events: events, accounts: accounts, partitions: partitions, perCall: storeOnly)
                print(String(format: "store only: %.0f events/s applied, %d events per call", rate, storeOnly))
                return
            }
            var logger = Logger(label: "brook.ledger.bench")
            logger.logLevel = .warning
            var c = LedgerBench.Configuration()
            c.events = events
            c.accounts = accounts
            c.seed = seed
            c.skew = try LedgerCLI.skew(skew)
            c.pollers = pollers
            c.workers = workers
            c.partitions = partitions
            c.phaseSeconds = phaseSeconds
            let database = try LedgerDatabase(url: db)
            var broker: EmbeddedBroker?
            let servers: String
            if let bootstrap {
                servers = bootstrap
            } else {
                let b = try await EmbeddedBroker.start(logger: logger) { bc in
                    bc.flushPolicy = flush
                    bc.groupInitialRebalanceDelay = .zero
                }
                broker = b
                servers = "127.0.0.1:\(b.port)"
            }
            let client = ClientConfiguration(bootstrapServers: try BrokerAddress.list(servers))
            let progress: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data("bench: \(line)\n".utf8)) }
            do {
                if let streamRate {
                    let (p, stages) = try await LedgerBench.streamStages(database: database, client: client, configuration: c, rate: streamRate, logger: logger)
                    print(String(format: "stream at %.0f events/s: handed over in %.2f s, backlog at end %d, all applied after %.2f s",
                                 streamRate, p.ingestSeconds, p.backlogAtEnd, p.totalSeconds))
                    for (label, s) in stages {
                        print("  \(label.padding(toLength: 52, withPad: " ", startingAt: 0)) " + String(format: "p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms", s.p50, s.p99, s.p999))
                    }
                    await broker?.stop()
                    return
                }
                var result = try await LedgerBench.run(database: database, client: client, configuration: c, progress: progress, logger: logger)
                result.store = database.kind
                if rssEvents > 0 {
                    progress("worker RSS: a separate `brook ledger run` catching up on \(rssEvents) events")
                    let (rssDB, rssURL) = try await LedgerBench.scratch(url: db, "rss")
                    result.workerPeakRSSMiB = try await WorkerRSSProbe.measure(
                        executable: "/proc/self/exe", bootstrap: servers, client: client, database: rssDB, databaseURL: rssURL,
                        events: rssEvents, accounts: accounts, partitions: partitions, logger: logger)
                }
                print("\(events) events flat out, \(accounts) accounts, \(broker == nil ? servers : "embedded broker (flush \(flush))"), "
                    + "\(pollers) pollers vs \(workers) worker(s) on \(partitions) partitions")
                print(result)
                if let json { try result.writeJSON(to: json) }
            } catch {
                await broker?.stop()
                throw error
            }
            await broker?.stop()
        }
    }
}
