/// The poller on SQLite: each poller has its own connection (and thread); BEGIN IMMEDIATE makes
/// them take turns (SQLite has one writer), so claims are in global `seq` order and per-account
/// order holds.
public final class SQLiteLedgerPoller: LedgerPoller {
    private let executor: SQLiteLedgerConnection

    public static func open(path: String) async throws -> SQLiteLedgerPoller {
        SQLiteLedgerPoller(executor: try await SQLiteLedgerTables.open(path: path))
    }

    private init(executor: SQLiteLedgerConnection) { self.executor = executor }

    public func close() async throws { try await executor.close() }

    public func enqueue(_ events: [PendingEvent]) async throws {
        try await executor.run { db in try db.transaction { try SQLiteLedgerTables(db: db).enqueue(events) } }
    }

    public func claim(limit: Int) async throws -> PollerClaim {
        try await executor.run { db in
            try db.transaction {
                // Claim by UPDATE … RETURNING: the rows are ours the moment the statement runs.
                var rows: [(seq: Int64, payload: [UInt8])] = []
                try db.run("""
                    UPDATE pending_events SET status = 'done'
                    WHERE seq IN (SELECT seq FROM pending_events WHERE status = 'pending' ORDER BY seq LIMIT ?)
                    RETURNING seq, payload
                    """, [.int(limit)]) { rows.append((seq: $0.int(0), payload: $0.blob(1))) }
                guard !rows.isEmpty else { return PollerClaim(rows: 0, eventIds: []) }
                let batch = ClaimedBatch(rows: rows)
                for (seq, reason) in batch.dead {
                    try db.run("UPDATE pending_events SET status = 'dead', reason = ? WHERE seq = ?", [.text(reason), .int(seq)])
                }
                try SQLiteLedgerTables(db: db).applyBatch(batch.events, creditsTo: .pendingEvents)
                return PollerClaim(rows: rows.count, eventIds: batch.events.map(\.event.id))
            }
        }
    }

    public func pendingCount() async throws -> Int {
        try await executor.run { db in
            var n: Int64 = 0
            try db.run("SELECT COUNT(*) FROM pending_events WHERE status = 'pending'") { n = $0.int(0) }
            return Int(n)
        }
    }

    public func queuedEvents() async throws -> [(seq: Int64, payload: [UInt8], status: String)] {
        try await executor.run { db in
            var out: [(seq: Int64, payload: [UInt8], status: String)] = []
            try db.run("SELECT seq, payload, status FROM pending_events ORDER BY seq") { out.append((seq: $0.int(0), payload: $0.blob(1), status: $0.text(2))) }
            return out
        }
    }
}
