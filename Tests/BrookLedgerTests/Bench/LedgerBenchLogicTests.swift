@testable import BrookLedger
import BrookPipeline
import Foundation
import Testing

/// The benchmark's decisions and report, without a broker or a database.
@Suite("Ledger bench logic")
struct LedgerBenchLogicTests {
    func outcome(events: Int = 10_000, rate: Double? = 1_000, ingest: Double = 10, end: Int = 0, secondHalf: Int = 0) -> PhaseOutcome {
        PhaseOutcome(events: events, rate: rate, ingestSeconds: ingest, backlogAtEnd: end, backlogSecondHalfMax: secondHalf,
                     totalSeconds: ingest + 0.1, cpuSeconds: nil)
    }

    @Test func aPhaseThatKeptUpIsSustained() {
        #expect(SustainedRule.isSustained(outcome()))
        // Half a second of events waiting at the end is still keeping up; more is not.
        #expect(SustainedRule.isSustained(outcome(end: 500, secondHalf: 1_000)))
        #expect(!SustainedRule.isSustained(outcome(end: 501)))
        // A backlog that peaked above a second's worth in the second half means lag grew.
        #expect(!SustainedRule.isSustained(outcome(secondHalf: 1_001)))
    }

    @Test func aTradingSideThatFellBehindScheduleIsNotSustained() {
        // 10,000 events at 1,000/s are due in 10 s; 5% slack plus 50 ms is allowed.
        #expect(SustainedRule.isSustained(outcome(ingest: 10.54)))
        #expect(!SustainedRule.isSustained(outcome(ingest: 10.6)))
    }

    @Test func aFlatOutPhaseIsNeverCalledSustained() {
        #expect(!SustainedRule.isSustained(outcome(rate: nil)))
        #expect(!SustainedRule.isSustained(outcome(rate: 0)))
    }

    @Test func smallRatesKeepAFloorOfAHundredEvents() {
        // At 10 events/s half a second is 5 events; a floor of 100 avoids calling noise lag.
        #expect(SustainedRule.isSustained(outcome(events: 100, rate: 10, ingest: 10, end: 100, secondHalf: 200)))
    }

    @Test func candidatesStepDownFifteenPercentFromFlatOut() {
        let c = SustainedRule.candidates(flatOut: 10_000, steps: 4)
        #expect(c.count == 4)
        #expect(c[0] == 10_000)
        #expect(abs(c[1] - 8_500) < 1e-6)
        #expect(abs(c[3] - 10_000 * 0.85 * 0.85 * 0.85) < 1e-6)
        #expect(SustainedRule.candidates(flatOut: 0.5).isEmpty)
    }

    @Test func procStatLineCountsBusyTimeOnly() throws {
        // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let busy = try #require(SystemCPU.parse("cpu  100 20 30 5000 700 4 6 10 0 0"))
        #expect(abs(busy - 170 / ticks) < 1e-9)
        #expect(SystemCPU.parse("cpu  1 2 3") == nil)
        #expect(SystemCPU.busySeconds() != nil)
    }

    @Test func histogramsGivePercentilesInMilliseconds() throws {
        let h = LatencyHistograms()
        #expect(h.summary("x") == nil)
        // 1..1000 ms, one value each.
        h.record("x", nanoseconds: (1...1000).map { Int64($0) * 1_000_000 })
        let s = try #require(h.summary("x"))
        #expect(s.count == 1000)
        #expect(abs(s.p50 - 500) <= 1)
        #expect(abs(s.p99 - 990) <= 1)
        #expect(abs(s.max - 1000) <= 1)
        h.reset()
        #expect(h.summary("x") == nil)
    }

    @Test func pipelineStageTimersLandInTheirHistogram() throws {
        let h = LatencyHistograms()
        let timer = h.makeTimer(label: PipelineStage.metricLabel, dimensions: [("stage", "sink_transaction")])
        timer.recordNanoseconds(2_000_000)
        #expect(try #require(h.summary("sink_transaction")).p50 == 2)
        // Timers that are not the pipeline's stages are ignored.
        h.makeTimer(label: "something_else", dimensions: []).recordNanoseconds(5)
        #expect(h.summary("something_else") == nil)
    }

    @Test func jsonCarriesTheKeysTheIssueNames() throws {
        var stream = SideResult(flatOut: 20_000)
        stream.maxPerSecond = 12_000
        stream.halfRate = 6_000
        stream.latencyAtHalf = LatencySummary(count: 10, p50: 9.44, p99: 40, p999: 60, max: 70)
        var poller = SideResult(flatOut: 10_000)
        poller.maxPerSecond = 6_000
        poller.latencyAtHalf = LatencySummary(count: 10, p50: 14, p99: 77, p999: 90, max: 95)
        var r = LedgerBenchResult(skew: "uniform", events: 1000, stream: stream, poller: poller)
        r.store = "sqlite"
        r.workerPeakRSSMiB = 60
        let o = r.json
        for key in ["store", "skew", "stream_events_per_s", "poller_events_per_s", "ratio", "stream_p50_ms", "stream_p99_ms",
                    "poller_p50_ms", "poller_p99_ms", "worker_peak_rss_mib"] {
            #expect(o[key] != nil, "missing \(key)")
        }
        #expect(o["ratio"] as? Double == 2)
        #expect(o["stream_p50_ms"] as? Double == 9.4)
        // And it serialises.
        _ = try JSONSerialization.data(withJSONObject: o)
    }
}
