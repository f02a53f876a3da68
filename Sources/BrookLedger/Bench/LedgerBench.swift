import Brook
import BrookPipeline
import Foundation
import Logging
import PostgresNIO

/// Stream vs poller on the same database kind, the same trades and the same machine
/// (`brook ledger bench`), each paying for its own ingestion while it applies, as in production.
///
/// For each side: a flat-out phase (the trading side hands trades over as fast as it can),
/// then paced phases from that rate down until one is sustained (the backlog stays under half
/// a second of events: lag stopped growing), then latency at half that maximum. The stream is
/// also measured at one fixed rate both sides hold (half the poller's maximum). Each side gets a
/// fresh scratch database (SQLite: a new file next to the given path; PostgreSQL: a new
/// database on the same server).
public enum LedgerBench {
    public struct Configuration: Sendable {
        /// Events of the flat-out phase.
        public var events = 100_000
        public var accounts = 5_000
        public var seed: UInt64 = 1
        public var skew: AccountSkew = .uniform
        public var pollers = 4
        public var pollerBatch = 500
        /// Ledger workers (pipelines in this process, one group).
        public var workers = 1
        public var partitions: Int32 = 16
        /// Seconds of each paced phase.
        public var phaseSeconds = 8.0
        public init() {}
    }

    /// Histogram names the benchmark records besides the pipeline's stages.
    public static let produceToAck = "produce_to_ack"
    public static let endToEnd = PipelineStage.endToEnd.rawValue

    public static func run(database: LedgerDatabase, client: ClientConfiguration, configuration c: Configuration,
                           progress: @Sendable (String) -> Void = { _ in },
                           logger: Logger = Logger(label: "brook.ledger.bench")) async throws -> LedgerBenchResult {
        let poller = try await using(try await PollerSide(database: try await scratch(database, "poller"), pollers: c.pollers, batch: c.pollerBatch)) {
            try await measure($0, "poller", c, progress: progress)
        }
        let streamSide = try await StreamSide(database: try await scratch(database, "stream"), client: client, partitions: c.partitions,
                                              workers: c.workers, logger: logger)
        let stream = try await using(streamSide) { side in
            var stream = try await measure(side, "stream", c, progress: progress)
            let fixed = min(stream.maxPerSecond, poller.maxPerSecond) / 2
            progress("stream: latency at the fixed rate \(Int(fixed))/s")
            stream.fixedRate = fixed
            stream.latencyAtFixed = try await latency(side, c, rate: fixed, phase: 90)
            return stream
        }
        var poller2 = poller
        poller2.fixedRate = stream.fixedRate
        if abs(stream.fixedRate - poller.halfRate) < 1 {
            poller2.latencyAtFixed = poller.latencyAtHalf  // the same rate, already measured
        } else {
            progress("poller: latency at the fixed rate \(Int(stream.fixedRate))/s")
            poller2.latencyAtFixed = try await using(try await PollerSide(database: try await scratch(database, "poller"), pollers: c.pollers, batch: c.pollerBatch)) {
                try await latency($0, c, rate: stream.fixedRate, phase: 91)
            }
        }
        return LedgerBenchResult(skew: "\(c.skew)", events: c.events, stream: stream, poller: poller2)
    }

    /// Flat out, then the highest sustained rate, then latency at half of it.
    static func measure(_ side: any BenchSide, _ name: String, _ c: Configuration, progress: @Sendable (String) -> Void) async throws -> SideResult {
        progress("\(name): \(c.events) events flat out")
        let flat = try await phase(side, generate(c, events: c.events, phase: 0), rate: nil)
        progress(String(format: "\(name): flat out %.0f events/s applied (handed over at %.0f/s)", flat.appliedPerSecond, flat.ingestPerSecond))
        var result = SideResult(flatOut: flat.appliedPerSecond)
        for (i, rate) in SustainedRule.candidates(flatOut: min(flat.appliedPerSecond, flat.ingestPerSecond)).enumerated() {
            let p = try await phase(side, generate(c, events: Int(rate * c.phaseSeconds), phase: UInt64(i + 1)), rate: rate)
            let ok = SustainedRule.isSustained(p)
            progress(String(format: "\(name): %.0f events/s for %.0f s: %@ (backlog at end %d)", rate, c.phaseSeconds,
                            ok ? "sustained" : "not sustained", p.backlogAtEnd))
            if ok {
                result.maxPerSecond = rate
                result.cpuSecondsPer1000 = p.cpuSeconds.map { $0 / Double(p.events) * 1000 }
                break
            }
        }
        guard result.maxPerSecond > 0 else { throw LedgerBenchError(description: "\(name): no rate was sustained") }
        let half = result.maxPerSecond / 2
        progress(String(format: "\(name): latency at half load, %.0f events/s", half))
        result.halfRate = half
        result.latencyAtHalf = try await latency(side, c, rate: half, phase: 50)
        for stage in [produceToAck] + PipelineStage.allCases.map(\.rawValue) {
            if let s = side.histograms.summary(stage), stage != endToEnd || name == "stream" { result.stages[stage] = s }
        }
        return result
    }

    /// Fresh events for one phase: another seed per phase, so event ids never repeat.
    static func generate(_ c: Configuration, events: Int, phase: UInt64) -> ArraySlice<GeneratedRecord> {
        ArraySlice(LedgerGenerator(LedgerGeneratorConfig(accounts: c.accounts, events: max(events, 1), seed: c.seed &* 1000 &+ phase, skew: c.skew)))
    }

    /// A fresh, empty database next to the one `url` names, and its URL (for a child process).
    public static func scratch(url: String, _ name: String) async throws -> (LedgerDatabase, String) {
        let db = try await scratch(try LedgerDatabase(url: url), name)
        switch db {
        case .sqlite(let path): return (db, "sqlite:\(path)")
        case .postgres(let config):
            guard var parts = URLComponents(string: url), let name = config.database else { return (db, url) }
            parts.path = "/" + name
            return (db, parts.string ?? url)
        }
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


extension LedgerBench {
    /// The stream side alone at one rate (`brook ledger bench --stream-rate R`): latency by
    /// stage, to find where time goes at a given load without the full search.
    public static func streamStages(database: LedgerDatabase, client: ClientConfiguration, configuration c: Configuration, rate: Double,
                                    logger: Logger) async throws -> (PhaseOutcome, [(String, LatencySummary)]) {
        let side = try await StreamSide(database: try await scratch(database, "stream"), client: client, partitions: c.partitions,
                                        workers: c.workers, logger: logger)
        return try await using(side) { side in
            // A short warm-up so the group is assigned and connections are open.
            _ = try await phase(side, generate(c, events: max(Int(rate / 2), 100), phase: 0), rate: rate)
            side.histograms.reset()
            let p = try await phase(side, generate(c, events: Int(rate * c.phaseSeconds), phase: 1), rate: rate)
            return (p, LedgerBenchResult.stageOrder.compactMap { key, label in side.histograms.summary(key).map { (label, $0) } })
        }
    }

    /// Runs `body` with `side`, closing the side on every way out.
    static func using<S: BenchSide, T>(_ side: S, _ body: (S) async throws -> T) async throws -> T {
        do {
            let result = try await body(side)
            await side.close()
            return result
        } catch {
            await side.close()
            throw error
        }
    }

    /// End-to-end latency of one paced phase at `rate`.
    static func latency(_ side: any BenchSide, _ c: Configuration, rate: Double, phase n: UInt64) async throws -> LatencySummary? {
        side.histograms.reset()
        _ = try await phase(side, generate(c, events: Int(rate * c.phaseSeconds), phase: n), rate: rate)
        return side.histograms.summary(endToEnd)
    }
}
