import NIOCore
import NIOPosix
import SQLiteNIO

/// The ledger's SQL on one SQLite connection, shared by the stream store and the poller.
/// Every statement is multi-row (chunked below SQLite's bound-parameter limit), so a batch of
/// events costs a handful of statements, not several per event.
struct SQLiteLedgerTables: LedgerTables, Sendable {
    let db: SQLiteConnection
    /// This connection's own thread: SQLite calls block their thread (a writer waiting for the
    /// lock sleeps in it), so connections sharing a small pool could starve the lock holder.
    let thread: NIOThreadPool
    /// Rows per multi-row statement: well under SQLite's 32766 bound parameters.
    static let chunk = 500

    static func open(path: String) async throws -> SQLiteLedgerTables {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let db: SQLiteConnection
        do {
            db = try await SQLiteConnection.open(storage: .file(path: path), threadPool: thread, on: MultiThreadedEventLoopGroup.singleton.any())
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
        let tables = SQLiteLedgerTables(db: db, thread: thread)
        do {
            try await tables.prepare()
        } catch {
            try? await tables.close()
            throw error
        }
        return tables
    }

    func close() async throws {
        try await db.close()
        try await thread.shutdownGracefully()
    }

    private func prepare() async throws {
        // WAL: readers never block the writer. synchronous=NORMAL in WAL mode keeps every
        // committed transaction across a process crash (kill -9); only an OS crash can lose the
        // last few, and then offsets and effects are lost together, so nothing is applied twice.
        _ = try await db.query("PRAGMA busy_timeout=30000")
        _ = try await db.query("PRAGMA journal_mode=WAL")
        _ = try await db.query("PRAGMA synchronous=NORMAL")
        try await transaction {
            for statement in LedgerSchema.statements(bytes: "BLOB", serial: "INTEGER PRIMARY KEY AUTOINCREMENT", keyed: " WITHOUT ROWID") {
                _ = try await db.query(statement)
            }
            let buckets = (0..<LedgerSchema.pollerBuckets).map { _ in "(?)" }.joined(separator: ",")
            _ = try await db.query("INSERT OR IGNORE INTO poller_buckets (bucket) VALUES \(buckets)",
                                   (0..<LedgerSchema.pollerBuckets).map { .int($0) })
        }
    }

    /// Runs `body` in a write transaction; BEGIN IMMEDIATE takes the write lock up front so two
    /// writers never deadlock upgrading a read lock.
    func transaction<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        _ = try await db.query("BEGIN IMMEDIATE")
        do {
            let result = try await body()
            _ = try await db.query("COMMIT")
            return result
        } catch {
            _ = try? await db.query("ROLLBACK")
            throw error
        }
    }

    static func placeholders(rows: Int, columns: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
        return Array(repeating: row, count: rows).joined(separator: ",")
    }

    private func inList(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ",") }

    func processedIds(_ ids: [String]) async throws -> Set<String> {
        var found = Set<String>()
        for chunk in ids.chunked(Self.chunk) {
            let rows = try await db.query("SELECT event_id FROM processed_events WHERE event_id IN (\(inList(chunk.count)))",
                                          chunk.map { .text($0) })
            for row in rows { if let id = row.column("event_id")?.string { found.insert(id) } }
        }
        return found
    }

    func loadBook(accounts: [String]) async throws -> LedgerBook {
        var cash: [CashKey: Int64] = [:]
        var positions: [PositionKey: Int64] = [:]
        for chunk in accounts.chunked(Self.chunk) {
            let binds = chunk.map { SQLiteData.text($0) }
            for row in try await db.query("SELECT account, currency, amount FROM balances WHERE account IN (\(inList(chunk.count)))", binds) {
                cash[CashKey(row.text("account"), row.text("currency"))] = row.int("amount")
            }
            for row in try await db.query("SELECT account, symbol, quantity_micros FROM positions WHERE account IN (\(inList(chunk.count)))", binds) {
                positions[PositionKey(row.text("account"), row.text("symbol"))] = row.int("quantity_micros")
            }
        }
        return LedgerBook(cash: cash, positions: positions)
    }

    /// Writes a batch's effects: touched balances and positions, the processed-event rows, and
    /// transfer credits (into the outbox for the stream; into `pending_events` for the poller).
    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) async throws {
        let book = result.book
        for chunk in book.touchedCash.sorted().chunked(Self.chunk) {
            _ = try await db.query(
                "INSERT INTO balances (account, currency, amount) VALUES \(Self.placeholders(rows: chunk.count, columns: 3)) "
                    + "ON CONFLICT (account, currency) DO UPDATE SET amount = excluded.amount",
                chunk.flatMap { k -> [SQLiteData] in [.text(k.account), .text(k.currency), .int(book.cash[k] ?? 0)] })
        }
        for chunk in book.touchedPositions.sorted().chunked(Self.chunk) {
            _ = try await db.query(
                "INSERT INTO positions (account, symbol, quantity_micros) VALUES \(Self.placeholders(rows: chunk.count, columns: 3)) "
                    + "ON CONFLICT (account, symbol) DO UPDATE SET quantity_micros = excluded.quantity_micros",
                chunk.flatMap { k -> [SQLiteData] in [.text(k.account), .text(k.symbol), .int(book.positions[k] ?? 0)] })
        }
        for chunk in result.processed.chunked(Self.chunk) {
            _ = try await db.query(
                "INSERT INTO processed_events (event_id, account, status, reason, topic, part, source_offset) VALUES "
                    + Self.placeholders(rows: chunk.count, columns: 7),
                chunk.flatMap { p -> [SQLiteData] in
                    [.text(p.eventId), .text(p.account), .text(p.status), p.reason.map { .text($0) } ?? .null,
                     .text(p.source.topic), .int(p.source.partition), .int(p.source.offset)]
                })
        }
        for chunk in result.outbox.chunked(Self.chunk) {
            switch creditsTo {
            case .outbox:
                _ = try await db.query(
                    "INSERT OR IGNORE INTO outbox (event_id, account, payload) VALUES \(Self.placeholders(rows: chunk.count, columns: 3))",
                    chunk.flatMap { e -> [SQLiteData] in [.text(e.id), .text(e.account), .blob(ByteBuffer(bytes: LedgerEventCodec.encode(e)))] })
            case .pendingEvents:
                try await enqueue(chunk.map { PendingEvent(eventId: $0.id, account: $0.account, payload: LedgerEventCodec.encode($0)) })
            }
        }
    }

    func enqueue(_ events: [PendingEvent]) async throws {
        for chunk in events.chunked(Self.chunk) {
            _ = try await db.query(
                "INSERT INTO pending_events (event_id, account, bucket, payload) VALUES \(Self.placeholders(rows: chunk.count, columns: 4))",
                chunk.flatMap { e -> [SQLiteData] in
                    [e.eventId.map { .text($0) } ?? .null, .text(e.account), .int(e.bucket), .blob(ByteBuffer(bytes: e.payload))]
                })
        }
    }
}

extension SQLiteData {
    /// An integer bind, whatever width `SQLiteInt64` has on this platform.
    static func int(_ value: some BinaryInteger) -> SQLiteData { .integer(SQLiteInt64(value)) }
}

extension SQLiteRow {
    func text(_ name: String) -> String { column(name)?.string ?? "" }
    func int(_ name: String) -> Int64 { Int64(column(name)?.integer ?? 0) }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
