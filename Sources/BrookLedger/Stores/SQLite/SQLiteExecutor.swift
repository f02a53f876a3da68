import NIOPosix

/// One SQLite connection and the one thread that uses it. Callers hand it a whole unit of work
/// (a transaction, a read) as a closure: one hop to the thread and one back, however many
/// statements run. SQLite calls block their thread (a writer waiting for the lock sleeps in
/// it), so every connection has its own thread and never starves another's.
final class SQLiteExecutor: @unchecked Sendable {
    // @unchecked: `handle` is not Sendable; it is touched only inside closures run on `thread`,
    // a pool of exactly one thread, so never from two threads and never concurrently.
    private let handle: SQLiteHandle
    private let thread: NIOThreadPool

    static func open(path: String) async throws -> SQLiteExecutor {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        do {
            let handle = try await thread.runIfActive { UncheckedBox(try SQLiteHandle(path: path)) }
            return SQLiteExecutor(handle: handle, thread: thread)
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
    }

    private init(handle: UncheckedBox<SQLiteHandle>, thread: NIOThreadPool) {
        self.handle = handle.value
        self.thread = thread
    }

    /// Runs `body` with the connection on its thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> T) async throws -> T {
        let handle = UncheckedBox(handle)
        return try await thread.runIfActive { try body(handle.value) }
    }

    func close() async throws {
        let handle = UncheckedBox(handle)
        try? await thread.runIfActive { handle.value.close() }
        try await thread.shutdownGracefully()
    }
}

/// Carries the connection into a closure that runs on its executor's thread.
private struct UncheckedBox<T>: @unchecked Sendable {
    // @unchecked: only ever opened on the executor's single thread (see SQLiteExecutor).
    let value: T
    init(_ value: T) { self.value = value }
}
