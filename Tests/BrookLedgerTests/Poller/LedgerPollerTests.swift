import BrookLedger
import Testing

@Suite("Legacy poller", .serialized, .timeLimit(.minutes(3)))
struct LedgerPollerTests {
    /// Four pollers drain one queue: every event is applied exactly once, per-account order
    /// holds (the balances equal an in-order replay), poison rows are marked dead, and
    /// transfer credits queued by the pollers themselves are applied too.
    @Test(arguments: StoreKind.allCases)
    func concurrentPollersApplyEachEventExactlyOnce(_ kind: StoreKind) async throws {
        let (pollers, store) = try await kind.makePollers(4)
        let generated = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: 30, events: 2_000, seed: 3, skew: .zipf(exponent: 1.1), poisonRate: 0.02)))
        // The same events enqueued twice (a legacy producer's retry): idempotence absorbs it.
        try await pollers[0].enqueue(generated.map(\.pendingEvent))
        try await pollers[1].enqueue(Array(generated.prefix(100)).map(\.pendingEvent))
        let claimed = try await PollerRunner.drain(pollers, batchSize: 64)

        let queued = try await pollers[0].queuedEvents()
        #expect(claimed == queued.count)
        #expect(queued.allSatisfy { $0.status != "pending" })
        let poison = generated.filter { $0.event == nil }.count
        #expect(poison > 0)
        #expect(queued.filter { $0.status == "dead" }.count == poison + generated.prefix(100).filter { $0.event == nil }.count)

        let records = queued.map { VerifyRecord(partition: 0, offset: $0.seq, value: $0.payload) }
        let expected = LedgerVerifier.replay(records)
        let counts = try await store.processedCounts()
        #expect(counts["applied", default: 0] + counts["rejected", default: 0] == expected.applied + expected.rejected)
        #expect(counts["applied"] == expected.applied)
        #expect(expected.duplicates == 100 - generated.prefix(100).filter { $0.event == nil }.count)
        let differences = try await LedgerVerifier.verify(store, records: records)
        #expect(differences.isEmpty, "\(differences.prefix(5))")
        for poller in pollers { try await poller.close() }
        try await store.close()
    }
}
