import VaporCSQLite

// The SQLite library is the copy vendored by sqlite-nio (its `VaporCSQLite` module), so the
// process holds one SQLite library whatever else opens the file: two copies in one process
// break each other's POSIX locks.

/// A value bound to a statement's parameter.
enum SQLValue: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    case blob([UInt8])
    case null

    static func int(_ value: some BinaryInteger) -> SQLValue { .integer(Int64(value)) }
}

/// A failed SQLite call, with the statement it ran.
struct SQLiteFailure: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var sql: String
    var description: String { "SQLite error \(code): \(message) (in: \(sql.prefix(120)))" }
}

/// One `sqlite3` connection used synchronously. The ledger's transactions run whole on one
/// thread (``SQLiteExecutor``), so a transaction of many statements costs two thread hops, not
/// two per statement; statements are prepared once and kept.
///
/// Not `Sendable`: only its executor's thread touches it.
final class SQLiteHandle {
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    /// Prepared statements kept; the ledger uses a few dozen distinct texts.
    private static let statementCacheLimit = 256

    init(path: String) throws {
        var handle: OpaquePointer?
        let rc = sqlite_nio_sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "cannot allocate a connection"
            sqlite_nio_sqlite3_close(handle)
            throw SQLiteFailure(code: rc, message: message, sql: "open \(path)")
        }
        db = handle
        // A writer waiting for another connection's lock sleeps in SQLite, up to 30 s.
        sqlite_nio_sqlite3_busy_timeout(handle, 30_000)
    }

    deinit { close() }

    func close() {
        for s in statements.values { sqlite_nio_sqlite3_finalize(s) }
        statements.removeAll()
        if let db { sqlite_nio_sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs `sql` once with `binds`, calling `row` for each result row.
    func run(_ sql: String, _ binds: [SQLValue] = [], row: (SQLiteRowReader) throws -> Void = { _ in }) throws {
        let stmt = try statement(sql)
        defer {
            sqlite_nio_sqlite3_reset(stmt)
            sqlite_nio_sqlite3_clear_bindings(stmt)
        }
        for (i, value) in binds.enumerated() { try bind(value, at: Int32(i + 1), stmt, sql) }
        while true {
            let rc = sqlite_nio_sqlite3_step(stmt)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw failure(rc, sql) }
            try row(SQLiteRowReader(stmt: stmt))
        }
    }

    /// Rows the last INSERT, UPDATE or DELETE changed (0: an upsert's condition or an
    /// `OR IGNORE` kept the row as it was).
    var changes: Int { db.map { Int(sqlite_nio_sqlite3_changes($0)) } ?? 0 }

    /// Runs a statement that returns nothing (DDL, PRAGMA, BEGIN/COMMIT …) without caching it.
    func execute(_ sql: String) throws {
        guard let db else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "connection closed", sql: sql) }
        let rc = sqlite_nio_sqlite3_exec(db, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure(rc, sql) }
    }

    /// Runs `body` in a write transaction. BEGIN IMMEDIATE takes the write lock up front so two
    /// writers never deadlock upgrading a read lock.
    func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func statement(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { return s }
        guard let db else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "connection closed", sql: sql) }
        if statements.count >= Self.statementCacheLimit {
            for s in statements.values { sqlite_nio_sqlite3_finalize(s) }
            statements.removeAll()
        }
        var stmt: OpaquePointer?
        let rc = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw failure(rc, sql) }
        statements[sql] = stmt
        return stmt
    }

    private func bind(_ value: SQLValue, at i: Int32, _ stmt: OpaquePointer, _ sql: String) throws {
        let rc: Int32
        switch value {
        case .integer(let v): rc = sqlite_nio_sqlite3_bind_int64(stmt, i, v)
        case .text(let s): rc = sqlite_nio_sqlite3_bind_text64(stmt, i, s, UInt64(s.utf8.count), transient, UInt8(SQLITE_UTF8))
        case .blob(let b): rc = b.withUnsafeBytes { sqlite_nio_sqlite3_bind_blob64(stmt, i, $0.baseAddress, UInt64($0.count), transient) }
        case .null: rc = sqlite_nio_sqlite3_bind_null(stmt, i)
        }
        guard rc == SQLITE_OK else { throw failure(rc, sql) }
    }

    private func failure(_ rc: Int32, _ sql: String) -> SQLiteFailure {
        SQLiteFailure(code: rc, message: db.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "connection closed", sql: sql)
    }
}

/// SQLite copies bound values (the caller's buffers may go away before the step).
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The current row of a running statement, read by column index (valid only inside the
/// `row` closure of ``SQLiteHandle/run(_:_:row:)``).
struct SQLiteRowReader {
    fileprivate let stmt: OpaquePointer

    func int(_ column: Int32) -> Int64 { sqlite_nio_sqlite3_column_int64(stmt, column) }

    func text(_ column: Int32) -> String {
        guard let p = sqlite_nio_sqlite3_column_text(stmt, column) else { return "" }
        return String(cString: p)
    }

    func optionalText(_ column: Int32) -> String? {
        sqlite_nio_sqlite3_column_type(stmt, column) == SQLITE_NULL ? nil : text(column)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let n = Int(sqlite_nio_sqlite3_column_bytes(stmt, column))
        guard n > 0, let p = sqlite_nio_sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}
