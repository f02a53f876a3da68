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

/// A mutex around the producer's shared state (``ProducerEngineState``), which holds
/// non-Sendable classes (batches, partitions).
///
/// `@unchecked Sendable` is safe because the state is reachable only inside `withLock`, with the
/// mutex held; a batch leaves it only to the one sender task that owns it while it is in flight.
/// The state lives behind a pointer so accessing it costs no dynamic exclusivity check (one per
/// field access on a class property), which the append path would pay per record.
final class ProducerLock<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let state: UnsafeMutablePointer<State>

    init(_ initial: State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        state = .allocate(capacity: 1)
        state.initialize(to: initial)
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state.pointee)
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
