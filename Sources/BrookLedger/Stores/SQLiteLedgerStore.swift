import Brook
import BrookPipeline
import SQLiteNIO

/// The embedded default store: one SQLite file in WAL mode, one connection, one writer. Its
/// gate serialises every call (applies from all partitions too), which SQLite would do anyway.
public final class SQLiteLedgerStore: LedgerStore {
    private let tables: SQLiteLedgerTables
    private let gate = AsyncGate()
    private var db: SQLiteConnection { tables.db }

    public static func open(path: String) async throws -> SQLiteLedgerStore {
        SQLiteLedgerStore(tables: try await SQLiteLedgerTables.open(path: path))
    }

    private init(tables: SQLiteLedgerTables) { self.tables = tables }

    public func close() async throws {
        try await gate.run { [tables] in try await tables.close() }
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await gate.run { [db] in try await Self.storedOffsets(db, group: group, partitions: partitions) }
    }

    public func storedGroups(topic: String) async throws -> [String] {
        try await query("SELECT DISTINCT group_id FROM ledger_offsets WHERE topic = ? ORDER BY group_id", [.text(topic)]).map { $0.text("group_id") }
    }

    public func apply(_ records: [PipelineRecord<LedgerEvent>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await apply(batches: [SinkBatch(partition: partition, records: records, expected: expected, next: next)], group: group)[0].get()
    }

    /// All batches in one transaction: SQLite has one writer, so one commit serves every
    /// partition whose batch was ready.
    public func apply(batches: [SinkBatch<LedgerEvent>], group: String) async throws -> [Result<Void, any Error>] {
        var (valid, results) = validatedBatches(batches)
        guard !valid.isEmpty else { return results }
        let fenced = try await gate.run { [tables, valid] in try await tables.transaction {
            try await tables.applyStream(valid, group: group)
        } }
        for (i, f) in fenced { results[i] = .failure(f) }
        return results
    }

    public func balances() async throws -> [CashKey: Int64] {
        try await gate.run { [db] in try await Self.balances(db) }
    }

    public func positions() async throws -> [PositionKey: Int64] {
        try await gate.run { [db] in try await Self.positions(db) }
    }

    public func outcome(of eventId: String) async throws -> LedgerOutcome? {
        let rows = try await query("SELECT status, reason FROM processed_events WHERE event_id = ?", [.text(eventId)])
        return rows.first.map { storedOutcome(status: $0.text("status"), reason: $0.column("reason")?.string) }
    }

    public func processedCounts() async throws -> [String: Int] {
        try await gate.run { [db] in try await Self.processedCounts(db) }
    }

    /// A deferred read transaction: in WAL mode every read in it sees the snapshot of its first
    /// read, and the writer is not blocked.
    public func state(group: String, partitions: [TopicPartition]) async throws -> LedgerStoreState {
        try await gate.run { [db] in
            _ = try await db.query("BEGIN DEFERRED")
            do {
                let state = LedgerStoreState(
                    storedOffsets: try await Self.storedOffsets(db, group: group, partitions: partitions),
                    cash: try await Self.balances(db), positions: try await Self.positions(db),
                    processedCounts: try await Self.processedCounts(db))
                _ = try await db.query("COMMIT")
                return state
            } catch {
                _ = try? await db.query("ROLLBACK")
                throw error
            }
        }
    }

    public func pendingOutbox(limit: Int) async throws -> [OutboxEntry] {
        try await query("SELECT event_id, account, payload FROM outbox ORDER BY seq LIMIT ?", [.int(limit)]).map {
            OutboxEntry(eventId: $0.text("event_id"), key: $0.text("account"), value: Array(buffer: $0.column("payload")?.blob ?? .init()))
        }
    }

    public func markPublished(_ eventIds: [String]) async throws {
        for chunk in eventIds.chunked(SQLiteLedgerTables.chunk) {
            _ = try await query("DELETE FROM outbox WHERE event_id IN (\(Array(repeating: "?", count: chunk.count).joined(separator: ",")))",
                                   chunk.map { .text($0) })
        }
    }
}

extension SQLiteLedgerStore {
    fileprivate static func storedOffsets(_ db: SQLiteConnection, group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let wanted = Set(partitions)
        var result: [TopicPartition: Int64] = [:]
        for row in try await db.query("SELECT topic, part, next_offset FROM ledger_offsets WHERE group_id = ?", [.text(group)]) {
            let tp = TopicPartition(topic: row.text("topic"), partition: Int32(row.int("part")))
            if wanted.contains(tp) { result[tp] = row.int("next_offset") }
        }
        return result
    }

    private static func balances(_ db: SQLiteConnection) async throws -> [CashKey: Int64] {
        var out: [CashKey: Int64] = [:]
        for row in try await db.query("SELECT account, currency, amount FROM balances") {
            out[CashKey(row.text("account"), row.text("currency"))] = row.int("amount")
        }
        return out
    }

    private static func positions(_ db: SQLiteConnection) async throws -> [PositionKey: Int64] {
        var out: [PositionKey: Int64] = [:]
        for row in try await db.query("SELECT account, symbol, quantity_micros FROM positions") {
            out[PositionKey(row.text("account"), row.text("symbol"))] = row.int("quantity_micros")
        }
        return out
    }

    private static func processedCounts(_ db: SQLiteConnection) async throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try await db.query("SELECT status, COUNT(*) AS n FROM processed_events GROUP BY status") {
            out[row.text("status")] = Int(row.int("n"))
        }
        return out
    }

    /// One statement, outside any transaction in progress.
    private func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        try await gate.run { [db] in try await db.query(sql, binds) }
    }
}

extension SQLiteLedgerTables: LedgerOffsetTables {
    /// The write lock (BEGIN IMMEDIATE) already makes the check and the move atomic against
    /// another member's transaction.
    func lockOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await SQLiteLedgerStore.storedOffsets(db, group: group, partitions: partitions)
    }

    func storeOffsets(group: String, _ moves: [OffsetMove]) async throws -> Set<TopicPartition> {
        for chunk in moves.chunked(Self.chunk) {
            _ = try await db.query(
                "INSERT INTO ledger_offsets (group_id, topic, part, next_offset) VALUES \(Self.placeholders(rows: chunk.count, columns: 4)) "
                    + "ON CONFLICT (group_id, topic, part) DO UPDATE SET next_offset = excluded.next_offset",
                chunk.flatMap { m -> [SQLiteData] in [.text(group), .text(m.partition.topic), .int(m.partition.partition), .int(m.next)] })
        }
        return []
    }
}
