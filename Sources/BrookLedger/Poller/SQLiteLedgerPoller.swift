import NIOCore
import SQLiteNIO

/// The poller on SQLite: each poller has its own connection; BEGIN IMMEDIATE makes them take
/// turns (SQLite has one writer), so claims are in global `seq` order and per-account order holds.
public final class SQLiteLedgerPoller: LedgerPoller {
    private let tables: SQLiteLedgerTables
    private let gate = AsyncGate()

    public static func open(path: String) async throws -> SQLiteLedgerPoller {
        SQLiteLedgerPoller(tables: try await SQLiteLedgerTables.open(path: path))
    }

    private init(tables: SQLiteLedgerTables) { self.tables = tables }

    public func close() async throws {
        try await gate.run { [tables] in try await tables.close() }
    }

    public func enqueue(_ events: [PendingEvent]) async throws {
        try await gate.run { [tables] in try await tables.transaction { try await tables.enqueue(events) } }
    }

    public func claim(limit: Int) async throws -> PollerClaim {
        try await gate.run { [tables] in
            try await tables.transaction {
                let db = tables.db
                // Claim by UPDATE … RETURNING: the rows are ours the moment the statement runs.
                let rows = try await db.query("""
                    UPDATE pending_events SET status = 'done'
                    WHERE seq IN (SELECT seq FROM pending_events WHERE status = 'pending' ORDER BY seq LIMIT ?)
                    RETURNING seq, payload
                    """, [.int(limit)])
                guard !rows.isEmpty else { return PollerClaim(rows: 0, eventIds: []) }
                let batch = ClaimedBatch(rows: rows.map { (seq: $0.int("seq"), payload: Array(buffer: $0.column("payload")?.blob ?? ByteBuffer())) })
                for (seq, reason) in batch.dead {
                    _ = try await db.query("UPDATE pending_events SET status = 'dead', reason = ? WHERE seq = ?", [.text(reason), .int(seq)])
                }
                try await tables.applyBatch(batch.events, creditsTo: .pendingEvents)
                return PollerClaim(rows: rows.count, eventIds: batch.events.map(\.event.id))
            }
        }
    }

    public func pendingCount() async throws -> Int {
        try await gate.run { [tables] in
            Int(try await tables.db.query("SELECT COUNT(*) AS n FROM pending_events WHERE status = 'pending'").first?.int("n") ?? 0)
        }
    }

    public func queuedEvents() async throws -> [(seq: Int64, payload: [UInt8], status: String)] {
        try await gate.run { [tables] in
            try await tables.db.query("SELECT seq, payload, status FROM pending_events ORDER BY seq").map {
                (seq: $0.int("seq"), payload: Array(buffer: $0.column("payload")?.blob ?? ByteBuffer()), status: $0.text("status"))
            }
        }
    }
}
