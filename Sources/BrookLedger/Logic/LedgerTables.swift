import Brook
import BrookPipeline
import BrookProtocol

/// What a database must offer inside a transaction for the shared batch step; SQLite and
/// PostgreSQL differ only in their SQL.
protocol LedgerTables {
    /// Which of `ids` were processed already, and the rows of `accounts`, read together.
    func read(processed ids: [String], accounts: [String]) async throws -> (processed: Set<String>, book: LedgerBook)
    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) async throws
}

enum CreditDestination: Sendable { case outbox, pendingEvents }

extension LedgerTables {
    /// The one batch step of stream and poller alike: skip processed ids, load the touched
    /// accounts, apply the rules in memory, write the effects.
    func applyBatch(_ events: [(event: LedgerEvent, source: EventSource)], creditsTo: CreditDestination) async throws {
        guard !events.isEmpty else { return }
        let (done, book) = try await read(processed: events.map(\.event.id), accounts: LedgerBatch.accounts(of: events.map(\.event)))
        let result = try LedgerBatch.apply(events, alreadyProcessed: done, book: book)
        try await write(result, creditsTo: creditsTo)
    }
}

/// A stored-offset move of one partition: from `expected` (nil: none stored yet) to `next`.
struct OffsetMove: Sendable {
    var partition: TopicPartition
    var expected: Int64?
    var next: Int64
}

/// What the stream's transactions need beyond the shared batch step: the stored offsets.
protocol LedgerOffsetTables: LedgerTables {
    /// The stored offsets of `partitions` for `group`, locked until the transaction ends where
    /// the database locks rows (so a second member's check waits for this one's move).
    func lockOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64]
    /// Stores every move's `next`; returns the partitions whose first insert lost to another
    /// member's (their stored offset is not ours to move).
    func storeOffsets(group: String, _ moves: [OffsetMove]) async throws -> Set<TopicPartition>
}

extension LedgerOffsetTables {
    /// The stream's transaction body for the batches of several partitions: checks each
    /// partition's stored offset (the fencing check), moves those that match, and applies their
    /// events as one batch (one read of the touched rows, one upsert per account and currency
    /// touched). Returns the index of each fenced batch with its error; nothing of those is applied.
    func applyStream(_ batches: [OffsetFencing.Batch], group: String)
        async throws -> [Int: SinkFenced]
    {
        let stored = try await lockOffsets(group: group, partitions: batches.map(\.move.partition))
        var fencing = OffsetFencing(batches, stored: stored)
        fencing.drop(lost: try await storeOffsets(group: group, fencing.accepted.map(\.move)))
        let (accepted, fenced) = (fencing.accepted, fencing.fenced)
        try await applyBatch(accepted.flatMap(\.events), creditsTo: .outbox)
        return fenced
    }
}

/// The stream's fencing decision, without I/O: a batch is applied only when its partition's
/// stored offset is the one it expects, and only if storing its move did not lose to another
/// member's first insert.
struct OffsetFencing {
    typealias Batch = (index: Int, move: OffsetMove, events: [(event: LedgerEvent, source: EventSource)])
    private(set) var accepted: [Batch] = []
    private(set) var fenced: [Int: SinkFenced] = [:]

    init(_ batches: [Batch], stored: [TopicPartition: Int64]) {
        for b in batches {
            let found = stored[b.move.partition]
            if found == b.move.expected {
                accepted.append(b)
            } else {
                fenced[b.index] = SinkFenced(partition: b.move.partition, expected: b.move.expected, found: found)
            }
        }
    }

    /// Fences the accepted batches of `lost` partitions (their stored offset is not ours).
    mutating func drop(lost: Set<TopicPartition>) {
        guard !lost.isEmpty else { return }
        accepted.removeAll { b in
            guard lost.contains(b.move.partition) else { return false }
            fenced[b.index] = SinkFenced(partition: b.move.partition, expected: b.move.expected, found: nil)
            return true
        }
    }
}

/// A combined sink call for a ledger store: validates each batch (an invalid record fails its
/// batch before any transaction), runs `transaction` over the valid ones with their offset
/// moves, and fails the batches it fenced. Nothing runs when no batch is valid.
func applyCombined(_ batches: [SinkBatch<LedgerEvent>],
                   transaction: ([OffsetFencing.Batch]) async throws -> [Int: SinkFenced]) async throws -> [Result<Void, any Error>] {
    var results = [Result<Void, any Error>](repeating: .success(()), count: batches.count)
    var valid: [OffsetFencing.Batch] = []
    for (i, b) in batches.enumerated() {
        do {
            valid.append((i, OffsetMove(partition: b.partition, expected: b.expected, next: b.next), try validated(b.records)))
        } catch {
            results[i] = .failure(error)
        }
    }
    guard !valid.isEmpty else { return results }
    for (i, f) in try await transaction(valid) { results[i] = .failure(f) }
    return results
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
