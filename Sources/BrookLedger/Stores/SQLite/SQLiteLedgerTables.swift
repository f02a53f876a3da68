import Brook
import BrookPipeline
import BrookProtocol

/// The ledger's SQL on one SQLite connection, shared by the stream store and the poller. It
/// runs synchronously on its executor's thread: a whole transaction is one closure there.
/// Statements are single-row and prepared once (``SQLiteHandle`` keeps them), so a row costs a
/// bind and a step, never a parse.
struct SQLiteLedgerTables {
    let db: SQLiteHandle

    /// Opens (and creates) the ledger's tables at `path` on a connection of its own thread,
    /// with its checkpointer.
    static func open(path: String) async throws -> SQLiteLedgerConnection {
        let executor = try await SQLiteExecutor.open(path: path)
        do {
            try await executor.run { db in try SQLiteLedgerTables(db: db).prepare() }
            return SQLiteLedgerConnection(executor: executor, checkpointer: try await SQLiteCheckpointer.start(path: path))
        } catch {
            try? await executor.close()
            throw error
        }
    }

    private func prepare() throws {
        // WAL: readers never block the writer. synchronous=NORMAL in WAL mode keeps every
        // committed transaction across a process crash (kill -9); only an OS crash can lose the
        // last few, and then offsets and effects are lost together, so nothing is applied twice.
        try db.execute("PRAGMA journal_mode=WAL")
        try db.execute("PRAGMA synchronous=NORMAL")
        // Checkpoints run on their own connection (SQLiteCheckpointer); this is the backstop.
        try db.execute("PRAGMA wal_autocheckpoint=\(SQLiteCheckpointer.writerBackstopPages)")
        try db.transaction {
            for statement in LedgerSchema.statements(bytes: "BLOB", serial: "INTEGER PRIMARY KEY AUTOINCREMENT", keyed: " WITHOUT ROWID") {
                try db.execute(statement)
            }
            for bucket in 0..<LedgerSchema.pollerBuckets {
                try db.run("INSERT OR IGNORE INTO poller_buckets (bucket) VALUES (?)", [.int(bucket)])
            }
        }
    }

    // MARK: - The shared batch step

    /// Skips processed ids, loads the touched accounts, applies the rules in memory, writes the
    /// effects: the same step as ``LedgerTables/applyBatch(_:creditsTo:)``, run synchronously.
    func applyBatch(_ events: [(event: LedgerEvent, source: EventSource)], creditsTo: CreditDestination) throws {
        guard !events.isEmpty else { return }
        let done = try processedIds(events.map(\.event.id))
        let book = try loadBook(accounts: LedgerBatch.accounts(of: events.map(\.event)))
        let result = try LedgerBatch.apply(events, alreadyProcessed: done, book: book)
        try write(result, creditsTo: creditsTo)
    }

    /// The stream's transaction body: the fencing check and move per partition, then the
    /// accepted batches' events as one batch. The write lock (BEGIN IMMEDIATE, taken by the
    /// caller) makes the check and the move atomic against another member's transaction.
    ///
    /// With a `cache`, rows come from it where it holds them (see ``LedgerBookCache``), every
    /// cached value used is verified as it is written, and processed ids are checked by their
    /// inserts; when a check fails this throws ``LedgerCacheMismatch``, and the caller rolls the
    /// transaction back, empties the cache and runs the transaction again without it (everything
    /// read from the database). The cache holds this transaction's changes on return: keep it
    /// only if the transaction commits.
    func applyStream(_ batches: [OffsetFencing.Batch], group: String, cache: inout LedgerBookCache?) throws -> [Int: SinkFenced] {
        var fencing = OffsetFencing(batches, stored: try storedOffsets(group: group, partitions: batches.map(\.move.partition)))
        for m in fencing.accepted.map(\.move) {
            try db.run(
                "INSERT INTO ledger_offsets (group_id, topic, part, next_offset) VALUES (?, ?, ?, ?) "
                    + "ON CONFLICT (group_id, topic, part) DO UPDATE SET next_offset = excluded.next_offset",
                [.text(group), .text(m.partition.topic), .int(m.partition.partition), .int(m.next)])
        }
        let events = fencing.accepted.flatMap(\.events)
        guard cache != nil else {
            try applyBatch(events, creditsTo: .outbox)
            return fencing.fenced
        }
        let moves = fencing.accepted.map(\.move)
        cache!.begin(moves)
        var owner: [String: TopicPartition] = [:]
        for b in fencing.accepted { for e in b.events { owner[e.event.account] = b.move.partition } }
        var missing: [String] = []
        var cachedAccounts = Set<String>()
        for (account, partition) in owner {
            if cache!.holds(account, from: partition) { cachedAccounts.insert(account) } else { missing.append(account) }
        }
        let book = cache!.takeBook(merging: try loadBook(accounts: missing.sorted()))
        guard let result = try writeVerified(events, book: book, cachedAccounts: cachedAccounts) else {
            throw LedgerCacheMismatch()
        }
        cache!.committed(book: result.book, moves: moves, accounts: owner)
        return fencing.fenced
    }

    /// Applies `events` to `book` assuming none was processed, and writes the effects while
    /// checking the assumptions: each processed-id insert must add its row, each written row
    /// must still hold the value the book started from, and each row a rejected event read
    /// from the cache must still hold it. nil: a check failed (the caller rolls back).
    private func writeVerified(_ events: [(event: LedgerEvent, source: EventSource)], book: consuming LedgerBook, cachedAccounts: Set<String>) throws -> LedgerBatchResult? {
        let result = try LedgerBatch.apply(events, alreadyProcessed: [], book: book)
        for p in result.processed {
            try insertProcessed(p, orIgnore: true)
            if db.changes != 1 { return nil }
        }
        let after = result.book
        for (k, old) in after.cashBefore.sorted(by: { $0.key < $1.key }) {
            let new = after.cash[k] ?? 0
            if let old {
                try db.run("UPDATE balances SET amount = ? WHERE account = ? AND currency = ? AND amount = ?",
                           [.int(new), .text(k.account), .text(k.currency), .int(old)])
            } else {
                try db.run("INSERT INTO balances (account, currency, amount) VALUES (?, ?, ?) ON CONFLICT (account, currency) DO NOTHING",
                           [.text(k.account), .text(k.currency), .int(new)])
            }
            if db.changes != 1 { return nil }
        }
        for (k, old) in after.positionsBefore.sorted(by: { $0.key < $1.key }) {
            let new = after.positions[k] ?? 0
            if let old {
                try db.run("UPDATE positions SET quantity_micros = ? WHERE account = ? AND symbol = ? AND quantity_micros = ?",
                           [.int(new), .text(k.account), .text(k.symbol), .int(old)])
            } else {
                try db.run("INSERT INTO positions (account, symbol, quantity_micros) VALUES (?, ?, ?) ON CONFLICT (account, symbol) DO NOTHING",
                           [.text(k.account), .text(k.symbol), .int(new)])
            }
            if db.changes != 1 { return nil }
        }
        // Untouched rows still hold the values the rejections were decided on.
        for k in result.rejectedReads.cash where cachedAccounts.contains(k.account) && after.cashBefore[k] == nil {
            var found: Int64?
            try db.run("SELECT amount FROM balances WHERE account = ? AND currency = ?", [.text(k.account), .text(k.currency)]) { found = $0.int(0) }
            if found != after.cash[k] { return nil }
        }
        for k in result.rejectedReads.positions where cachedAccounts.contains(k.account) && after.positionsBefore[k] == nil {
            var found: Int64?
            try db.run("SELECT quantity_micros FROM positions WHERE account = ? AND symbol = ?", [.text(k.account), .text(k.symbol)]) { found = $0.int(0) }
            if found != after.positions[k] { return nil }
        }
        try insertOutbox(result.outbox)
        return result
    }

    func processedIds(_ ids: [String]) throws -> Set<String> {
        var found = Set<String>()
        for id in ids {
            try db.run("SELECT 1 FROM processed_events WHERE event_id = ?", [.text(id)]) { _ in found.insert(id) }
        }
        return found
    }

    func loadBook(accounts: [String]) throws -> LedgerBook {
        var cash: [CashKey: Int64] = [:]
        var positions: [PositionKey: Int64] = [:]
        for account in accounts {
            try db.run("SELECT currency, amount FROM balances WHERE account = ?", [.text(account)]) { r in
                cash[CashKey(account, r.text(0))] = r.int(1)
            }
            try db.run("SELECT symbol, quantity_micros FROM positions WHERE account = ?", [.text(account)]) { r in
                positions[PositionKey(account, r.text(0))] = r.int(1)
            }
        }
        return LedgerBook(cash: cash, positions: positions)
    }

    /// Writes a batch's effects: touched balances and positions (one upsert per account and
    /// currency or symbol), the processed-event rows, and transfer credits (into the outbox for
    /// the stream; into `pending_events` for the poller).
    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) throws {
        let book = result.book
        for k in book.touchedCash.sorted() {
            try db.run("INSERT INTO balances (account, currency, amount) VALUES (?, ?, ?) "
                           + "ON CONFLICT (account, currency) DO UPDATE SET amount = excluded.amount",
                       [.text(k.account), .text(k.currency), .int(book.cash[k] ?? 0)])
        }
        for k in book.touchedPositions.sorted() {
            try db.run("INSERT INTO positions (account, symbol, quantity_micros) VALUES (?, ?, ?) "
                           + "ON CONFLICT (account, symbol) DO UPDATE SET quantity_micros = excluded.quantity_micros",
                       [.text(k.account), .text(k.symbol), .int(book.positions[k] ?? 0)])
        }
        for p in result.processed { try insertProcessed(p, orIgnore: false) }
        switch creditsTo {
        case .outbox:
            try insertOutbox(result.outbox)
        case .pendingEvents:
            try enqueue(result.outbox.map { PendingEvent(eventId: $0.id, account: $0.account, payload: LedgerEventCodec.encode($0)) })
        }
    }

    private func insertProcessed(_ p: ProcessedEvent, orIgnore: Bool) throws {
        let values: [SQLValue] = [.text(p.eventId), .text(p.account), .text(p.status), p.reason.map { .text($0) } ?? .null,
                                  .text(p.source.topic), .int(p.source.partition), .int(p.source.offset)]
        if orIgnore {
            try db.run("INSERT OR IGNORE INTO processed_events (event_id, account, status, reason, topic, part, source_offset) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
        } else {
            try db.run("INSERT INTO processed_events (event_id, account, status, reason, topic, part, source_offset) VALUES (?, ?, ?, ?, ?, ?, ?)", values)
        }
    }

    private func insertOutbox(_ credits: [LedgerEvent]) throws {
        for e in credits {
            try db.run("INSERT OR IGNORE INTO outbox (event_id, account, payload) VALUES (?, ?, ?)",
                       [.text(e.id), .text(e.account), .blob(LedgerEventCodec.encode(e))])
        }
    }

    func enqueue(_ events: [PendingEvent]) throws {
        for e in events {
            try db.run("INSERT INTO pending_events (event_id, account, bucket, payload) VALUES (?, ?, ?, ?)",
                       [e.eventId.map { .text($0) } ?? .null, .text(e.account), .int(e.bucket), .blob(e.payload)])
        }
    }

    // MARK: - Reads

    func storedOffsets(group: String, partitions: [TopicPartition]) throws -> [TopicPartition: Int64] {
        let wanted = Set(partitions)
        var result: [TopicPartition: Int64] = [:]
        try db.run("SELECT topic, part, next_offset FROM ledger_offsets WHERE group_id = ?", [.text(group)]) { r in
            let tp = TopicPartition(topic: r.text(0), partition: Int32(r.int(1)))
            if wanted.contains(tp) { result[tp] = r.int(2) }
        }
        return result
    }

    func balances() throws -> [CashKey: Int64] {
        var out: [CashKey: Int64] = [:]
        try db.run("SELECT account, currency, amount FROM balances") { r in out[CashKey(r.text(0), r.text(1))] = r.int(2) }
        return out
    }

    func positions() throws -> [PositionKey: Int64] {
        var out: [PositionKey: Int64] = [:]
        try db.run("SELECT account, symbol, quantity_micros FROM positions") { r in out[PositionKey(r.text(0), r.text(1))] = r.int(2) }
        return out
    }

    func processedCounts() throws -> [String: Int] {
        var out: [String: Int] = [:]
        try db.run("SELECT status, COUNT(*) FROM processed_events GROUP BY status") { r in out[r.text(0)] = Int(r.int(1)) }
        return out
    }
}

/// A stream transaction found an id already processed or a cached row changed behind the
/// cache: it is rolled back and run again reading everything from the database.
struct LedgerCacheMismatch: Error {}
