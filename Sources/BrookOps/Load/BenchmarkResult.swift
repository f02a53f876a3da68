import Foundation
import Histogram

/// `brook loadtest e2e --json`: OpenMessaging Benchmark's `TestResult` field names, so its
/// charting scripts (`bin/create_charts.py`) read Brook's runs. Per-interval series are lists
/// (one entry per reporting interval); `aggregated…` fields cover the whole measured run.
/// Latencies in milliseconds, rates in records per second, backlog in records.
public struct BenchmarkResult: Codable, Sendable, Equatable {
    public var workload: String
    public var driver = "brook"
    public var messageSize: Int
    public var topics = 1
    public var partitions: Int
    public var producersPerTopic: Int
    public var consumersPerTopic: Int

    public var publishRate: [Double] = []
    public var publishErrorRate: [Double] = []
    public var consumeRate: [Double] = []
    public var backlog: [Int64] = []

    public var publishLatencyAvg: [Double] = []
    public var publishLatency50pct: [Double] = []
    public var publishLatency75pct: [Double] = []
    public var publishLatency95pct: [Double] = []
    public var publishLatency99pct: [Double] = []
    public var publishLatency999pct: [Double] = []
    public var publishLatency9999pct: [Double] = []
    public var publishLatencyMax: [Double] = []

    public var aggregatedPublishLatencyAvg: Double = 0
    public var aggregatedPublishLatency50pct: Double = 0
    public var aggregatedPublishLatency75pct: Double = 0
    public var aggregatedPublishLatency95pct: Double = 0
    public var aggregatedPublishLatency99pct: Double = 0
    public var aggregatedPublishLatency999pct: Double = 0
    public var aggregatedPublishLatency9999pct: Double = 0
    public var aggregatedPublishLatencyMax: Double = 0

    public var endToEndLatencyAvg: [Double] = []
    public var endToEndLatency50pct: [Double] = []
    public var endToEndLatency75pct: [Double] = []
    public var endToEndLatency95pct: [Double] = []
    public var endToEndLatency99pct: [Double] = []
    public var endToEndLatency999pct: [Double] = []
    public var endToEndLatency9999pct: [Double] = []
    public var endToEndLatencyMax: [Double] = []

    public var aggregatedEndToEndLatencyAvg: Double = 0
    public var aggregatedEndToEndLatency50pct: Double = 0
    public var aggregatedEndToEndLatency75pct: Double = 0
    public var aggregatedEndToEndLatency95pct: Double = 0
    public var aggregatedEndToEndLatency99pct: Double = 0
    public var aggregatedEndToEndLatency999pct: Double = 0
    public var aggregatedEndToEndLatency9999pct: Double = 0
    public var aggregatedEndToEndLatencyMax: Double = 0

    public init(workload: String, messageSize: Int, partitions: Int, producersPerTopic: Int, consumersPerTopic: Int) {
        self.workload = workload
        self.messageSize = messageSize
        self.partitions = partitions
        self.producersPerTopic = producersPerTopic
        self.consumersPerTopic = consumersPerTopic
    }

    /// Appends one interval.
    public mutating func append(_ i: E2EInterval) {
        publishRate.append(i.publishRate)
        publishErrorRate.append(i.publishErrorRate)
        consumeRate.append(i.consumeRate)
        backlog.append(i.backlog)
        let p = i.publishLatency
        publishLatencyAvg.append(p.avg); publishLatency50pct.append(p.p50); publishLatency75pct.append(p.p75)
        publishLatency95pct.append(p.p95); publishLatency99pct.append(p.p99); publishLatency999pct.append(p.p999)
        publishLatency9999pct.append(p.p9999); publishLatencyMax.append(p.max)
        let e = i.endToEndLatency
        endToEndLatencyAvg.append(e.avg); endToEndLatency50pct.append(e.p50); endToEndLatency75pct.append(e.p75)
        endToEndLatency95pct.append(e.p95); endToEndLatency99pct.append(e.p99); endToEndLatency999pct.append(e.p999)
        endToEndLatency9999pct.append(e.p9999); endToEndLatencyMax.append(e.max)
    }

    /// Sets the aggregated fields.
    public mutating func setAggregated(publish p: LatencyPercentiles, endToEnd e: LatencyPercentiles) {
        aggregatedPublishLatencyAvg = p.avg; aggregatedPublishLatency50pct = p.p50; aggregatedPublishLatency75pct = p.p75
        aggregatedPublishLatency95pct = p.p95; aggregatedPublishLatency99pct = p.p99; aggregatedPublishLatency999pct = p.p999
        aggregatedPublishLatency9999pct = p.p9999; aggregatedPublishLatencyMax = p.max
        aggregatedEndToEndLatencyAvg = e.avg; aggregatedEndToEndLatency50pct = e.p50; aggregatedEndToEndLatency75pct = e.p75
        aggregatedEndToEndLatency95pct = e.p95; aggregatedEndToEndLatency99pct = e.p99; aggregatedEndToEndLatency999pct = e.p999
        aggregatedEndToEndLatency9999pct = e.p9999; aggregatedEndToEndLatencyMax = e.max
    }

    /// Pretty, key-sorted JSON.
    public func json() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}

/// One reporting interval of `brook loadtest e2e`.
public struct E2EInterval: Sendable, Equatable {
    public var seconds: Double
    public var publishRate: Double
    public var publishErrorRate: Double
    public var consumeRate: Double
    /// Records published and not yet consumed at the interval's end.
    public var backlog: Int64
    public var publishLatency: LatencyPercentiles
    public var endToEndLatency: LatencyPercentiles

    /// `brook loadtest e2e`'s progress line, in OpenMessaging Benchmark's words.
    public var line: String {
        "Pub rate \(fixed(publishRate, 1)) msg/s | Cons rate \(fixed(consumeRate, 1)) msg/s | Backlog \(backlog) | "
            + "Pub Latency (ms) avg \(fixed(publishLatency.avg, 2)) 50% \(fixed(publishLatency.p50, 2)) 99% \(fixed(publishLatency.p99, 2)) max \(fixed(publishLatency.max, 2)) | "
            + "E2E Latency (ms) 50% \(fixed(endToEndLatency.p50, 2)) 95% \(fixed(endToEndLatency.p95, 2)) 99% \(fixed(endToEndLatency.p99, 2)) "
            + "99.9% \(fixed(endToEndLatency.p999, 2)) max \(fixed(endToEndLatency.max, 2))"
    }
}

/// Counts of one e2e run, split into intervals: publish and end-to-end latencies go into an
/// interval histogram and an aggregated one. Pure (callers pass counts and clock readings).
public struct E2EAccumulator: Sendable {
    private var published = 0
    private var failedCount = 0
    private var consumed = 0
    private var totalPublished: Int64 = 0
    private var totalConsumed: Int64 = 0
    private var intervalPublish: Histogram<UInt64>
    private var intervalE2E: Histogram<UInt64>
    public private(set) var aggregatedPublish: Histogram<UInt64>
    public private(set) var aggregatedE2E: Histogram<UInt64>

    public init() {
        func h() -> Histogram<UInt64> { Histogram(highestTrackableValue: ProducerPerfStats.highestMicros, numberOfSignificantValueDigits: .three) }
        (intervalPublish, intervalE2E, aggregatedPublish, aggregatedE2E) = (h(), h(), h(), h())
    }

    /// A record acknowledged `latencyMicros` after it was sent.
    public mutating func published(latencyMicros: Int64) {
        let v = min(UInt64(max(latencyMicros, 0)), ProducerPerfStats.highestMicros)
        _ = intervalPublish.record(v)
        _ = aggregatedPublish.record(v)
        published += 1
        totalPublished += 1
    }

    /// A record the producer reported as failed.
    public mutating func publishFailed() { failedCount += 1 }

    /// A record handed to the application `latencyMicros` after its producer timestamp.
    public mutating func consumed(latencyMicros: Int64) {
        let v = min(UInt64(max(latencyMicros, 0)), ProducerPerfStats.highestMicros)
        _ = intervalE2E.record(v)
        _ = aggregatedE2E.record(v)
        consumed += 1
        totalConsumed += 1
    }

    public var backlog: Int64 { max(totalPublished - totalConsumed, 0) }
    public var totals: (published: Int64, consumed: Int64) { (totalPublished, totalConsumed) }

    /// Closes the interval that lasted `seconds` and starts the next.
    public mutating func closeInterval(seconds: Double) -> E2EInterval {
        let s = max(seconds, 1e-9)
        let i = E2EInterval(
            seconds: seconds, publishRate: Double(published) / s, publishErrorRate: Double(failedCount) / s,
            consumeRate: Double(consumed) / s, backlog: backlog,
            publishLatency: LatencyPercentiles(intervalPublish), endToEndLatency: LatencyPercentiles(intervalE2E))
        intervalPublish.reset()
        intervalE2E.reset()
        (published, failedCount, consumed) = (0, 0, 0)
        return i
    }
}
