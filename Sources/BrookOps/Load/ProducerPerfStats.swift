import Foundation
import Histogram

/// kafka-producer-perf-test's statistics: acknowledged records counted in 5-second windows
/// (one progress line each) and in total (the final line with percentiles), latency being
/// send → acknowledgement per record, kept in an HdrHistogram in microseconds.
///
/// Pure: the caller passes the clock readings (nanoseconds of any monotonic clock).
public struct ProducerPerfStats: Sendable {
    /// Window length; kafka-producer-perf-test reports every 5 s.
    public let reportingInterval: Int64
    /// Records acknowledged.
    public private(set) var count = 0
    /// Their value bytes.
    public private(set) var bytes = 0
    /// Records that failed.
    public private(set) var failed = 0
    /// Send → acknowledgement latencies in microseconds.
    public private(set) var histogram: Histogram<UInt64>
    private var totalLatencyMicros: Double = 0
    private var maxLatencyMicros: UInt64 = 0
    private let start: Int64
    private var window: Window

    struct Window: Sendable {
        var start: Int64
        var count = 0
        var bytes = 0
        var totalLatencyMicros: Double = 0
        var maxLatencyMicros: UInt64 = 0
    }

    /// Latencies above an hour are clamped to an hour.
    static let highestMicros: UInt64 = 3_600_000_000

    /// Statistics of a run that started at `startNanos`.
    public init(startNanos: Int64, reportingIntervalNanos: Int64 = 5_000_000_000) {
        reportingInterval = reportingIntervalNanos
        start = startNanos
        window = Window(start: startNanos)
        histogram = Histogram(highestTrackableValue: Self.highestMicros, numberOfSignificantValueDigits: .three)
    }

    /// Counts one acknowledged record of `bytes` bytes whose latency was `latencyNanos`.
    public mutating func record(latencyNanos: Int64, bytes n: Int) {
        let us = min(UInt64(max(latencyNanos, 0) / 1000), Self.highestMicros)
        _ = histogram.record(us)
        count += 1
        bytes += n
        totalLatencyMicros += Double(us)
        maxLatencyMicros = max(maxLatencyMicros, us)
        window.count += 1
        window.bytes += n
        window.totalLatencyMicros += Double(us)
        window.maxLatencyMicros = max(window.maxLatencyMicros, us)
    }

    /// Counts a record the producer reported as failed (not in the latencies, as in Java).
    public mutating func recordFailure() { failed += 1 }

    /// The progress line when the window is over at `nowNanos` (and starts the next window),
    /// nil while it runs.
    public mutating func windowLine(nowNanos: Int64) -> String? {
        let elapsed = nowNanos - window.start
        guard elapsed >= reportingInterval else { return nil }
        let line = Self.progressLine(
            records: window.count, bytes: window.bytes, elapsedNanos: elapsed,
            avgLatencyMs: window.count > 0 ? window.totalLatencyMicros / Double(window.count) / 1000 : 0,
            maxLatencyMs: Double(window.maxLatencyMicros) / 1000)
        window = Window(start: nowNanos)
        return line
    }

    /// Percentiles of everything recorded so far.
    public var latency: LatencyPercentiles { LatencyPercentiles(histogram) }

    /// The final line at `nowNanos`.
    public func totalLine(nowNanos: Int64) -> String {
        Self.totalLine(
            records: count, bytes: bytes, elapsedNanos: nowNanos - start,
            avgLatencyMs: count > 0 ? totalLatencyMicros / Double(count) / 1000 : 0,
            maxLatencyMs: Double(maxLatencyMicros) / 1000, latency: latency)
    }

    /// `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.` —
    /// kafka-producer-perf-test's window line (MB = 2^20 bytes, as there).
    public static func progressLine(records: Int, bytes: Int, elapsedNanos: Int64, avgLatencyMs: Double, maxLatencyMs: Double) -> String {
        let s = max(Double(elapsedNanos) / 1e9, 1e-9)
        return "\(records) records sent, \(fixed(Double(records) / s, 1)) records/sec (\(fixed(Double(bytes) / s / 1_048_576, 2)) MB/sec), "
            + "\(fixed(avgLatencyMs, 1)) ms avg latency, \(fixed(maxLatencyMs, 1)) ms max latency."
    }

    /// The final line: the window line's fields plus `P ms 50th, P ms 95th, P ms 99th, P ms
    /// 99.9th.` Java prints whole milliseconds there because it measures in milliseconds;
    /// Brook measures in microseconds and prints two decimals, so sub-millisecond latencies
    /// do not all read 0.
    public static func totalLine(records: Int, bytes: Int, elapsedNanos: Int64, avgLatencyMs: Double, maxLatencyMs: Double,
                                 latency: LatencyPercentiles) -> String {
        let s = max(Double(elapsedNanos) / 1e9, 1e-9)
        return "\(records) records sent, \(fixed(Double(records) / s, 6)) records/sec (\(fixed(Double(bytes) / s / 1_048_576, 2)) MB/sec), "
            + "\(fixed(avgLatencyMs, 2)) ms avg latency, \(fixed(maxLatencyMs, 2)) ms max latency, "
            + "\(fixed(latency.p50, 2)) ms 50th, \(fixed(latency.p95, 2)) ms 95th, \(fixed(latency.p99, 2)) ms 99th, \(fixed(latency.p999, 2)) ms 99.9th."
    }
}

/// Latency percentiles in milliseconds (OpenMessaging Benchmark's set).
public struct LatencyPercentiles: Sendable, Codable, Equatable {
    /// Values recorded.
    public var count: Int
    /// Mean.
    public var avg: Double
    /// Median.
    public var p50: Double
    /// 75th percentile.
    public var p75: Double
    /// 95th percentile.
    public var p95: Double
    /// 99th percentile.
    public var p99: Double
    /// 99.9th percentile.
    public var p999: Double
    /// 99.99th percentile.
    public var p9999: Double
    /// Largest.
    public var max: Double

    /// Given percentiles (all 0: nothing recorded).
    public init(count: Int = 0, avg: Double = 0, p50: Double = 0, p75: Double = 0, p95: Double = 0, p99: Double = 0,
                p999: Double = 0, p9999: Double = 0, max: Double = 0) {
        (self.count, self.avg, self.p50, self.p75, self.p95) = (count, avg, p50, p75, p95)
        (self.p99, self.p999, self.p9999, self.max) = (p99, p999, p9999, max)
    }

    /// From a histogram of microseconds.
    public init(_ h: Histogram<UInt64>) {
        guard h.totalCount > 0 else {
            self.init()
            return
        }
        func ms(_ p: Double) -> Double { Double(h.valueAtPercentile(p)) / 1000 }
        self.init(count: Int(h.totalCount), avg: h.mean / 1000, p50: ms(50), p75: ms(75), p95: ms(95), p99: ms(99),
                  p999: ms(99.9), p9999: ms(99.99), max: Double(h.max) / 1000)
    }
}

/// `String(format: "%.Nf")` without Foundation's locale lookups.
func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "0" }
    return String(format: "%.\(decimals)f", x)
}
