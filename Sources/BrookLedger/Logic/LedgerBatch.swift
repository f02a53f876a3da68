/// One event's fate within a batch, as stored in `processed_events`.
public struct ProcessedEvent: Sendable, Hashable {
    public var eventId: String
    public var account: String
    /// `applied` or `rejected`.
    public var status: String
    public var reason: String?
    /// Where the event came from: (topic, partition, offset) or the poller's ("pending", 0, seq).
    public var source: EventSource
}

public struct EventSource: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// The result of applying a batch to a book: everything a store must write in its transaction.
public struct LedgerBatchResult: Sendable {
    public var processed: [ProcessedEvent] = []
    /// Credit events of successful transfers, to be written to the outbox in the same transaction.
    public var outbox: [LedgerEvent] = []
    public var book: LedgerBook
    /// Rows that rejected events read: their values decided an outcome although nothing was
    /// written to them (a store serving rows from a cache must check these still hold).
    public var rejectedReads = LedgerRowKeys()
}

/// A set of balance and position rows.
public struct LedgerRowKeys: Sendable, Hashable {
    public var cash: Set<CashKey> = []
    public var positions: Set<PositionKey> = []
    public init() {}
}

/// Applies a batch of events in order to a book loaded by a store, skipping events already
/// processed (idempotence's second line of defence, behind the stored offsets). Shared by both
/// stores and the poller, so stream and poller follow exactly the same rules.
public enum LedgerBatch {
    public static func apply(
        _ events: [(event: LedgerEvent, source: EventSource)], alreadyProcessed: Set<String>, book: consuming LedgerBook
    ) throws(LedgerEventError) -> LedgerBatchResult {
        // Consumed, not copied: a store's long-lived book is changed in place.
        var result = LedgerBatchResult(book: book)
        var seen = alreadyProcessed
        for (event, source) in events {
            guard seen.insert(event.id).inserted else { continue }
            switch try result.book.apply(event) {
            case .applied:
                result.processed.append(ProcessedEvent(eventId: event.id, account: event.account, status: "applied", source: source))
                if let credit = event.creditForTransfer() { result.outbox.append(credit) }
            case .rejected(let reason):
                event.rowsRead(into: &result.rejectedReads)
                result.processed.append(ProcessedEvent(eventId: event.id, account: event.account, status: "rejected", reason: reason, source: source))
            }
        }
        return result
    }

    /// The accounts whose rows a batch needs loaded.
    public static func accounts(of events: some Sequence<LedgerEvent>) -> [String] {
        Array(Set(events.map(\.account))).sorted()
    }
}

extension LedgerEvent {
    /// The rows whose values ``LedgerBook/apply(_:)`` reads for this event.
    func rowsRead(into keys: inout LedgerRowKeys) {
        keys.cash.insert(CashKey(account, currency))
        if case .trade(let t) = body { keys.positions.insert(PositionKey(account, t.symbol)) }
    }
}
