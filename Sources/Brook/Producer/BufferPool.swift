import Metrics

/// `buffer.memory`: the bytes batches may reserve, and the callers waiting for some (served
/// first come, first served, so a big batch is not starved by small ones).
///
/// Not thread-safe: it lives inside the producer's locked state. Waking a waiter only resumes its
/// continuation (which enqueues its task), so it is safe under the lock.
struct BufferPool {
    struct Waiter {
        var id: UInt64
        var bytes: Int
        var continuation: CheckedContinuation<Void, any Error>
    }

    let capacity: Int
    private(set) var available: Int
    private(set) var waiters: [Waiter] = []
    private var nextWaiterId: UInt64 = 0
    private let gauge: Gauge

    init(capacity: Int, gauge: Gauge) {
        self.capacity = capacity
        self.available = capacity
        self.gauge = gauge
    }

    var used: Int { capacity - available }
    var hasWaiters: Bool { !waiters.isEmpty }

    /// Takes `bytes` now if nobody waits before us and they are free.
    mutating func take(_ bytes: Int) -> Bool {
        guard waiters.isEmpty, available >= bytes else { return false }
        available -= bytes
        gauge.record(used)
        return true
    }


    /// Gives bytes back and hands what is free to the waiters in order.
    mutating func release(_ bytes: Int) {
        available += bytes
        wakeWaiters()
    }

    mutating func newWaiterId() -> UInt64 {
        nextWaiterId += 1
        return nextWaiterId
    }

    mutating func enqueue(_ w: Waiter) { waiters.append(w) }

    /// Removes a waiter that gave up (timeout, cancellation); returns its continuation.
    mutating func remove(waiter id: UInt64) -> CheckedContinuation<Void, any Error>? {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        let w = waiters.remove(at: i)
        if i == 0 { wakeWaiters() }
        return w.continuation
    }

    /// Removes every waiter (the producer stops); the caller fails them.
    mutating func removeAllWaiters() -> [Waiter] {
        defer { waiters.removeAll() }
        return waiters
    }

    private mutating func wakeWaiters() {
        while let first = waiters.first, first.bytes <= available {
            available -= first.bytes
            waiters.removeFirst()
            first.continuation.resume()
        }
        gauge.record(used)
    }
}
