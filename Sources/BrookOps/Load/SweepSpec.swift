import Foundation
import Yams

/// A `sweep.yaml`: the workload, the target (a plain consumer or a ledger worker) and the
/// settings to vary. Every setting given a list is a dimension of the matrix; a scalar is held
/// fixed. Setting names are the Java client's (`linger.ms`, `max.partition.fetch.bytes`) or
/// the pipeline's (`batch.records`, `lanes.per.partition`, `max.in.flight`).
public struct SweepSpec: Sendable, Equatable {
    /// What consumes a sweep's records.
    public enum Target: String, Sendable, Equatable, Codable {
        /// A consumer group member reading every record (no processing).
        case consumer
        /// A ledger worker applying every record to a SQLite store.
        case ledger
    }

    /// Where a setting applies.
    public enum Scope: String, Sendable, Codable, CaseIterable, Comparable {
        case producer, consumer, pipeline
        /// Producer, then consumer, then pipeline.
        public static func < (a: Scope, b: Scope) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
    }

    /// One setting and the values it takes.
    public struct Setting: Sendable, Equatable, Codable {
        /// Where it applies.
        public var scope: Scope
        /// Its name within the scope (`linger.ms`).
        public var name: String
        /// The values it takes, in the file's order.
        public var values: [String]
        /// `producer.linger.ms`: unique across scopes.
        public var id: String { "\(scope.rawValue).\(name)" }
    }

    /// What consumes the records.
    public var target: Target = .consumer
    /// The cluster, unless the command line names one.
    public var bootstrap: String?
    /// Partitions of each run's topic.
    public var partitions = 4
    /// Records per measured run (after the warm-up).
    public var records = 100_000
    /// Records produced and consumed before measuring.
    public var warmupRecords = 10_000
    /// Value bytes per record (consumer target).
    public var recordSize = 100
    /// Producer rate in records/s; nil is as fast as possible.
    public var rate: Double?
    /// Runs per point.
    public var repeats = 3
    /// Accounts of the ledger target's generated events.
    public var accounts = 1000
    /// The ledger target's database: nil for a fresh SQLite file per run, or a
    /// `postgres://…` URL (runs share it; each run has its own consumer group).
    public var database: String?
    /// Every setting, varied or fixed.
    public var settings: [Setting] = []

    /// The defaults above, no settings.
    public init() {}

    /// Settings with more than one value: the matrix's dimensions.
    public var dimensions: [Setting] { settings.filter { $0.values.count > 1 } }

    /// Every point of the matrix (the cartesian product of the settings' values), in a
    /// stable order.
    public var points: [SweepPoint] {
        var out: [[String: String]] = [[:]]
        for s in settings {
            out = out.flatMap { partial in s.values.map { v in partial.merging([s.id: v]) { $1 } } }
        }
        return out.enumerated().map { SweepPoint(index: $0.offset, values: $0.element) }
    }

    /// Runs in execution order: round r runs every point once, the order shuffled per round
    /// (seeded, so a sweep is repeatable), so slow drift of the machine spreads over all
    /// points instead of biasing the ones that ran last.
    public func schedule(seed: UInt64 = 7) -> [SweepRun] {
        var rng = SplitMix64(seed: seed)
        let pts = points
        var runs: [SweepRun] = []
        for r in 0..<repeats {
            for p in pts.map(\.index).shuffled(using: &rng) { runs.append(SweepRun(point: p, repeat: r)) }
        }
        return runs
    }

    /// Parses a sweep file; errors name the offending key.
    public static func parse(_ yaml: String) throws -> SweepSpec {
        let node: Any?
        do { node = try Yams.load(yaml: yaml) } catch { throw LoadTestError.invalid("not a valid sweep file: \(error)") }
        guard let root = node as? [String: Any] else { throw LoadTestError.invalid("a sweep file is a mapping (target:, producer:, …)") }
        var s = SweepSpec()
        let known: Set<String> = ["target", "bootstrap", "partitions", "records", "warmup-records", "record-size", "rate", "repeats",
                                  "accounts", "database", "producer", "consumer", "pipeline"]
        if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
            throw LoadTestError.invalid("unknown key \(unknown) in the sweep file")
        }
        if let t = root["target"] {
            guard let target = Target(rawValue: "\(t)") else { throw LoadTestError.invalid("target must be consumer or ledger") }
            s.target = target
        }
        s.bootstrap = root["bootstrap"].map { "\($0)" }
        s.database = root["database"].map { "\($0)" }
        if let db = s.database, !(db.hasPrefix("postgres://") || db.hasPrefix("postgresql://")) {
            throw LoadTestError.invalid("database must be a postgres:// URL (omit it for a fresh SQLite file per run)")
        }
        func int(_ key: String, min: Int) throws -> Int? {
            guard let v = root[key] else { return nil }
            guard let n = Int("\(v)"), n >= min else { throw LoadTestError.invalid("\(key) must be an integer ≥ \(min)") }
            return n
        }
        s.partitions = try int("partitions", min: 1) ?? s.partitions
        s.records = try int("records", min: 1) ?? s.records
        s.warmupRecords = try int("warmup-records", min: 0) ?? s.warmupRecords
        s.recordSize = try int("record-size", min: 16) ?? s.recordSize
        s.repeats = try int("repeats", min: 1) ?? s.repeats
        s.accounts = try int("accounts", min: 1) ?? s.accounts
        if let r = root["rate"] {
            guard let x = Double("\(r)") else { throw LoadTestError.invalid("rate must be a number (-1: unthrottled)") }
            s.rate = x > 0 ? x : nil
        }
        for scope in Scope.allCases {
            guard let section = root[scope.rawValue] else { continue }
            guard let map = section as? [String: Any] else { throw LoadTestError.invalid("\(scope.rawValue): must map setting names to values") }
            for name in map.keys.sorted() {
                let values: [String]
                if let list = map[name] as? [Any] { values = list.map { "\($0)" } } else { values = ["\(map[name]!)"] }
                guard !values.isEmpty else { throw LoadTestError.invalid("\(scope.rawValue).\(name) has no values") }
                guard Set(values).count == values.count else { throw LoadTestError.invalid("\(scope.rawValue).\(name) repeats a value") }
                s.settings.append(Setting(scope: scope, name: name, values: values))
            }
        }
        if s.target == .consumer, let p = s.settings.first(where: { $0.scope == .pipeline }) {
            throw LoadTestError.invalid("pipeline.\(p.name) needs target: ledger (a plain consumer has no pipeline)")
        }
        return s
    }
}

/// One combination of settings (setting id → value).
public struct SweepPoint: Sendable, Equatable, Codable {
    /// Its position in ``SweepSpec/points``.
    public var index: Int
    /// Setting id (`producer.linger.ms`) → value.
    public var values: [String: String]

    /// `linger.ms=5 batch.size=16384`, the values of the given dimensions.
    public func label(_ dimensions: [SweepSpec.Setting]) -> String {
        let parts = dimensions.map { "\($0.name)=\(values[$0.id] ?? "?")" }
        return parts.isEmpty ? "baseline" : parts.joined(separator: " ")
    }

    /// The values of one scope, keyed by the setting's own name.
    public func settings(_ scope: SweepSpec.Scope) -> [(String, String)] {
        let prefix = scope.rawValue + "."
        return values.keys.sorted().filter { $0.hasPrefix(prefix) }.map { (String($0.dropFirst(prefix.count)), values[$0]!) }
    }
}

/// One measured run of a point.
public struct SweepRun: Sendable, Hashable, Codable {
    /// Index of the point.
    public var point: Int
    /// Which repeat (0-based).
    public var `repeat`: Int
}

/// What one run measured.
public struct SweepMeasurement: Sendable, Equatable, Codable {
    /// Records per second through the whole path (first send → last record consumed).
    public var throughput: Double
    /// End-to-end p99 latency, milliseconds.
    public var p99Ms: Double
    /// CPU seconds of this process during the run (user + system).
    public var cpuSeconds: Double
    /// Peak resident set during the run, MiB.
    public var peakRSSMiB: Double

    /// A measurement.
    public init(throughput: Double, p99Ms: Double, cpuSeconds: Double, peakRSSMiB: Double) {
        (self.throughput, self.p99Ms, self.cpuSeconds, self.peakRSSMiB) = (throughput, p99Ms, cpuSeconds, peakRSSMiB)
    }
}

/// A sweep's progress line as a run completes: how many, which point, what it measured, and
/// the time left estimated from the mean run time so far.
public func sweepProgressLine(done: Int, total: Int, elapsedSeconds: Double, label: String, measurement m: SweepMeasurement) -> String {
    let eta = done > 0 ? elapsedSeconds / Double(done) * Double(total - done) : 0
    return "[\(done)/\(total)] \(label): \(fixed(m.throughput, 0)) rec/s, p99 \(fixed(m.p99Ms, 2)) ms, "
        + "cpu \(fixed(m.cpuSeconds, 2)) s, rss \(fixed(m.peakRSSMiB, 0)) MiB — ETA \(formatDuration(eta))"
}

/// `1h02m`, `3m05s`, `42s`.
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}
