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

    /// One round trip: the processed ids among `ids` and the accounts' balance and position
    /// rows, as one result of tagged rows.
    func read(processed ids: [String], accounts: [String]) async throws -> (processed: Set<String>, book: LedgerBook) {
        var found = Set<String>()
        var cash: [CashKey: Int64] = [:]
        var positions: [PositionKey: Int64] = [:]
        let rows = try await conn.query("""
            SELECT 0::int4, event_id, NULL::text, 0::int8 FROM processed_events WHERE event_id = ANY(\(ids)::text[])
            UNION ALL SELECT 1::int4, account, currency, amount FROM balances WHERE account = ANY(\(accounts)::text[])
            UNION ALL SELECT 2::int4, account, symbol, quantity_micros FROM positions WHERE account = ANY(\(accounts)::text[])
            """, logger: logger)
        for try await (kind, key, sub, value) in rows.decode((Int32, String, String?, Int64).self) {
            switch kind {
            case 0: found.insert(key)
            case 1: cash[CashKey(key, sub ?? "")] = value
            default: positions[PositionKey(key, sub ?? "")] = value
            }
        }
        return (found, LedgerBook(cash: cash, positions: positions))
    }

    /// One round trip: every effect of a batch in one statement of data-modifying CTEs (each
    /// an `INSERT … SELECT FROM unnest(…)` over arrays, so the text is the same whatever the
    /// batch size): touched balances and positions, processed-event rows, and transfer credits
    /// (the outbox for the stream, `pending_events` for the poller).
    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) async throws {
        let book = result.book
        // Sorted keys: concurrent transactions lock rows in the same order (no deadlocks).
        let cashKeys = book.touchedCash.sorted()
        let positionKeys = book.touchedPositions.sorted()
        let p = result.processed
        let credits = result.outbox
        let creditPayloads = credits.map { ByteBuffer(bytes: LedgerEventCodec.encode($0)) }
        let buckets = credits.map { Int32(PendingEvent.bucket(of: $0.account)) }
        let (target, columns) = switch creditsTo {
        case .outbox: ("outbox (event_id, account, payload)", "e, a, p")
        case .pendingEvents: ("pending_events (event_id, account, bucket, payload)", "e, a, b, p")
        }
        let query: PostgresQuery = """
            WITH b AS (
              INSERT INTO balances (account, currency, amount)
              SELECT * FROM unnest(\(cashKeys.map(\.account))::text[], \(cashKeys.map(\.currency))::text[], \(cashKeys.map { book.cash[$0] ?? 0 })::int8[])
              ON CONFLICT (account, currency) DO UPDATE SET amount = EXCLUDED.amount
            ), p AS (
              INSERT INTO positions (account, symbol, quantity_micros)
              SELECT * FROM unnest(\(positionKeys.map(\.account))::text[], \(positionKeys.map(\.symbol))::text[], \(positionKeys.map { book.positions[$0] ?? 0 })::int8[])
              ON CONFLICT (account, symbol) DO UPDATE SET quantity_micros = EXCLUDED.quantity_micros
            ), e AS (
              INSERT INTO processed_events (event_id, account, status, reason, topic, part, source_offset)
              SELECT e, a, s, NULLIF(r, ''), t, pt, o FROM unnest(\(p.map(\.eventId))::text[], \(p.map(\.account))::text[],
                \(p.map(\.status))::text[], \(p.map { $0.reason ?? "" })::text[], \(p.map(\.source.topic))::text[],
                \(p.map(\.source.partition))::int4[], \(p.map(\.source.offset))::int8[]) AS x(e, a, s, r, t, pt, o)
            )
            INSERT INTO \(unescaped: target)
            SELECT \(unescaped: columns) FROM unnest(\(credits.map(\.id))::text[], \(credits.map(\.account))::text[], \(buckets)::int4[],
              \(creditPayloads)::bytea[]) AS x(e, a, b, p)
            ON CONFLICT DO NOTHING
            """
        try await conn.query(query, logger: logger)
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
