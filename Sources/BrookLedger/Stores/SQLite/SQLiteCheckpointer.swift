/// Copies the write-ahead log back into the database file on a connection and thread of its
/// own, so the writer never does it inside a transaction: SQLite's automatic checkpoint runs in
/// the committing connection, and on this workload cost the writer about a tenth of its time
/// (copying pages and an fsync, measured with `perf`). PASSIVE checkpoints never block the
/// writer or readers.
///
/// The writer keeps an automatic checkpoint at a much larger size as a backstop, so the log
/// stays bounded even if this one falls behind or stops.
final class SQLiteCheckpointer: Sendable {
    /// Pages of log at which the writer checkpoints itself (the backstop; 4 KiB pages).
    static let writerBackstopPages = 16_384
    private let executor: SQLiteExecutor
    private let loop: Task<Void, Never>

    /// Starts checkpointing `path` every `interval`.
    static func start(path: String, interval: Duration = .milliseconds(100)) async throws -> SQLiteCheckpointer {
        let executor = try await SQLiteExecutor.open(path: path)
        // It reads no tables: a page cache of its own would only add to the process's memory.
        try await executor.run { try $0.execute("PRAGMA cache_size=16") }
        return SQLiteCheckpointer(executor: executor, interval: interval)
    }

    private init(executor: SQLiteExecutor, interval: Duration) {
        self.executor = executor
        loop = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                // SQLITE_BUSY (another checkpoint is running) and the like: the next round retries.
                try? await executor.run { try $0.execute("PRAGMA wal_checkpoint(PASSIVE)") }
            }
        }
    }

    func stop() async {
        loop.cancel()
        await loop.value
        try? await executor.close()
    }
}

/// A ledger connection (its executor) and the checkpointer of its file, opened and closed together.
struct SQLiteLedgerConnection: Sendable {
    let executor: SQLiteExecutor
    let checkpointer: SQLiteCheckpointer

    /// Runs `body` with the connection on its thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) throws -> T) async throws -> T {
        try await executor.run(body)
    }

    func close() async throws {
        await checkpointer.stop()
        try await executor.close()
    }
}
