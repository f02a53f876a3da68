import Brook
import BrookPipeline
import BrookProtocol

/// A ledger database: the exactly-once sink the pipeline writes into, plus the read side.
///
/// Tables (same names and meaning in SQLite and PostgreSQL):
/// - `balances(account, currency, amount)` and `positions(account, symbol, quantity_micros)`;
/// - `processed_events(event_id PRIMARY KEY, account, status, reason, topic, part, source_offset)`:
///   every applied or rejected event, the idempotence guard;
/// - `ledger_offsets(group_id, topic, part, next_offset)`: the stored consumer offsets;
/// - `outbox(event_id PRIMARY KEY, account, payload)`: transfer credits awaiting publication;
/// - `pending_events`, `poller_buckets`: the legacy poller's queue (see ``LedgerPoller``).
public protocol LedgerStore: TransactionalSink where Value == LedgerEvent {
    /// Every cash balance row, sorted by account and currency.
    func balances() async throws -> [CashKey: Int64]
    /// Every position row (quantities in millionths).
    func positions() async throws -> [PositionKey: Int64]
    /// How an event was processed, or nil if never seen.
    func outcome(of eventId: String) async throws -> LedgerOutcome?
    /// Counts of processed events by status (`applied`, `rejected`).
    func processedCounts() async throws -> [String: Int]
    /// The groups that have stored offsets for `topic`, sorted.
    func storedGroups(topic: String) async throws -> [String]
    /// `group`'s stored offsets for `partitions`, every balance and position and the processed
    /// counts, read in ONE read transaction: one snapshot of the database, so they agree with
    /// each other while workers keep writing (what verify compares with the topic).
    func state(group: String, partitions: [TopicPartition]) async throws -> LedgerStoreState
    /// Transfer credits not yet published, oldest first.
    func pendingOutbox(limit: Int) async throws -> [OutboxEntry]
    /// Removes published credits from the outbox.
    func markPublished(_ eventIds: [String]) async throws
    func close() async throws
}

/// What ``LedgerStore/state(group:partitions:)`` reads in one snapshot.
public struct LedgerStoreState: Sendable {
    public var storedOffsets: [TopicPartition: Int64]
    public var cash: [CashKey: Int64]
    public var positions: [PositionKey: Int64]
    /// Processed events by status (`applied`, `rejected`).
    public var processedCounts: [String: Int]

    public init(storedOffsets: [TopicPartition: Int64], cash: [CashKey: Int64], positions: [PositionKey: Int64], processedCounts: [String: Int]) {
        self.storedOffsets = storedOffsets
        self.cash = cash
        self.positions = positions
        self.processedCounts = processedCounts
    }
}

/// A transfer credit waiting in the outbox: produce `value` with key `key` to the ledger topic.
public struct OutboxEntry: Sendable, Hashable {
    public var eventId: String
    public var key: String
    public var value: [UInt8]
}

extension LedgerStore {
    /// Publishes up to `limit` outbox entries with `publish` (e.g. a KafkaProducer send that
    /// waits for acks), then removes them. A crash between the two re-publishes them; the credit's
    /// derived event id makes that harmless. Returns how many were published.
    @discardableResult
    public func relayOutbox(limit: Int = 1000, publish: @Sendable ([OutboxEntry]) async throws -> Void) async throws -> Int {
        let entries = try await pendingOutbox(limit: limit)
        guard !entries.isEmpty else { return 0 }
        try await publish(entries)
        try await markPublished(entries.map(\.eventId))
        return entries.count
    }
}

/// Validates a batch before any transaction starts, so an invalid record is reported (and
/// dead-lettered by the pipeline) without touching the database.
func validated(_ records: [PipelineRecord<LedgerEvent>]) throws(RecordError) -> [(event: LedgerEvent, source: EventSource)] {
    var out: [(event: LedgerEvent, source: EventSource)] = []
    out.reserveCapacity(records.count)
    for r in records {
        do {
            try r.value.validate()
        } catch {
            throw error.recordError(offset: r.offset)
        }
        out.append((r.value, EventSource(topic: r.topic, partition: r.partition, offset: r.offset)))
    }
    return out
}

/// Parses a stored status back into an outcome.
func storedOutcome(status: String, reason: String?) -> LedgerOutcome {
    status == "applied" ? .applied : .rejected(reason: reason ?? "")
}
