import Synchronization

/// A broadcast wake-up without lost signals: a waiter reads ``generation``, checks its
/// condition, and waits only while the generation is unchanged. ``signal()`` bumps the
/// generation and wakes every waiter.
final class AsyncSignal: Sendable {
    private enum Waiter {
        case pending
        case registered(CheckedContinuation<Void, Never>)
    }

    private struct State {
        var generation: UInt64 = 0
        var nextId: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())

    init() {}

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

    /// Returns once the generation differs from `since`, after `timeout`, or when the task is
    /// cancelled.
    func wait(since: UInt64, timeout: Duration? = nil) async {
        let id = state.withLock { s -> UInt64? in
            guard s.generation == since else { return nil }
            s.nextId &+= 1
            s.waiters[s.nextId] = .pending
            return s.nextId
        }
        guard let id else { return }
        let timer = timeout.map { t in
            Task { [weak self] in
                try? await Task.sleep(for: t)
                self?.fire(id)
            }
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
