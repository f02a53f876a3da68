/// A FIFO async mutex. Actors are reentrant at every `await`, so an actor owning one database
/// connection needs this to keep a transaction's statements from interleaving with another
/// call's.
actor AsyncGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        defer {
            // Hand the gate straight to the next waiter (it stays busy), or free it.
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
