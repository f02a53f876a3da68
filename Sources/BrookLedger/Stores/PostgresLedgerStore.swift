import Brook
import BrookPipeline
import Logging
import NIOCore
import PostgresNIO

/// The PostgreSQL store: a postgres-nio connection pool, one transaction per batch. Applies for
/// different partitions run concurrently on different connections; their rows are disjoint
/// (an account lives in one partition) and locked in sorted order.
public final class PostgresLedgerStore: LedgerStore {
    let client: PostgresClient
    private let runner: Task<Void, Never>
    let logger: Logger

    /// Connects (the pool runs until ``close()``) and creates the schema if needed.
    public static func open(_ configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "brook.ledger.postgres")) async throws -> PostgresLedgerStore {
        let store = PostgresLedgerStore(client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger)
        do {
            try await PostgresLedgerTables.createSchema(store.client, logger: logger)
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let wanted = Set(partitions)
        var result: [TopicPartition: Int64] = [:]
        let rows = try await client.query("SELECT topic, part, next_offset FROM ledger_offsets WHERE group_id = \(group)", logger: logger)
        for try await (topic, part, next) in rows.decode((String, Int32, Int64).self) {
            let tp = TopicPartition(topic: topic, partition: part)
            if wanted.contains(tp) { result[tp] = next }
        }
        return result
    }

    public func apply(_ records: [PipelineRecord<LedgerEvent>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        let events = try validated(records)
        let logger = self.logger
        try await PostgresLedgerTables.transaction(client, logger: logger) { conn in
            let tables = PostgresLedgerTables(conn: conn, logger: logger)
            try await tables.moveOffset(partition: partition, group: group, expected: expected, next: next)
            try await tables.applyBatch(events, creditsTo: .outbox)
        }
    }

    public func balances() async throws -> [CashKey: Int64] {
        var out: [CashKey: Int64] = [:]
        let rows = try await client.query("SELECT account, currency, amount FROM balances", logger: logger)
        for try await (account, currency, amount) in rows.decode((String, String, Int64).self) { out[CashKey(account, currency)] = amount }
        return out
    }

    public func positions() async throws -> [PositionKey: Int64] {
        var out: [PositionKey: Int64] = [:]
        let rows = try await client.query("SELECT account, symbol, quantity_micros FROM positions", logger: logger)
        for try await (account, symbol, q) in rows.decode((String, String, Int64).self) { out[PositionKey(account, symbol)] = q }
        return out
    }

    public func outcome(of eventId: String) async throws -> LedgerOutcome? {
        let rows = try await client.query("SELECT status, reason FROM processed_events WHERE event_id = \(eventId)", logger: logger)
        for try await (status, reason) in rows.decode((String, String?).self) { return storedOutcome(status: status, reason: reason) }
        return nil
    }

    public func processedCounts() async throws -> [String: Int] {
        var out: [String: Int] = [:]
        let rows = try await client.query("SELECT status, COUNT(*) FROM processed_events GROUP BY status", logger: logger)
        for try await (status, n) in rows.decode((String, Int64).self) { out[status] = Int(n) }
        return out
    }

    public func pendingOutbox(limit: Int) async throws -> [OutboxEntry] {
        var out: [OutboxEntry] = []
        let rows = try await client.query("SELECT event_id, account, payload FROM outbox ORDER BY seq LIMIT \(limit)", logger: logger)
        for try await (id, account, payload) in rows.decode((String, String, ByteBuffer).self) {
            out.append(OutboxEntry(eventId: id, key: account, value: Array(buffer: payload)))
        }
        return out
    }

    public func markPublished(_ eventIds: [String]) async throws {
        try await client.query("DELETE FROM outbox WHERE event_id = ANY(\(eventIds)::text[])", logger: logger)
    }
}

extension PostgresLedgerTables {
    /// Compare-and-set of the stored offset. The row lock (FOR UPDATE, or the unique key for a
    /// first insert) serialises two members that both think they own the partition.
    func moveOffset(partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        let (topic, part) = (partition.topic, partition.partition)
        var found: Int64?
        let rows = try await conn.query(
            "SELECT next_offset FROM ledger_offsets WHERE group_id = \(group) AND topic = \(topic) AND part = \(part) FOR UPDATE", logger: logger)
        for try await value in rows.decode(Int64.self) { found = value }
        guard found == expected else { throw SinkFenced(partition: partition, expected: expected, found: found) }
        if found == nil {
            let inserted = try await conn.query("""
                INSERT INTO ledger_offsets (group_id, topic, part, next_offset) VALUES (\(group), \(topic), \(part), \(next))
                ON CONFLICT DO NOTHING RETURNING next_offset
                """, logger: logger)
            var won = false
            for try await _ in inserted.decode(Int64.self) { won = true }
            // Another member inserted first, between our SELECT and INSERT.
            guard won else { throw SinkFenced(partition: partition, expected: expected, found: nil) }
        } else {
            try await conn.query(
                "UPDATE ledger_offsets SET next_offset = \(next) WHERE group_id = \(group) AND topic = \(topic) AND part = \(part)", logger: logger)
        }
    }
}
