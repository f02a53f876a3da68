/// Paces a sender at a target rate, as kafka-producer-perf-test's `--throughput`: record `n`
/// is due `n / rate` seconds after the start. Asked before each send, it answers how long to
/// wait; waits shorter than ``minimumSleep`` are deferred and summed, since sleeping a few
/// microseconds per record costs more than the records do.
///
/// Pure: the caller passes the elapsed time, so tests need no clock.
public struct ThroughputThrottle: Sendable, Equatable {
    /// Records per second; nil is unthrottled (`--throughput -1`).
    public let recordsPerSecond: Double?
    /// The shortest sleep worth taking.
    public let minimumSleep: Duration

    /// A throttle at `recordsPerSecond` (nil or ≤ 0: unthrottled).
    public init(recordsPerSecond: Double?, minimumSleep: Duration = .milliseconds(2)) {
        self.recordsPerSecond = recordsPerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.minimumSleep = minimumSleep
    }

    /// kafka-producer-perf-test's convention: a negative `--throughput` is unthrottled.
    public init(throughputFlag: Double) {
        self.init(recordsPerSecond: throughputFlag < 0 ? nil : throughputFlag)
    }

    /// How long to wait before sending record number `sent` (0-based) when `elapsed` has passed
    /// since the first send; nil to send now.
    public func delay(beforeRecord sent: Int, elapsed: Duration) -> Duration? {
        guard let rate = recordsPerSecond else { return nil }
        let due = Duration.nanoseconds(Int64((Double(sent) / rate * 1e9).rounded()))
        let ahead = due - elapsed
        return ahead >= minimumSleep ? ahead : nil
    }
}
