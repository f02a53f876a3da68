import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The poller on PostgreSQL. Each poll is one transaction: take a non-empty account bucket with
/// `FOR UPDATE SKIP LOCKED` (pollers never wait for each other, and never interleave one
/// account's events), claim its oldest pending rows, apply, mark them, commit. Several pollers
/// (tasks or processes) share the work; each starts its bucket scan at a different point.
public final class PostgresLedgerPoller: LedgerPoller {
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// Rotates the first bucket tried, so that busy low buckets cannot starve the others.
    private let cursor: Mutex<Int32>

    public static func open(_ configuration: PostgresClient.Configuration, logger: Logger = Logger(label: "brook.ledger.poller")) async throws -> PostgresLedgerPoller {
        let poller = PostgresLedgerPoller(client: PostgresClient(configuration: configuration, backgroundLogger: logger), logger: logger)
        do {
            try await PostgresLedgerTables.createSchema(poller.client, logger: logger)
        } catch {
            try? await poller.close()
            throw error
        }
        return poller
    }

    private init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
        self.runner = Task { await client.run() }
        self.cursor = Mutex(Int32.random(in: 0..<Int32(LedgerSchema.pollerBuckets)))
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    public func enqueue(_ events: [PendingEvent]) async throws {
        let logger = self.logger
        try await client.withConnection { conn in
            for chunk in events.chunked(5000) {
                try await PostgresLedgerTables(conn: conn, logger: logger).enqueue(Array(chunk))
            }
        }
    }

    public func claim(limit: Int) async throws -> PollerClaim {
        let logger = self.logger
        let buckets = Int32(LedgerSchema.pollerBuckets)
        let start = cursor.withLock { value in
            value = (value + 1) % buckets
            return value
        }
        return try await PostgresLedgerTables.transaction(client, logger: logger) { conn in
            let bucketRows = try await conn.query("""
                SELECT b.bucket FROM poller_buckets b
                WHERE EXISTS (SELECT 1 FROM pending_events p WHERE p.bucket = b.bucket AND p.status = 'pending')
                ORDER BY (b.bucket - \(start) + \(buckets)) % \(buckets)
                LIMIT 1 FOR UPDATE OF b SKIP LOCKED
                """, logger: logger)
            var bucket: Int32?
            for try await b in bucketRows.decode(Int32.self) { bucket = b }
            guard let bucket else { return PollerClaim(rows: 0, eventIds: []) }
            let claimed = try await conn.query("""
                SELECT seq, payload FROM pending_events WHERE bucket = \(bucket) AND status = 'pending'
                ORDER BY seq LIMIT \(limit) FOR UPDATE
                """, logger: logger)
            var rows: [(seq: Int64, payload: [UInt8])] = []
            for try await (seq, payload) in claimed.decode((Int64, ByteBuffer).self) { rows.append((seq: seq, payload: Array(buffer: payload))) }
            guard !rows.isEmpty else { return PollerClaim(rows: 0, eventIds: []) }
            let batch = ClaimedBatch(rows: rows)
            let tables = PostgresLedgerTables(conn: conn, logger: logger)
            try await tables.applyBatch(batch.events, creditsTo: .pendingEvents)
            let deadReasons = Dictionary(uniqueKeysWithValues: batch.dead.map { ($0.seq, $0.reason) })
            let seqs = rows.map(\.seq)
            try await conn.query("""
                UPDATE pending_events p SET status = x.s, reason = NULLIF(x.r, '')
                FROM unnest(\(seqs)::int8[], \(seqs.map { deadReasons[$0] == nil ? "done" : "dead" })::text[],
                  \(seqs.map { deadReasons[$0] ?? "" })::text[]) AS x(q, s, r)
                WHERE p.seq = x.q
                """, logger: logger)
            return PollerClaim(rows: rows.count, eventIds: batch.events.map(\.event.id))
        }
    }

    public func pendingCount() async throws -> Int {
        let rows = try await client.query("SELECT COUNT(*) FROM pending_events WHERE status = 'pending'", logger: logger)
        for try await n in rows.decode(Int64.self) { return Int(n) }
        return 0
    }

    public func queuedEvents() async throws -> [(seq: Int64, payload: [UInt8], status: String)] {
        var out: [(seq: Int64, payload: [UInt8], status: String)] = []
        let rows = try await client.query("SELECT seq, payload, status FROM pending_events ORDER BY seq", logger: logger)
        for try await (seq, payload, status) in rows.decode((Int64, ByteBuffer, String).self) {
            out.append((seq: seq, payload: Array(buffer: payload), status: status))
        }
        return out
    }
}
