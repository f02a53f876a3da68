import Brook
import BrookPipeline
import BrookProtocol
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
        try await client.withConnection { [logger] in try await Self.storedOffsets($0, group: group, partitions: partitions, logger: logger) }
    }

    public func storedGroups(topic: String) async throws -> [String] {
        var out: [String] = []
        let rows = try await client.query("SELECT DISTINCT group_id FROM ledger_offsets WHERE topic = \(topic) ORDER BY group_id", logger: logger)
        for try await group in rows.decode(String.self) { out.append(group) }
        return out
    }

    public func apply(_ records: [PipelineRecord<LedgerEvent>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await apply(batches: [SinkBatch(partition: partition, records: records, expected: expected, next: next)], group: group)[0].get()
    }

    /// The batches of several partitions in one transaction (one commit, one fsync); up to
    /// ``maxConcurrentApplies`` such transactions run at once on the pool's connections. Their
    /// rows are disjoint (an account lives in one partition) and locked in sorted order.
    public func apply(batches: [SinkBatch<LedgerEvent>], group: String) async throws -> [Result<Void, any Error>] {
        let (client, logger) = (self.client, self.logger)
        return try await applyCombined(batches) { valid in
            try await PostgresLedgerTables.transaction(client, logger: logger) { conn in
                try await PostgresLedgerTables(conn: conn, logger: logger).applyStream(valid, group: group)
            }
        }
    }

    /// Two transactions in flight: one commits (waits for its WAL flush) while the next one's
    /// statements run.
    public var maxConcurrentApplies: Int { 2 }

    public func balances() async throws -> [CashKey: Int64] {
        try await client.withConnection { [logger] in try await Self.balances($0, logger: logger) }
    }

    public func positions() async throws -> [PositionKey: Int64] {
        try await client.withConnection { [logger] in try await Self.positions($0, logger: logger) }
    }

    public func outcome(of eventId: String) async throws -> LedgerOutcome? {
        let rows = try await client.query("SELECT status, reason FROM processed_events WHERE event_id = \(eventId)", logger: logger)
        for try await (status, reason) in rows.decode((String, String?).self) { return storedOutcome(status: status, reason: reason) }
        return nil
    }

    public func processedCounts() async throws -> [String: Int] {
        try await client.withConnection { [logger] in try await Self.processedCounts($0, logger: logger) }
    }

    /// One REPEATABLE READ transaction: every statement sees the snapshot of its first.
    public func state(group: String, partitions: [TopicPartition]) async throws -> LedgerStoreState {
        let logger = self.logger
        return try await PostgresLedgerTables.transaction(client, logger: logger) { conn in
            try await conn.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            return LedgerStoreState(
                storedOffsets: try await Self.storedOffsets(conn, group: group, partitions: partitions, logger: logger),
                cash: try await Self.balances(conn, logger: logger), positions: try await Self.positions(conn, logger: logger),
                processedCounts: try await Self.processedCounts(conn, logger: logger))
        }
    }

    private static func storedOffsets(_ conn: PostgresConnection, group: String, partitions: [TopicPartition], logger: Logger) async throws -> [TopicPartition: Int64] {
        let wanted = Set(partitions)
        var result: [TopicPartition: Int64] = [:]
        let rows = try await conn.query("SELECT topic, part, next_offset FROM ledger_offsets WHERE group_id = \(group)", logger: logger)
        for try await (topic, part, next) in rows.decode((String, Int32, Int64).self) {
            let tp = TopicPartition(topic: topic, partition: part)
            if wanted.contains(tp) { result[tp] = next }
        }
        return result
    }

    private static func balances(_ conn: PostgresConnection, logger: Logger) async throws -> [CashKey: Int64] {
        var out: [CashKey: Int64] = [:]
        let rows = try await conn.query("SELECT account, currency, amount FROM balances", logger: logger)
        for try await (account, currency, amount) in rows.decode((String, String, Int64).self) { out[CashKey(account, currency)] = amount }
        return out
    }

    private static func positions(_ conn: PostgresConnection, logger: Logger) async throws -> [PositionKey: Int64] {
        var out: [PositionKey: Int64] = [:]
        let rows = try await conn.query("SELECT account, symbol, quantity_micros FROM positions", logger: logger)
        for try await (account, symbol, q) in rows.decode((String, String, Int64).self) { out[PositionKey(account, symbol)] = q }
        return out
    }

    private static func processedCounts(_ conn: PostgresConnection, logger: Logger) async throws -> [String: Int] {
        var out: [String: Int] = [:]
        let rows = try await conn.query("SELECT status, COUNT(*) FROM processed_events GROUP BY status", logger: logger)
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

extension PostgresLedgerTables: LedgerOffsetTables {
    /// Row locks (FOR UPDATE, in sorted order) serialise two members that both think they own
    /// a partition; a partition with no row yet is decided by the unique key in ``storeOffsets``.
    func lockOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let sorted = partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        let rows = try await conn.query("""
            SELECT topic, part, next_offset FROM ledger_offsets
            WHERE group_id = \(group) AND (topic, part) IN (SELECT * FROM unnest(\(sorted.map(\.topic))::text[], \(sorted.map(\.partition))::int4[]))
            ORDER BY topic, part FOR UPDATE
            """, logger: logger)
        var found: [TopicPartition: Int64] = [:]
        for try await (topic, part, next) in rows.decode((String, Int32, Int64).self) { found[TopicPartition(topic: topic, partition: part)] = next }
        return found
    }

    func storeOffsets(group: String, _ moves: [OffsetMove]) async throws -> Set<TopicPartition> {
        let updates = moves.filter { $0.expected != nil }
        if !updates.isEmpty {
            try await conn.query("""
                UPDATE ledger_offsets o SET next_offset = m.n
                FROM unnest(\(updates.map(\.partition.topic))::text[], \(updates.map(\.partition.partition))::int4[], \(updates.map(\.next))::int8[]) AS m(t, p, n)
                WHERE o.group_id = \(group) AND o.topic = m.t AND o.part = m.p
                """, logger: logger)
        }
        let inserts = moves.filter { $0.expected == nil }
        guard !inserts.isEmpty else { return [] }
        let rows = try await conn.query("""
            INSERT INTO ledger_offsets (group_id, topic, part, next_offset)
            SELECT \(group), t, p, n FROM unnest(\(inserts.map(\.partition.topic))::text[], \(inserts.map(\.partition.partition))::int4[], \(inserts.map(\.next))::int8[]) AS m(t, p, n)
            ON CONFLICT DO NOTHING RETURNING topic, part
            """, logger: logger)
        var won = Set<TopicPartition>()
        for try await (topic, part) in rows.decode((String, Int32).self) { won.insert(TopicPartition(topic: topic, partition: part)) }
        // Another member inserted first, between our check and insert.
        return Set(inserts.map(\.partition)).subtracting(won)
    }
}
