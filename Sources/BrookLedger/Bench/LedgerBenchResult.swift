import Foundation

/// One side's figures in ``LedgerBenchResult``.
public struct SideResult: Sendable {
    /// Applied events/s while the trading side handed events over flat out.
    public var flatOut: Double
    /// The highest paced rate at which the backlog stopped growing.
    public var maxPerSecond: Double = 0
    /// Busy CPU seconds of the whole machine per 1 000 events at `maxPerSecond`.
    public var cpuSecondsPer1000: Double?
    public var halfRate: Double = 0
    /// Trade handed over → effects committed, at `halfRate`.
    public var latencyAtHalf: LatencySummary?
    public var fixedRate: Double = 0
    public var latencyAtFixed: LatencySummary?
    /// Per-stage latency at `halfRate` (the stream's pipeline stages and produce→ack).
    public var stages: [String: LatencySummary] = [:]

    public init(flatOut: Double) { self.flatOut = flatOut }
}

/// What `brook ledger bench` reports: both sides, their ratio, latency by stage.
public struct LedgerBenchResult: Sendable, CustomStringConvertible {
    public var store = ""
    public var skew: String
    public var events: Int
    public var stream: SideResult
    public var poller: SideResult
    /// Peak RSS of a separate `brook ledger run` worker process catching up (MiB).
    public var workerPeakRSSMiB: Int?

    public var ratio: Double { poller.maxPerSecond > 0 ? stream.maxPerSecond / poller.maxPerSecond : 0 }

    /// The stages in the order a record passes them, with what each measures.
    static let stageOrder: [(String, String)] = [
        (LedgerBench.produceToAck, "produce → acknowledged (broker append, fsync)"),
        ("record_to_fetched", "produce → fetched by the worker"),
        ("fetched_to_lane", "fetched → taken by its lane"),
        ("lane_to_sink", "lane → sink transaction starts"),
        ("sink_transaction", "sink transaction (commit included)"),
        ("record_to_applied", "produce → committed (end to end)"),
        ("applied_to_committed", "committed → group offset committed (informational)"),
    ]

    public var description: String {
        func ms(_ s: LatencySummary?) -> String {
            guard let s else { return "n/a" }
            return String(format: "p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms", s.p50, s.p99, s.p999)
        }
        func cpu(_ x: Double?) -> String { x.map { String(format: "%.2f", $0) } ?? "n/a" }
        var lines: [String] = []
        lines.append("store \(store), \(skew) accounts")
        for (name, s) in [("stream", stream), ("poller", poller)] {
            lines.append(String(format: "%@: max sustained %.0f events/s (flat out %.0f), CPU %@ s per 1000 events; at half load (%.0f/s): %@",
                                name, s.maxPerSecond, s.flatOut, cpu(s.cpuSecondsPer1000), s.halfRate, ms(s.latencyAtHalf)))
        }
        lines.append(String(format: "stream/poller: %.1fx", ratio))
        lines.append(String(format: "at the fixed rate %.0f/s both hold: stream %@; poller %@", stream.fixedRate, ms(stream.latencyAtFixed), ms(poller.latencyAtFixed)))
        lines.append("stream stages at half load:")
        for (key, label) in Self.stageOrder {
            if let s = stream.stages[key] { lines.append("  \(label.padding(toLength: 52, withPad: " ", startingAt: 0)) \(ms(s))") }
        }
        if let rss = workerPeakRSSMiB { lines.append("worker peak RSS: \(rss) MiB") }
        return lines.joined(separator: "\n")
    }

    /// The figures as one JSON object (`--json FILE`).
    public var json: [String: Any] {
        func r(_ x: Double) -> Double { (x * 10).rounded() / 10 }
        var o: [String: Any] = [
            "store": store, "skew": skew, "events": events,
            "stream_events_per_s": r(stream.maxPerSecond), "poller_events_per_s": r(poller.maxPerSecond), "ratio": (ratio * 100).rounded() / 100,
            "stream_flat_out_events_per_s": r(stream.flatOut), "poller_flat_out_events_per_s": r(poller.flatOut),
            "stream_half_rate": r(stream.halfRate), "poller_half_rate": r(poller.halfRate), "fixed_rate": r(stream.fixedRate),
        ]
        for (prefix, s) in [("stream", stream.latencyAtHalf), ("poller", poller.latencyAtHalf), ("stream_fixed", stream.latencyAtFixed), ("poller_fixed", poller.latencyAtFixed)] {
            guard let s else { continue }
            o["\(prefix)_p50_ms"] = r(s.p50)
            o["\(prefix)_p99_ms"] = r(s.p99)
            o["\(prefix)_p999_ms"] = r(s.p999)
        }
        if let x = stream.cpuSecondsPer1000 { o["stream_cpu_s_per_1000"] = (x * 1000).rounded() / 1000 }
        if let x = poller.cpuSecondsPer1000 { o["poller_cpu_s_per_1000"] = (x * 1000).rounded() / 1000 }
        o["worker_peak_rss_mib"] = workerPeakRSSMiB.map { $0 as Any } ?? NSNull()
        var stages: [String: Any] = [:]
        for (k, s) in stream.stages { stages[k] = ["p50_ms": r(s.p50), "p99_ms": r(s.p99), "p999_ms": r(s.p999), "count": s.count] }
        o["stream_stages"] = stages
        return o
    }

    public func writeJSON(to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}
