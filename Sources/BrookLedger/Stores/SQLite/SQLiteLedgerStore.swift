import Brook
import BrookPipeline
import BrookProtocol
import Synchronization

/// The embedded default store: one SQLite file in WAL mode, one connection on its own thread,
/// one writer. Every call runs whole on that thread, one after another (applies from all
/// partitions too), which SQLite would do anyway.
public final class SQLiteLedgerStore: LedgerStore {
    private let executor: SQLiteLedgerConnection
    /// Rows of this store's partitions between transactions. Only the executor's thread uses
    /// it (every transaction runs there, one at a time); the lock only makes that checkable.
    private let cache = Mutex(LedgerBookCache())

    public static func open(path: String) async throws -> SQLiteLedgerStore {
        SQLiteLedgerStore(executor: try await SQLiteLedgerTables.open(path: path))
    }

    private init(executor: SQLiteLedgerConnection) { self.executor = executor }

    public func close() async throws { try await executor.close() }

    /// Runs `body` with the tables on the connection's thread.
    private func tables<T: Sendable>(_ body: @escaping @Sendable (SQLiteLedgerTables) throws -> T) async throws -> T {
        try await executor.run { db in try body(SQLiteLedgerTables(db: db)) }
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await tables { try $0.storedOffsets(group: group, partitions: partitions) }
    }

    public func storedGroups(topic: String) async throws -> [String] {
        try await tables { t in
            var groups: [String] = []
            try t.db.run("SELECT DISTINCT group_id FROM ledger_offsets WHERE topic = ? ORDER BY group_id", [.text(topic)]) { groups.append($0.text(0)) }
            return groups
        }
    }

    public func apply(_ records: [PipelineRecord<LedgerEvent>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await apply(batches: [SinkBatch(partition: partition, records: records, expected: expected, next: next)], group: group)[0].get()
    }

    /// All batches in one transaction: SQLite has one writer, so one commit serves every
    /// partition whose batch was ready.
    public func apply(batches: [SinkBatch<LedgerEvent>], group: String) async throws -> [Result<Void, any Error>] {
        try await applyCombined(batches) { valid in
            try await tables { t in
                try self.cache.withLock { cache in
                    // Moved out, not copied (the transaction changes it in place), and put back
                    // only once the transaction committed: on any failure it stays empty.
                    var current: LedgerBookCache? = cache
                    cache = LedgerBookCache(capacity: cache.capacity)
                    do {
                        let fenced = try t.db.transaction { try t.applyStream(valid, group: group, cache: &current) }
                        cache = current.take()!
                        return fenced
                    } catch is LedgerCacheMismatch {
                        current = nil
                        return try t.db.transaction { try t.applyStream(valid, group: group, cache: &current) }
                    }
                }
            }
        }
    }

    public func balances() async throws -> [CashKey: Int64] { try await tables { try $0.balances() } }

    public func positions() async throws -> [PositionKey: Int64] { try await tables { try $0.positions() } }

    public func outcome(of eventId: String) async throws -> LedgerOutcome? {
        let row: (String, String?)? = try await tables { t in
            var found: (String, String?)?
            try t.db.run("SELECT status, reason FROM processed_events WHERE event_id = ?", [.text(eventId)]) { found = ($0.text(0), $0.optionalText(1)) }
            return found
        }
        return row.map { storedOutcome(status: $0.0, reason: $0.1) }
    }

    public func processedCounts() async throws -> [String: Int] { try await tables { try $0.processedCounts() } }

    /// A deferred read transaction: in WAL mode every read in it sees the snapshot of its first
    /// read, and the writer is not blocked.
    public func state(group: String, partitions: [TopicPartition]) async throws -> LedgerStoreState {
        try await tables { t in
            try t.db.transaction(immediate: false) {
                LedgerStoreState(storedOffsets: try t.storedOffsets(group: group, partitions: partitions),
                                 cash: try t.balances(), positions: try t.positions(), processedCounts: try t.processedCounts())
            }
        }
    }

    public func pendingOutbox(limit: Int) async throws -> [OutboxEntry] {
        try await tables { t in
            var out: [OutboxEntry] = []
            try t.db.run("SELECT event_id, account, payload FROM outbox ORDER BY seq LIMIT ?", [.int(limit)]) {
                out.append(OutboxEntry(eventId: $0.text(0), key: $0.text(1), value: $0.blob(2)))
            }
            return out
        }
    }

    public func markPublished(_ eventIds: [String]) async throws {
        try await tables { t in
            try t.db.transaction {
                for id in eventIds { try t.db.run("DELETE FROM outbox WHERE event_id = ?", [.text(id)]) }
            }
        }
    }
}
