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
    /// One histogram behind its own lock: the pipeline's timers record into theirs per record
    /// without looking a name up (that lookup was a measurable share of the benchmark's CPU).
    private final class Slot: Sendable {
        let histogram = Mutex(LatencyHistograms.empty())
        func record(_ nanoseconds: Int64) { histogram.withLock { _ = $0.record(LatencyHistograms.micros(nanoseconds)) } }
    }

    private let slots = Mutex<[String: Slot]>([:])

    public init() {}

    private func slot(_ name: String) -> Slot {
        slots.withLock { s in
            if let slot = s[name] { return slot }
            let slot = Slot()
            s[name] = slot
            return slot
        }
    }

    private static func micros(_ nanoseconds: Int64) -> UInt64 { min(UInt64(max(nanoseconds, 0) / 1000), highest) }

    /// Records one value of histogram `name`.
    public func record(_ name: String, nanoseconds: Int64) { slot(name).record(nanoseconds) }

    /// Records many values of `name` at once (one lock for all).
    public func record(_ name: String, nanoseconds values: [Int64]) {
        guard !values.isEmpty else { return }
        slot(name).histogram.withLock { h in for v in values { _ = h.record(Self.micros(v)) } }
    }

    /// Forgets everything recorded so far (between the benchmark's phases).
    public func reset() {
        for s in slots.withLock({ Array($0.values) }) { s.histogram.withLock { $0.reset() } }
    }

    /// p50/p99/p99.9/max of histogram `name` in milliseconds, nil when nothing was recorded.
    public func summary(_ name: String) -> LatencySummary? {
        guard let slot = slots.withLock({ $0[name] }) else { return nil }
        return slot.histogram.withLock { x in
            guard x.totalCount > 0 else { return nil }
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
        return StageHandler(slot: slot(stage))
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}

    private final class StageHandler: TimerHandler, Sendable {
        let slot: Slot
        init(slot: Slot) { self.slot = slot }
        func recordNanoseconds(_ duration: Int64) { slot.record(duration) }
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
