#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import Synchronization

/// A plain mutex for state that holds non-Sendable classes (batches, partitions): those never
/// leave the lock except to the one task that owns them at the time.
final class ProducerLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Wakes one waiting task: a signal sent while nobody waits is remembered, so it is never lost.
/// A waiter can give a deadline, after which it wakes by itself.
final class WakeupSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var timer: Scheduled<Void>?
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    func signal() {
        let (waiter, timer): (CheckedContinuation<Void, Never>?, Scheduled<Void>?) = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                let t = s.timer
                s.timer = nil
                return (w, t)
            }
            s.pending = true
            return (nil, nil)
        }
        timer?.cancel()
        waiter?.resume()
    }

    /// Returns after `signal()` (or at once if one is pending), at `deadline`, or on cancellation.
    func wait(until deadline: ContinuousClock.Instant?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = ContinuousClock.now
                let resumeNow: Bool = state.withLock { s in
                    if s.pending || Task.isCancelled || (deadline.map { $0 <= now } ?? false) {
                        s.pending = false
                        return true
                    }
                    s.waiter = c
                    return false
                }
                if resumeNow {
                    c.resume()
                    return
                }
                if let deadline {
                    let nanos = max(0, (deadline - now).nanoseconds)
                    let timer = eventLoop.scheduleTask(in: .nanoseconds(nanos)) { [self] in self.signal() }
                    let stale: Bool = state.withLock { s in
                        guard s.waiter != nil else { return true }
                        s.timer = timer
                        return false
                    }
                    if stale { timer.cancel() }
                }
            }
        } onCancel: {
            signal()
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at the bounds of Int64.
    public var nanoseconds: Int64 {
        let c = components
        let (s, overflow) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return c.seconds < 0 ? .min : .max }
        return s &+ c.attoseconds / 1_000_000_000
    }

    /// Whole milliseconds.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }
}

/// Wall-clock milliseconds since 1970 (record timestamps).
@inlinable
public func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Kafka's sequence arithmetic: sequences wrap from Int32.max to 0.
@inline(__always)
func incrementSequence(_ sequence: Int32, by increment: Int32) -> Int32 {
    if sequence > Int32.max - increment { return increment - (Int32.max - sequence) - 1 }
    return sequence + increment
}

extension Murmur2 {
    /// Java's `toPositive(murmur2(key)) % partitions` for a key in a buffer.
    static func partition(keyBuffer key: ByteBuffer, partitions: Int32) -> Int32 {
        let h = key.withUnsafeReadableBytes { hash(raw: $0) }
        return (h & 0x7fff_ffff) % partitions
    }
}
