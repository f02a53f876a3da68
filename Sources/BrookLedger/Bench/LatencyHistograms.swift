import BrookPipeline
import CoreMetrics
import Foundation
import Histogram
import Synchronization

/// Latency histograms for the benchmark's report: a swift-metrics factory that keeps the
/// pipeline's stage timers (``PipelineStage``, `brook_pipeline_stage_seconds`) as HdrHistograms,
/// plus the ones the benchmark records itself (produce→acknowledged, the poller's trade→applied).
///
/// Values are kept in microseconds (1 µs … 1 h, three significant digits).
public final class LatencyHistograms: MetricsFactory, Sendable {
    private let histograms = Mutex<[String: Histogram<UInt64>]>([:])

    public init() {}

    /// Records one value of histogram `name`.
    public func record(_ name: String, nanoseconds: Int64) {
        let us = UInt64(max(nanoseconds, 0) / 1000)
        histograms.withLock { h in
            if h[name] == nil { h[name] = Self.empty() }
            _ = h[name]!.record(min(us, Self.highest))
        }
    }

    /// Records many values of `name` at once (one lock for all).
    public func record(_ name: String, nanoseconds values: [Int64]) {
        guard !values.isEmpty else { return }
        histograms.withLock { h in
            if h[name] == nil { h[name] = Self.empty() }
            for v in values { _ = h[name]!.record(min(UInt64(max(v, 0) / 1000), Self.highest)) }
        }
    }

    /// Forgets everything recorded so far (between the benchmark's phases).
    public func reset() { histograms.withLock { $0.removeAll() } }

    /// p50/p99/p99.9/max of histogram `name` in milliseconds, nil when nothing was recorded.
    public func summary(_ name: String) -> LatencySummary? {
        histograms.withLock { h in
            guard let x = h[name], x.totalCount > 0 else { return nil }
            return LatencySummary(
                count: x.totalCount,
                p50: Double(x.valueAtPercentile(50)) / 1000, p99: Double(x.valueAtPercentile(99)) / 1000,
                p999: Double(x.valueAtPercentile(99.9)) / 1000, max: Double(x.max) / 1000)
        }
    }

    static let highest: UInt64 = 3_600_000_000
    static func empty() -> Histogram<UInt64> { Histogram(highestTrackableValue: highest, numberOfSignificantValueDigits: .three) }

    // MARK: - MetricsFactory

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard label == PipelineStage.metricLabel, let stage = dimensions.first(where: { $0.0 == "stage" })?.1 else {
            return NOOPMetricsHandler.instance
        }
        return StageHandler(name: stage, owner: self)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}

    private final class StageHandler: TimerHandler, Sendable {
        let name: String
        let owner: LatencyHistograms
        init(name: String, owner: LatencyHistograms) {
            self.name = name
            self.owner = owner
        }
        func recordNanoseconds(_ duration: Int64) { owner.record(name, nanoseconds: duration) }
    }
}

/// Percentiles of one latency histogram, in milliseconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var count: UInt64
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
}
