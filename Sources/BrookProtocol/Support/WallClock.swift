#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock milliseconds since 1970: record timestamps, commit times, expiry.
///
/// The one wall clock of the client, the broker and the pipeline (each had its own, some through
/// `Date`, which rounds differently); truncated, as Java's `System.currentTimeMillis`.
@inlinable
public func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

extension Duration {
    /// Whole nanoseconds, saturating at the bounds of Int64.
    public var nanoseconds: Int64 {
        let c = components
        let (s, overflow) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return c.seconds < 0 ? .min : .max }
        return s &+ c.attoseconds / 1_000_000_000
    }

    /// Whole milliseconds (truncated), for the protocol's `…Ms` fields.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    /// Seconds as a `Double`, for rates and reports.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
