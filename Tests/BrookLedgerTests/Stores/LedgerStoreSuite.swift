import Brook
import BrookLedger
import BrookPipeline
import Testing

/// One behaviour, two databases: every test runs on SQLite and on a real PostgreSQL.
@Suite("Ledger stores", .serialized, .timeLimit(.minutes(3)))
struct LedgerStoreSuite {
    private func withStore(_ kind: StoreKind, _ body: (any LedgerStore) async throws -> Void) async throws {
        let store = try await kind.makeStore()
        do {
            try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test(arguments: StoreKind.allCases)
    func appliesBatchesAndStoresOffsets(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.storedOffsets(group: Fx.group, partitions: [Fx.tp()]).isEmpty)
            try await store.apply(Fx.records([Fx.deposit("1", "a", 1_000), Fx.withdrawal("2", "a", 300)]),
                                  partition: Fx.tp(), group: Fx.group, expected: nil, next: 2)
            try await store.apply(Fx.records([Fx.trade("3", "a", .buy, "ACME", "0.5", price: 999, fee: 1)], from: 2),
                                  partition: Fx.tp(), group: Fx.group, expected: 2, next: 3)
            #expect(try await store.storedOffsets(group: Fx.group, partitions: [Fx.tp(), Fx.tp(1)]) == [Fx.tp(): 3])
            #expect(try await store.storedOffsets(group: "other", partitions: [Fx.tp()]).isEmpty)
            // 0.5 × 999 = 499.5 → 500, + 1 fee.
            #expect(try await store.balances() == [CashKey("a", "USD"): 199])
            #expect(try await store.positions() == [PositionKey("a", "ACME"): 500_000])
            #expect(try await store.outcome(of: "3") == .applied)
            #expect(try await store.outcome(of: "nope") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func compareAndSetFencesAStaleMemberAndAppliesNothing(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.apply(Fx.records([Fx.deposit("1", "a", 100)]), partition: Fx.tp(), group: Fx.group, expected: nil, next: 1)
            // A member that still thinks nothing is stored, and one with an old offset.
            for expected in [nil, Int64(0), Int64(5)] {
                await #expect(throws: SinkFenced.self) {
                    try await store.apply(Fx.records([Fx.deposit("2", "a", 100)], from: 1), partition: Fx.tp(), group: Fx.group,
                                          expected: expected, next: 2)
                }
            }
            #expect(try await store.balances() == [CashKey("a", "USD"): 100])
            #expect(try await store.outcome(of: "2") == nil)
            #expect(try await store.storedOffsets(group: Fx.group, partitions: [Fx.tp()]) == [Fx.tp(): 1])
            // The fenced error names what it found.
            do {
                try await store.apply([], partition: Fx.tp(), group: Fx.group, expected: 7, next: 8)
                Issue.record("not fenced")
            } catch let fenced as SinkFenced {
                #expect(fenced.found == 1 && fenced.expected == 7)
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func eventIdsAreIdempotentAcrossOffsetsAndPartitions(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let events = [Fx.deposit("1", "a", 100), Fx.deposit("2", "a", 50)]
            try await store.apply(Fx.records(events), partition: Fx.tp(), group: Fx.group, expected: nil, next: 2)
            // The same events again (a producer retry wrote them twice), and once more within one batch.
            try await store.apply(Fx.records(events + events + [Fx.deposit("3", "a", 1)], from: 2), partition: Fx.tp(),
                                  group: Fx.group, expected: 2, next: 7)
            try await store.apply(Fx.records(events, partition: 1), partition: Fx.tp(1), group: Fx.group, expected: nil, next: 2)
            #expect(try await store.balances() == [CashKey("a", "USD"): 151])
            #expect(try await store.processedCounts() == ["applied": 3])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func businessRejectionsAreRecordedOutcomes(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.apply(Fx.records([Fx.deposit("1", "a", 100), Fx.withdrawal("2", "a", 101),
                                              Fx.trade("3", "a", .sell, "ACME", "1", price: 5)]),
                                  partition: Fx.tp(), group: Fx.group, expected: nil, next: 3)
            guard case .rejected(let reason) = try await store.outcome(of: "2") else {
                Issue.record("withdrawal not rejected")
                return
            }
            #expect(reason.contains("insufficient funds"))
            guard case .rejected(let why) = try await store.outcome(of: "3") else {
                Issue.record("sell not rejected")
                return
            }
            #expect(why.contains("insufficient position"))
            #expect(try await store.processedCounts() == ["applied": 1, "rejected": 2])
            #expect(try await store.balances() == [CashKey("a", "USD"): 100])
            #expect(try await store.storedOffsets(group: Fx.group, partitions: [Fx.tp()]) == [Fx.tp(): 3])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anInvalidRecordIsNamedAndNothingIsApplied(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let batch = Fx.records([Fx.deposit("1", "a", 100), Fx.deposit("2", "a", -5), Fx.deposit("3", "a", 1)], from: 10)
            do {
                try await store.apply(batch, partition: Fx.tp(), group: Fx.group, expected: nil, next: 13)
                Issue.record("invalid event applied")
            } catch let error as RecordError {
                #expect(error.offset == 11 && error.kind == .nonRetryable && error.type == "InvalidEvent")
            }
            #expect(try await store.balances().isEmpty)
            #expect(try await store.storedOffsets(group: Fx.group, partitions: [Fx.tp()]).isEmpty)
            // The pipeline then dead-letters it and calls again without it.
            try await store.apply([batch[0], batch[2]], partition: Fx.tp(), group: Fx.group, expected: nil, next: 13)
            #expect(try await store.balances() == [CashKey("a", "USD"): 101])
        }
    }

    /// A transfer is debited in the source account's partition; the credit waits in the outbox
    /// (written in the same transaction) and is applied in the destination's partition once
    /// relayed. A rejected transfer credits nothing; a credit relayed twice applies once.
    @Test(arguments: StoreKind.allCases)
    func transfersGoThroughTheOutboxInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.apply(Fx.records([Fx.deposit("d", "a", 100), Fx.transfer("t1", "a", "b", 70), Fx.transfer("t2", "a", "b", 70)]),
                                  partition: Fx.tp(0), group: Fx.group, expected: nil, next: 3)
            // b's own withdrawal, ordered before the credit arrives, is rejected: no credit yet.
            try await store.apply(Fx.records([Fx.withdrawal("w", "b", 50)], partition: 1), partition: Fx.tp(1), group: Fx.group, expected: nil, next: 1)
            #expect(try await store.balances() == [CashKey("a", "USD"): 30])
            let pending = try await store.pendingOutbox(limit: 10)
            #expect(pending.map(\.eventId) == ["t1/credit"])
            #expect(pending.first?.key == "b")

            let published = Published()
            #expect(try await store.relayOutbox { await published.add($0) } == 1)
            #expect(try await store.pendingOutbox(limit: 10).isEmpty)
            let credits = try await published.all.map { try LedgerEventCodec.decode($0.value) }
            // Published twice (a relay crash before markPublished): applied once.
            try await store.apply(Fx.records(credits + credits + [Fx.withdrawal("w2", "b", 50)], partition: 1, from: 1),
                                  partition: Fx.tp(1), group: Fx.group, expected: 1, next: 4)
            #expect(try await store.balances() == [CashKey("a", "USD"): 30, CashKey("b", "USD"): 20])
            #expect(try await store.outcome(of: "t1/credit") == .applied)
            guard case .rejected = try await store.outcome(of: "t2") else {
                Issue.record("overdrawing transfer not rejected")
                return
            }
        }
    }

    /// Many batches across partitions from the generator, compared with the independent replay.
    @Test(arguments: StoreKind.allCases)
    func generatedWorkloadMatchesTheIndependentReplay(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let partitions: Int32 = 4
            var byPartition: [Int32: [LedgerEvent]] = [:]
            var topic: [VerifyRecord] = []
            for record in LedgerGenerator(LedgerGeneratorConfig(accounts: 40, events: 1_500, seed: 7, skew: .zipf(exponent: 1.0))) {
                let p = Int32(PendingEvent.bucket(of: record.key)) % partitions
                topic.append(VerifyRecord(partition: p, offset: Int64(byPartition[p, default: []].count), value: record.value))
                byPartition[p, default: []].append(record.event!)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (p, events) in byPartition {
                    group.addTask {
                        var expected: Int64?
                        for start in stride(from: 0, to: events.count, by: 100) {
                            let chunk = Array(events[start..<min(start + 100, events.count)])
                            let next = Int64(start + chunk.count)
                            try await store.apply(Fx.records(chunk, partition: p, from: Int64(start)), partition: Fx.tp(p),
                                                  group: Fx.group, expected: expected, next: next)
                            expected = next
                        }
                    }
                }
                try await group.waitForAll()
            }
            // Credits published to the partition of the destination account, then consumed.
            var next = [Int32: Int64]()
            for (p, events) in byPartition { next[p] = Int64(events.count) }
            let credits = try await store.pendingOutbox(limit: 100_000)
            #expect(!credits.isEmpty)
            for credit in credits {
                let p = Int32(PendingEvent.bucket(of: credit.key)) % partitions
                let offset = next[p]!
                topic.append(VerifyRecord(partition: p, offset: offset, value: credit.value))
                try await store.apply(Fx.records([try LedgerEventCodec.decode(credit.value)], partition: p, from: offset),
                                      partition: Fx.tp(p), group: Fx.group, expected: offset, next: offset + 1)
                next[p] = offset + 1
            }
            try await store.markPublished(credits.map(\.eventId))
            let differences = try await LedgerVerifier.verify(store, records: topic)
            #expect(differences.isEmpty, "\(differences.prefix(5))")
            let expected = LedgerVerifier.replay(topic)
            let counts = try await store.processedCounts()
            #expect(counts["applied"] == expected.applied && counts["rejected", default: 0] == expected.rejected)
            #expect(expected.applied > expected.rejected)
        }
    }
}

/// Collects what a relay publishes.
actor Published {
    private(set) var all: [OutboxEntry] = []
    func add(_ entries: [OutboxEntry]) { all += entries }
}
