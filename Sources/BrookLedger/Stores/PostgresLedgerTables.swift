import Logging
import NIOCore
import PostgresNIO

/// The ledger's SQL on one PostgreSQL connection inside a transaction, shared by the stream
/// store and the poller. Batches travel as arrays: each write is one `INSERT … SELECT FROM
/// unnest(…)` whatever the batch size, with a constant statement text.
struct PostgresLedgerTables: LedgerTables {
    let conn: PostgresConnection
    let logger: Logger

    /// `client.withTransaction`, but rethrowing the body's own error (SinkFenced, RecordError)
    /// instead of postgres-nio's wrapper, so callers see the contract's errors.
    static func transaction<Result>(
        _ client: PostgresClient, logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await client.withTransaction(logger: logger, isolation: isolation, body)
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError, error.rollbackError == nil { throw inner }
            throw error
        }
    }

    static func createSchema(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withTransaction(logger: logger) { conn in
            // Two processes creating the schema at once would race on the catalogue.
            try await conn.query("SELECT pg_advisory_xact_lock(7422011)", logger: logger)
            for statement in LedgerSchema.statements(bytes: "BYTEA", serial: "BIGSERIAL PRIMARY KEY") {
                try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            let buckets = (0..<LedgerSchema.pollerBuckets).map(Int32.init)
            try await conn.query("INSERT INTO poller_buckets (bucket) SELECT unnest(\(buckets)::int4[]) ON CONFLICT DO NOTHING", logger: logger)
        }
    }

    func processedIds(_ ids: [String]) async throws -> Set<String> {
        var found = Set<String>()
        let rows = try await conn.query("SELECT event_id FROM processed_events WHERE event_id = ANY(\(ids)::text[])", logger: logger)
        for try await id in rows.decode(String.self) { found.insert(id) }
        return found
    }

    func loadBook(accounts: [String]) async throws -> LedgerBook {
        var cash: [CashKey: Int64] = [:]
        var positions: [PositionKey: Int64] = [:]
        let balanceRows = try await conn.query(
            "SELECT account, currency, amount FROM balances WHERE account = ANY(\(accounts)::text[])", logger: logger)
        for try await (account, currency, amount) in balanceRows.decode((String, String, Int64).self) {
            cash[CashKey(account, currency)] = amount
        }
        let positionRows = try await conn.query(
            "SELECT account, symbol, quantity_micros FROM positions WHERE account = ANY(\(accounts)::text[])", logger: logger)
        for try await (account, symbol, quantity) in positionRows.decode((String, String, Int64).self) {
            positions[PositionKey(account, symbol)] = quantity
        }
        return LedgerBook(cash: cash, positions: positions)
    }

    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) async throws {
        let book = result.book
        // Sorted keys: concurrent transactions lock rows in the same order (no deadlocks).
        let cashKeys = book.touchedCash.sorted()
        if !cashKeys.isEmpty {
            try await conn.query("""
                INSERT INTO balances (account, currency, amount)
                SELECT * FROM unnest(\(cashKeys.map(\.account))::text[], \(cashKeys.map(\.currency))::text[], \(cashKeys.map { book.cash[$0] ?? 0 })::int8[])
                ON CONFLICT (account, currency) DO UPDATE SET amount = EXCLUDED.amount
                """, logger: logger)
        }
        let positionKeys = book.touchedPositions.sorted()
        if !positionKeys.isEmpty {
            try await conn.query("""
                INSERT INTO positions (account, symbol, quantity_micros)
                SELECT * FROM unnest(\(positionKeys.map(\.account))::text[], \(positionKeys.map(\.symbol))::text[], \(positionKeys.map { book.positions[$0] ?? 0 })::int8[])
                ON CONFLICT (account, symbol) DO UPDATE SET quantity_micros = EXCLUDED.quantity_micros
                """, logger: logger)
        }
        let p = result.processed
        if !p.isEmpty {
            try await conn.query("""
                INSERT INTO processed_events (event_id, account, status, reason, topic, part, source_offset)
                SELECT e, a, s, NULLIF(r, ''), t, pt, o FROM unnest(\(p.map(\.eventId))::text[], \(p.map(\.account))::text[],
                  \(p.map(\.status))::text[], \(p.map { $0.reason ?? "" })::text[], \(p.map(\.source.topic))::text[],
                  \(p.map(\.source.partition))::int4[], \(p.map(\.source.offset))::int8[]) AS x(e, a, s, r, t, pt, o)
                """, logger: logger)
        }
        guard !result.outbox.isEmpty else { return }
        switch creditsTo {
        case .outbox:
            let o = result.outbox
            try await conn.query("""
                INSERT INTO outbox (event_id, account, payload)
                SELECT * FROM unnest(\(o.map(\.id))::text[], \(o.map(\.account))::text[], \(o.map { ByteBuffer(bytes: LedgerEventCodec.encode($0)) })::bytea[])
                ON CONFLICT (event_id) DO NOTHING
                """, logger: logger)
        case .pendingEvents:
            try await enqueue(result.outbox.map { PendingEvent(eventId: $0.id, account: $0.account, payload: LedgerEventCodec.encode($0)) })
        }
    }

    func enqueue(_ events: [PendingEvent]) async throws {
        guard !events.isEmpty else { return }
        try await conn.query("""
            INSERT INTO pending_events (event_id, account, bucket, payload)
            SELECT NULLIF(e, ''), a, b, p FROM unnest(\(events.map { $0.eventId ?? "" })::text[], \(events.map(\.account))::text[],
              \(events.map { Int32($0.bucket) })::int4[], \(events.map { ByteBuffer(bytes: $0.payload) })::bytea[]) AS x(e, a, b, p)
            """, logger: logger)
    }
}
