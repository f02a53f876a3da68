/// The legacy design, kept honest for comparison: producers insert into a `pending_events`
/// table and pollers claim batches of rows, apply them with the same ledger rules and the same
/// idempotence as the stream, and mark them done, all in one transaction.
///
/// Per-account order is kept: on PostgreSQL a poller first takes one of 64 account buckets with
/// `FOR UPDATE SKIP LOCKED` (so concurrent pollers never work on the same accounts) and then
/// claims that bucket's oldest pending rows; on SQLite the single writer claims the globally
/// oldest rows. Rows that cannot be decoded or applied are marked `dead` with the reason (the
/// poller's dead letters). A transfer's credit is inserted as a new pending row for the
/// destination account in the same transaction.
public protocol LedgerPoller: Sendable {
    /// Inserts events into the queue (what the legacy producers do).
    func enqueue(_ events: [PendingEvent]) async throws
    /// Claims up to `limit` events, applies them and commits; returns what was claimed
    /// (no rows: nothing claimable right now).
    func claim(limit: Int) async throws -> PollerClaim
    /// Rows still pending.
    func pendingCount() async throws -> Int
    /// Every queued row in queue order (for verification): (seq, payload, status).
    func queuedEvents() async throws -> [(seq: Int64, payload: [UInt8], status: String)]
    func close() async throws
}

/// What one poll claimed and committed.
public struct PollerClaim: Sendable {
    /// Rows claimed, dead ones included.
    public var rows: Int
    /// Ids of the well-formed events among them (applied or rejected by the ledger rules).
    public var eventIds: [String]
}

extension LedgerPoller {
    /// Claims up to `limit` events, applies them and commits; returns how many rows were
    /// claimed (0: nothing claimable right now).
    public func pollOnce(limit: Int) async throws -> Int { try await claim(limit: limit).rows }
}

/// Runs several pollers concurrently.
public enum PollerRunner {
    /// Polls with every poller until the queue stays empty (all pollers saw nothing to claim
    /// and nothing is pending). Returns the number of events claimed.
    public static func drain(_ pollers: [any LedgerPoller], batchSize: Int = 500) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for poller in pollers {
                group.addTask {
                    var claimed = 0
                    while true {
                        let n = try await poller.pollOnce(limit: batchSize)
                        claimed += n
                        if n == 0 {
                            // Another poller may hold the last bucket: stop only when nothing is pending.
                            if try await poller.pendingCount() == 0 { return claimed }
                            try await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// Polls until cancelled, sleeping `idle` whenever a poll finds nothing (the legacy
    /// poller's polling interval).
    public static func run(_ poller: any LedgerPoller, batchSize: Int = 500, idle: Duration = .milliseconds(50)) async throws {
        while !Task.isCancelled {
            if try await poller.pollOnce(limit: batchSize) == 0 {
                try await Task.sleep(for: idle)
            }
        }
    }
}

/// What a claimed row turned into, shared by both pollers.
struct ClaimedBatch {
    var events: [(event: LedgerEvent, source: EventSource)] = []
    /// (seq, reason) of rows that cannot be applied.
    var dead: [(seq: Int64, reason: String)] = []

    init(rows: [(seq: Int64, payload: [UInt8])]) {
        for row in rows.sorted(by: { $0.seq < $1.seq }) {
            do {
                let event = try LedgerEventCodec.decode(row.payload)
                events.append((event, EventSource(topic: "pending_events", partition: 0, offset: row.seq)))
            } catch {
                dead.append((row.seq, "\(error.typeName): \(error.description)"))
            }
        }
    }
}
