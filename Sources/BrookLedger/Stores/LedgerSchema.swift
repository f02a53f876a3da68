/// DDL for both databases. Kept side by side so the two stores cannot drift apart.
enum LedgerSchema {
    /// `bytes` is BLOB in SQLite and BYTEA in PostgreSQL; `serial` the auto-increment key;
    /// `keyed` ends the tables looked up only by their primary key (SQLite: `WITHOUT ROWID`, so
    /// a row lives in its key's B-tree instead of a rowid table plus a second index).
    static func statements(bytes: String, serial: String, keyed: String = "") -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS balances (account TEXT NOT NULL, currency TEXT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (account, currency))\(keyed)",
            "CREATE TABLE IF NOT EXISTS positions (account TEXT NOT NULL, symbol TEXT NOT NULL, quantity_micros BIGINT NOT NULL, PRIMARY KEY (account, symbol))\(keyed)",
            """
            CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, account TEXT NOT NULL, status TEXT NOT NULL,
              reason TEXT, topic TEXT NOT NULL, part INTEGER NOT NULL, source_offset BIGINT NOT NULL)\(keyed)
            """,
            """
            CREATE TABLE IF NOT EXISTS ledger_offsets (group_id TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
              next_offset BIGINT NOT NULL, PRIMARY KEY (group_id, topic, part))
            """,
            "CREATE TABLE IF NOT EXISTS outbox (seq \(serial), event_id TEXT NOT NULL UNIQUE, account TEXT NOT NULL, payload \(bytes) NOT NULL)",
            // The poller's queue. `bucket` = a stable hash of the account, so one poller at a
            // time works on an account's events, in `seq` order (see LedgerPoller).
            """
            CREATE TABLE IF NOT EXISTS pending_events (seq \(serial), event_id TEXT, account TEXT NOT NULL, bucket INTEGER NOT NULL,
              payload \(bytes) NOT NULL, status TEXT NOT NULL DEFAULT 'pending', reason TEXT)
            """,
            "CREATE INDEX IF NOT EXISTS pending_events_claim ON pending_events (bucket, seq) WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS pending_events_next ON pending_events (seq) WHERE status = 'pending'",
            "CREATE TABLE IF NOT EXISTS poller_buckets (bucket INTEGER PRIMARY KEY)",
        ]
    }

    /// Number of poller buckets: the poller's unit of concurrency, like a topic's partitions.
    static let pollerBuckets = 64
}
