import Foundation

/// kafka-consumer-perf-test's output: a CSV header and one row for the whole run, or with
/// `--show-detailed-stats` one row per reporting interval.
public enum ConsumerPerfReport {
    /// The columns shared by both forms.
    static let tail = "data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"

    /// The header line.
    public static func header(detailed: Bool) -> String {
        (detailed ? "time, threadId, " : "start.time, end.time, ") + tail
    }

    /// What a row measures: totals from the start (or over one interval).
    public struct Sample: Sendable, Equatable {
        /// Start, ms since the epoch.
        public var startMillis: Int64
        /// End, ms since the epoch.
        public var endMillis: Int64
        /// Key and value bytes read.
        public var bytes: Int
        /// Records read.
        public var records: Int
        /// Time spent joining the group before the first record.
        public var rebalanceMillis: Int64

        /// A sample.
        public init(startMillis: Int64, endMillis: Int64, bytes: Int, records: Int, rebalanceMillis: Int64) {
            (self.startMillis, self.endMillis, self.bytes, self.records, self.rebalanceMillis) =
                (startMillis, endMillis, bytes, records, rebalanceMillis)
        }
    }

    /// The summary row: `start.time, end.time, MB, MB/s, n, n/s, rebalance ms, fetch ms,
    /// fetch MB/s, fetch n/s`; the fetch columns exclude the rebalance time, as Java's do.
    public static func row(_ s: Sample) -> String {
        date(s.startMillis) + ", " + date(s.endMillis) + ", " + numbers(s)
    }

    /// A detailed row: the interval's end time and the thread (always 0: one consumer loop).
    public static func detailedRow(_ s: Sample, threadId: Int = 0) -> String {
        date(s.endMillis) + ", \(threadId), " + numbers(s)
    }

    static func numbers(_ s: Sample) -> String {
        let mb = Double(s.bytes) / 1_048_576
        let elapsed = max(Double(s.endMillis - s.startMillis) / 1000, 1e-9)
        let fetchMs = max(s.endMillis - s.startMillis - s.rebalanceMillis, 0)
        let fetchS = max(Double(fetchMs) / 1000, 1e-9)
        return "\(fixed(mb, 4)), \(fixed(mb / elapsed, 4)), \(s.records), \(fixed(Double(s.records) / elapsed, 4)), "
            + "\(s.rebalanceMillis), \(fetchMs), \(fixed(mb / fetchS, 4)), \(fixed(Double(s.records) / fetchS, 4))"
    }

    /// Java's `yyyy-MM-dd HH:mm:ss:SSS` (in UTC here, so runs compare across machines).
    public static func date(_ millis: Int64) -> String {
        var t = time_t(millis / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d:%03d", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(millis % 1000))
    }
}
