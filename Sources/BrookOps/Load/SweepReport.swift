import Foundation

/// Everything a sweep writes: `results.json` is this value encoded; `report.md` and
/// `report.html` are rendered from it.
public struct SweepReport: Sendable, Codable, Equatable {
    /// The report's heading.
    public var title: String
    /// ISO 8601 start time.
    public var started: String
    /// What consumed the records.
    public var target: SweepSpec.Target
    /// Measured records per run.
    public var records: Int
    /// Value bytes per record.
    public var recordSize: Int
    /// Partitions of each run's topic.
    public var partitions: Int
    /// Runs per point.
    public var repeats: Int
    /// Every setting, varied or fixed.
    public var settings: [SweepSpec.Setting]
    /// Every run in execution order with what it measured.
    public var runs: [RunResult]
    /// Medians, spreads, ranked effects and the best point.
    public var analysis: SweepAnalysis

    /// One run and what it measured.
    public struct RunResult: Sendable, Codable, Equatable {
        /// Which point, which repeat.
        public var run: SweepRun
        /// What it measured.
        public var measurement: SweepMeasurement
    }

    /// Analyses `runs` of `spec`.
    public init(title: String, started: String, spec: SweepSpec, runs: [(SweepRun, SweepMeasurement)]) {
        self.title = title
        self.started = started
        target = spec.target
        records = spec.records
        recordSize = spec.recordSize
        partitions = spec.partitions
        repeats = spec.repeats
        settings = spec.settings
        self.runs = runs.map { RunResult(run: $0.0, measurement: $0.1) }
        analysis = SweepAnalysis(spec: spec, results: Dictionary(runs, uniquingKeysWith: { a, _ in a }))
    }

    /// `results.json`.
    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }

    var dimensions: [SweepSpec.Setting] { settings.filter { $0.values.count > 1 } }
    var fixedSettings: [SweepSpec.Setting] { settings.filter { $0.values.count == 1 } }

    /// The verdict column: "within noise (±x%)" or the relative effect.
    static func verdict(_ e: SweepAnalysis.Effect) -> String {
        guard let n = e.noise else { return "no repeats to judge noise" }
        return e.withinNoise ? "within noise (±\(pct(n)))" : "**significant** (noise ±\(pct(n)))"
    }

    static func pct(_ x: Double) -> String { fixed(x * 100, 1) + "%" }

    static func number(_ x: Double, _ metric: SweepMetric) -> String {
        switch metric {
        case .throughput: return fixed(x, 0)
        case .p99, .cpu: return fixed(x, 2)
        case .rss: return fixed(x, 0)
        }
    }

    /// `report.md`: the best point, the ranking per metric, every point's medians and spread.
    public func markdown() -> String {
        var md = "# \(title)\n\n"
        md += "Target: **\(target.rawValue)**, \(records) records of \(recordSize) bytes per run, \(partitions) partitions, "
        md += "\(repeats) repeat\(repeats == 1 ? "" : "s") per point, interleaved; started \(started).\n\n"
        if !fixedSettings.isEmpty {
            md += "Held fixed: " + fixedSettings.map { "`\($0.id)=\($0.values[0])`" }.joined(separator: ", ") + ".\n\n"
        }
        if let b = analysis.best, let p = analysis.points.first(where: { $0.point.index == b }) {
            md += "**Best point:** `\(p.label)` — \(fixed(p.median["throughput"] ?? 0, 0)) rec/s, p99 \(fixed(p.median["p99"] ?? 0, 2)) ms, "
            md += "\(fixed(p.median["cpu"] ?? 0, 2)) CPU s, \(fixed(p.median["rss"] ?? 0, 0)) MiB peak RSS (medians).\n\n"
        }
        md += "## Settings ranked by effect\n\n"
        md += "Effect = main effect: per value, the mean of the medians of the points with it; the spread of those means relative to the mean of all points. Noise = median relative spread (max − min) of a point's repeats.\n\n"
        for m in SweepMetric.allCases {
            let es = analysis.effects(on: m)
            guard !es.isEmpty else { continue }
            md += "### \(m.title)\n\n| rank | setting | effect | best value | mean per value | verdict |\n|---|---|---|---|---|---|\n"
            for (i, e) in es.enumerated() {
                let levels = e.levels.map { "\($0.value): \(Self.number($0.median, m))" }.joined(separator: ", ")
                md += "| \(i + 1) | `\(e.setting)` | \(Self.pct(e.relativeEffect)) | `\(e.bestValue)` | \(levels) | \(Self.verdict(e)) |\n"
            }
            md += "\n"
        }
        md += "## Points\n\n| point | throughput (rec/s) | p99 (ms) | CPU s | peak RSS (MiB) | throughput spread |\n|---|---|---|---|---|---|\n"
        for p in analysis.points.sorted(by: { ($0.median["throughput"] ?? 0) > ($1.median["throughput"] ?? 0) }) {
            let spread = p.relativeSpread["throughput"].map(Self.pct) ?? "–"
            md += "| `\(p.label)` | \(fixed(p.median["throughput"] ?? 0, 0)) | \(fixed(p.median["p99"] ?? 0, 2)) | "
            md += "\(fixed(p.median["cpu"] ?? 0, 2)) | \(fixed(p.median["rss"] ?? 0, 0)) | \(spread) |\n"
        }
        return md
    }
}
