import Foundation
import Synchronization

/// This process's clocks and memory, for load tests: monotonic and wall time, CPU seconds
/// (getrusage) and the peak resident set (/proc/self/status VmHWM, resettable per run).
public enum ProcessStats {
    /// Monotonic nanoseconds (CLOCK_MONOTONIC; a vDSO call, cheap enough per record).
    @inline(__always)
    public static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Wall-clock microseconds since the epoch: what a producer stamps and a consumer compares
    /// with (both in this process or on machines with synchronised clocks).
    @inline(__always)
    public static func wallMicros() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// utime + stime of this process.
    public static func cpuSeconds() -> Double {
        var ru = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
        #else
        getrusage(RUSAGE_SELF, &ru)
        #endif
        return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
    }

    /// Peak resident set in KiB since start or the last ``resetPeakRSS()``; 0 without /proc.
    public static func peakRSSKiB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// Resets the peak to the current resident set (Linux ≥ 4.0: `5` to /proc/self/clear_refs),
    /// so each sweep run reports its own peak. Returns false where that is unsupported (the
    /// peak is then the process's).
    @discardableResult
    public static func resetPeakRSS() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        return (try? h.write(contentsOf: Data("5".utf8))) != nil
    }
}

/// Send times of in-flight records, indexed by the producer's record id in a ring: written by
/// the sending task before the send, read by the task reading delivery reports after the
/// acknowledgement (the producer's report hand-over orders the two). No lock per record.
///
/// The first record's id is only known once it was sent; ``start(firstId:)`` publishes it
/// (with its send time) and the reader waits for it in ``firstId()`` before reading any slot.
final class SendTimes: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Int64>
    private let mask: UInt64
    private let first = Atomic<UInt64>(0)
    private let started = Atomic<Bool>(false)

    /// Records `firstId` and its send time, for the reader.
    func start(firstId: UInt64, at t: Int64) {
        set(firstId, t)
        first.store(firstId, ordering: .relaxed)
        started.store(true, ordering: .releasing)
    }

    /// The first record's id, once the sender published it.
    func firstId() async -> UInt64 {
        while !started.load(ordering: .acquiring) { await Task.yield() }
        return first.load(ordering: .relaxed)
    }

    /// Room for `inFlight` records not yet reported.
    init(inFlight: Int) {
        var n = 1024
        while n < inFlight { n <<= 1 }
        slots = .allocate(capacity: n)
        slots.initialize(repeating: 0, count: n)
        mask = UInt64(n - 1)
    }

    deinit { slots.deallocate() }

    @inline(__always) func set(_ id: UInt64, _ t: Int64) { slots[Int(id & mask)] = t }
    @inline(__always) func get(_ id: UInt64) -> Int64 { slots[Int(id & mask)] }
}
