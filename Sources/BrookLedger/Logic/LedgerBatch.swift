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
}

/// Applies a batch of events in order to a book loaded by a store, skipping events already
/// processed (idempotence's second line of defence, behind the stored offsets). Shared by both
/// stores and the poller, so stream and poller follow exactly the same rules.
public enum LedgerBatch {
    public static func apply(
        _ events: [(event: LedgerEvent, source: EventSource)], alreadyProcessed: Set<String>, book: LedgerBook
    ) throws(LedgerEventError) -> LedgerBatchResult {
        var result = LedgerBatchResult(book: book)
        var seen = alreadyProcessed
        for (event, source) in events {
            guard seen.insert(event.id).inserted else { continue }
            switch try result.book.apply(event) {
            case .applied:
                result.processed.append(ProcessedEvent(eventId: event.id, account: event.account, status: "applied", source: source))
                if let credit = event.creditForTransfer() { result.outbox.append(credit) }
            case .rejected(let reason):
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
