import NIOCore
import NIOPosix
import Synchronization

/// The client's one wake-up signal, for the consumer's loops and the producer's senders.
///
/// Broadcast without lost signals: a waiter reads ``generation``, checks its condition, and waits
/// only while the generation is unchanged (``wait(since:timeout:)``); ``signal()`` bumps the
/// generation and wakes every waiter. A single consuming waiter can instead use
/// ``wait(until:)``, which remembers a signal sent while nobody waited (the producer's use).
/// Timeouts are event-loop timers, not a sleeping task per wait.
final class AsyncSignal: Sendable {
    private enum Waiter {
        case pending
        case registered(CheckedContinuation<Void, Never>)
    }

    private struct State {
        var generation: UInt64 = 0
        /// The generation the last ``wait(until:)`` returned at.
        var consumed: UInt64 = 0
        var nextId: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    func signal() {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation &+= 1
            guard !s.waiters.isEmpty else { return [] }
            var out: [CheckedContinuation<Void, Never>] = []
            for w in s.waiters.values {
                if case .registered(let c) = w { out.append(c) }
            }
            // Pending waiters see the new generation when they register.
            s.waiters.removeAll(keepingCapacity: true)
            return out
        }
        for c in ready { c.resume() }
    }

    /// Returns after a ``signal()`` not yet consumed by an earlier call (at once if one was sent
    /// meanwhile), at `deadline`, or on cancellation; one waiter at a time.
    func wait(until deadline: ContinuousClock.Instant?) async {
        let since = state.withLock { $0.consumed }
        await wait(since: since, timeout: deadline.map { $0 - .now })
        state.withLock { $0.consumed = $0.generation }
    }

    /// Returns once the generation differs from `since`, after `timeout`, or when the task is
    /// cancelled.
    func wait(since: UInt64, timeout: Duration? = nil) async {
        if let timeout, timeout <= .zero { return }
        let id = state.withLock { s -> UInt64? in
            guard s.generation == since else { return nil }
            s.nextId &+= 1
            s.waiters[s.nextId] = .pending
            return s.nextId
        }
        guard let id else { return }
        let timer = timeout.map { t in
            eventLoop.scheduleTask(in: .nanoseconds(t.nanoseconds)) { [weak self] in self?.fire(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    guard case .pending = s.waiters[id], s.generation == since else {
                        s.waiters[id] = nil
                        return true
                    }
                    s.waiters[id] = .registered(c)
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            self.fire(id)
        }
        timer?.cancel()
    }

    private func fire(_ id: UInt64) {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            switch s.waiters[id] {
            case .registered(let c)?:
                s.waiters[id] = nil
                return c
            case .pending?:
                // Not registered yet: removing the entry makes the registration return at once.
                s.waiters[id] = nil
                return nil
            case nil:
                return nil
            }
        }
        c?.resume()
    }
}
