@testable import BrookOps
import Foundation
import Testing

@Suite("Sweep logic")
struct SweepLogicTests {
    static let yaml = """
        target: consumer
        partitions: 2
        records: 1000
        repeats: 3
        producer:
          linger.ms: [0, 5]
          batch.size: [16384, 1000000]
          acks: all
        consumer:
          max.partition.fetch.bytes: 1048576
        """

    @Test func parsesAndExpandsTheMatrix() throws {
        let s = try SweepSpec.parse(Self.yaml)
        #expect(s.partitions == 2 && s.records == 1000 && s.repeats == 3)
        #expect(s.dimensions.map(\.id) == ["producer.batch.size", "producer.linger.ms"])
        #expect(s.points.count == 4)
        #expect(Set(s.points.map { $0.values["producer.linger.ms"]! }) == ["0", "5"])
        #expect(s.points.allSatisfy { $0.values["producer.acks"] == "all" })
        #expect(s.points[0].settings(.producer).map(\.0) == ["acks", "batch.size", "linger.ms"])
        // Interleaved: every round runs every point once, rounds in different orders.
        let runs = s.schedule()
        #expect(runs.count == 12)
        for r in 0..<3 { #expect(Set(runs[(r * 4)..<(r * 4 + 4)].map(\.point)) == Set(0..<4)) }
        #expect(runs == s.schedule())
    }

    @Test(arguments: [
        ("producer: [1, 2]", "must map setting names"),
        ("bogus: 1", "unknown key bogus"),
        ("target: kafka", "target must be consumer or ledger"),
        ("pipeline:\n  batch.records: [1, 2]", "needs target: ledger"),
        ("producer:\n  linger.ms: [1, 1]", "repeats a value"),
        ("records: -5", "records must be an integer"),
        ("target: ledger\ndatabase: mysql://x", "database must be a postgres:// URL"),
    ])
    func badFilesNameTheProblem(yaml: String, message: String) {
        #expect { try SweepSpec.parse(yaml) } throws: { "\($0)".contains(message) }
    }

    /// linger.ms doubles throughput (far beyond the ±5% spread of repeats); batch.size moves it
    /// by 1% (within the noise).
    static func synthetic() throws -> (SweepSpec, [(SweepRun, SweepMeasurement)]) {
        let s = try SweepSpec.parse(Self.yaml)
        var runs: [(SweepRun, SweepMeasurement)] = []
        for run in s.schedule() {
            let p = s.points[run.point]
            var tput = p.values["producer.linger.ms"] == "5" ? 200_000.0 : 100_000.0
            if p.values["producer.batch.size"] == "1000000" { tput *= 1.01 }
            tput *= [0.975, 1.0, 1.025][run.repeat]
            let p99 = p.values["producer.linger.ms"] == "5" ? 6.0 : 1.0
            runs.append((run, SweepMeasurement(throughput: tput, p99Ms: p99 * [0.9, 1.0, 1.1][run.repeat], cpuSeconds: 1, peakRSSMiB: 50)))
        }
        return (s, runs)
    }

    @Test func ranksEffectsAndJudgesNoise() throws {
        let (s, runs) = try Self.synthetic()
        let a = SweepAnalysis(spec: s, results: Dictionary(runs, uniquingKeysWith: { x, _ in x }))
        let t = a.effects(on: .throughput)
        #expect(t.map(\.setting) == ["producer.linger.ms", "producer.batch.size"])
        #expect(t[0].bestValue == "5" && !t[0].withinNoise && t[0].relativeEffect > 0.5)
        #expect(t[1].bestValue == "1000000" && t[1].withinNoise)
        #expect(abs((t[0].noise ?? 0) - 0.05) < 1e-9)
        // Latency: lower is better, so linger 0 wins there.
        #expect(a.effects(on: .p99)[0].bestValue == "0")
        // Flat metrics: no effect, within the (zero) noise.
        #expect(a.effects(on: .rss).allSatisfy { $0.relativeEffect == 0 && $0.withinNoise })
        let best = try #require(a.best)
        #expect(s.points[best].values == ["producer.linger.ms": "5", "producer.batch.size": "1000000", "producer.acks": "all",
                                          "consumer.max.partition.fetch.bytes": "1048576"])
    }

    @Test func oneRepeatGivesNoVerdict() throws {
        var s = try SweepSpec.parse(Self.yaml)
        s.repeats = 1
        let runs = s.schedule().map { ($0, SweepMeasurement(throughput: Double($0.point + 1), p99Ms: 1, cpuSeconds: 1, peakRSSMiB: 1)) }
        let a = SweepAnalysis(spec: s, results: Dictionary(runs, uniquingKeysWith: { x, _ in x }))
        #expect(a.effects.allSatisfy { $0.noise == nil && !$0.withinNoise })
        #expect(SweepReport.verdict(a.effects[0]) == "no repeats to judge noise")
    }

    @Test func rendersMarkdownHTMLAndJSON() throws {
        let (s, runs) = try Self.synthetic()
        let r = SweepReport(title: "Test sweep", started: "2026-01-01T00:00:00Z", spec: s, runs: runs)
        let md = r.markdown()
        #expect(md.contains("**Best point:** `batch.size=1000000 linger.ms=5`"))
        #expect(md.contains("| 1 | `producer.linger.ms` |"))
        #expect(md.contains("within noise (±5.0%)"))
        #expect(md.contains("Held fixed: `producer.acks=all`"))
        let html = r.html()
        #expect(html.hasPrefix("<!doctype html>") && html.components(separatedBy: "<svg").count - 1 == 4)
        // Self-contained: nothing to fetch, nothing to run.
        for banned in ["<script", "src=", "href=", "<link", "@import"] { #expect(!html.contains(banned), "\(banned)") }
        let decoded = try JSONDecoder().decode(SweepReport.self, from: r.json())
        #expect(decoded == r)
        #expect(SVGBarChart(title: "a<b", bars: [.init(label: "x&y", value: 1)]).render().contains("a&lt;b"))
    }

    @Test func progressLineHasAnETA() {
        let line = sweepProgressLine(done: 3, total: 12, elapsedSeconds: 30, label: "linger.ms=5",
                                     measurement: SweepMeasurement(throughput: 123_456, p99Ms: 1.5, cpuSeconds: 2, peakRSSMiB: 80))
        #expect(line == "[3/12] linger.ms=5: 123456 rec/s, p99 1.50 ms, cpu 2.00 s, rss 80 MiB — ETA 1m30s")
    }
}
