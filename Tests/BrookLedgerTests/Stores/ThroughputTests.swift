import BrookLedger
import Foundation
import Testing

/// Stream sink vs poller on the same database kind and the same events, both verified; prints
/// the rates (a debug build on a shared machine: the ratio matters, not the absolute numbers).
@Suite("Ledger throughput", .serialized, .timeLimit(.minutes(3)))
struct ThroughputTests {
    static let events = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: 200, events: 6_000, seed: 11, skew: .zipf(exponent: 1.0))))
    static let partitions: Int32 = 8

    @Test(arguments: StoreKind.allCases)
    func streamAndPollerAgreeAndAreTimed(_ kind: StoreKind) async throws {
        // Stream: each partition's events in batches of 500, partitions concurrently.
        var byPartition: [Int32: [LedgerEvent]] = [:]
        for r in Self.events { byPartition[Int32(PendingEvent.bucket(of: r.key)) % Self.partitions, default: []].append(r.event!) }
        let store = try await kind.makeStore()
        let clock = ContinuousClock()
        let streamTime = try await clock.measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (p, events) in byPartition {
                    group.addTask {
                        var expected: Int64?
                        for start in stride(from: 0, to: events.count, by: 500) {
                            let chunk = Array(events[start..<min(start + 500, events.count)])
                            try await store.apply(Fx.records(chunk, partition: p, from: Int64(start)), partition: Fx.tp(p),
                                                  group: Fx.group, expected: expected, next: Int64(start + chunk.count))
                            expected = Int64(start + chunk.count)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let streamCounts = try await store.processedCounts()
        // The stream store matches a replay of the topic (its transfer credits still wait in the outbox).
        var topic: [VerifyRecord] = []
        for (p, events) in byPartition {
            topic += events.enumerated().map { VerifyRecord(partition: p, offset: Int64($0), value: LedgerEventCodec.encode($1)) }
        }
        let streamDifferences = try await LedgerVerifier.verify(store, records: topic)
        #expect(streamDifferences.isEmpty, "\(streamDifferences.prefix(5))")
        try await store.close()

        let (pollers, pollerStore) = try await kind.makePollers(4)
        try await pollers[0].enqueue(Self.events.map(\.pendingEvent))
        let pollerTime = try await clock.measure { _ = try await PollerRunner.drain(pollers, batchSize: 500) }
        // The poller also applied the transfer credits; the stream's are still in its outbox.
        let credits = (try await pollerStore.processedCounts())["applied", default: 0] - streamCounts["applied", default: 0]
        #expect(credits >= 0)
        let queued = try await pollers[0].queuedEvents()
        let differences = try await LedgerVerifier.verify(pollerStore, records: queued.map { VerifyRecord(partition: 0, offset: $0.seq, value: $0.payload) })
        #expect(differences.isEmpty, "\(differences.prefix(5))")
        for p in pollers { try await p.close() }
        try await pollerStore.close()

        func rate(_ d: Duration) -> Int { Int(Double(Self.events.count) / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)) }
        print("ledger throughput [\(kind)]: stream \(rate(streamTime)) events/s, poller (4) \(rate(pollerTime)) events/s, ratio \(String(format: "%.1f", Double(rate(streamTime)) / Double(max(rate(pollerTime), 1))))×")
    }
}
