/// What a database must offer inside a transaction for the shared batch step; SQLite and
/// PostgreSQL differ only in their SQL.
protocol LedgerTables {
    func processedIds(_ ids: [String]) async throws -> Set<String>
    func loadBook(accounts: [String]) async throws -> LedgerBook
    func write(_ result: LedgerBatchResult, creditsTo: CreditDestination) async throws
}

enum CreditDestination: Sendable { case outbox, pendingEvents }

extension LedgerTables {
    /// The one batch step of stream and poller alike: skip processed ids, load the touched
    /// accounts, apply the rules in memory, write the effects.
    func applyBatch(_ events: [(event: LedgerEvent, source: EventSource)], creditsTo: CreditDestination) async throws {
        guard !events.isEmpty else { return }
        let done = try await processedIds(events.map(\.event.id))
        let book = try await loadBook(accounts: LedgerBatch.accounts(of: events.map(\.event)))
        let result = try LedgerBatch.apply(events, alreadyProcessed: done, book: book)
        try await write(result, creditsTo: creditsTo)
    }
}
