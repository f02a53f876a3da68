import BrookLedger
import Testing

@Suite("Verifier")
struct LedgerVerifierTests {
    private func records(_ events: [LedgerEvent], partition: Int32 = 0) -> [VerifyRecord] {
        events.enumerated().map { VerifyRecord(partition: partition, offset: Int64($0), value: LedgerEventCodec.encode($1)) }
    }

    @Test(arguments: StoreKind.allCases)
    func detectsATamperedBalance(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let events = [Fx.deposit("1", "a", 1_000), Fx.trade("2", "a", .buy, "ACME", "2", price: 100), Fx.deposit("3", "b", 5)]
        try await store.apply(Fx.records(events), partition: Fx.tp(), group: Fx.group, expected: nil, next: 3)
        #expect(try await LedgerVerifier.verify(store, records: records(events)).isEmpty)
        // Tamper: one more deposit in the database than in the topic.
        try await store.apply(Fx.records([Fx.deposit("x", "b", 1)], from: 3), partition: Fx.tp(), group: Fx.group, expected: 3, next: 4)
        let differences = try await LedgerVerifier.verify(store, records: records(events))
        #expect(differences == [LedgerDifference(kind: .cash, account: "b", item: "USD", expected: 5, actual: 6)])
        try await store.close()
    }

    @Test func detectsMissingAndWrongPositions() {
        let expected = LedgerVerifier.replay(records([Fx.deposit("1", "a", 1_000), Fx.trade("2", "a", .buy, "ACME", "2", price: 100)]))
        #expect(expected.cash == [CashKey("a", "USD"): 800] && expected.positions == [PositionKey("a", "ACME"): 2_000_000])
        let differences = LedgerVerifier.differences(expected: expected, cash: [CashKey("a", "USD"): 800, CashKey("z", "EUR"): 0],
                                                     positions: [PositionKey("a", "ACME"): 1_000_000])
        #expect(differences == [LedgerDifference(kind: .position, account: "a", item: "ACME", expected: 2_000_000, actual: 1_000_000)])
    }

    @Test func skipsDeadLetteredRecordsUntilReplayedAndDedupes() {
        var topic = records([Fx.deposit("1", "a", 100), Fx.deposit("2", "a", 10), Fx.deposit("1", "a", 100)])
        topic.append(VerifyRecord(partition: 0, offset: 3, value: Array("garbage".utf8)))
        // Offset 1 went to the DLT and was not replayed.
        var x = LedgerVerifier.replay(topic, deadLettered: [RecordPosition(partition: 0, offset: 1)])
        #expect(x.cash == [CashKey("a", "USD"): 100])
        #expect(x.skipped == 2 && x.duplicates == 1 && x.applied == 1)
        // Replayed: back in the topic at a new offset.
        topic.append(VerifyRecord(partition: 0, offset: 4, value: topic[1].value))
        x = LedgerVerifier.replay(topic, deadLettered: [RecordPosition(partition: 0, offset: 1)])
        #expect(x.cash == [CashKey("a", "USD"): 110])
    }

    @Test func rejectionsMatchTheLedgerRules() {
        let x = LedgerVerifier.replay(records([Fx.deposit("1", "a", 10), Fx.withdrawal("2", "a", 11), Fx.trade("3", "a", .sell, "S", "1", price: 1)]))
        #expect(x.applied == 1 && x.rejected == 2)
    }
}

@Suite("Database URLs")
struct LedgerDatabaseTests {
    @Test func parsesSQLiteAndPostgres() throws {
        guard case .sqlite(let path) = try LedgerDatabase(url: "sqlite:/tmp/x.db") else { throw Failure() }
        #expect(path == "/tmp/x.db")
        guard case .postgres(let tcp) = try LedgerDatabase(url: "postgres://u:p@db.local:6543/ledger") else { throw Failure() }
        #expect(tcp.host == "db.local" && tcp.port == 6543 && tcp.username == "u" && tcp.password == "p" && tcp.database == "ledger")
        guard case .postgres(let unix) = try LedgerDatabase(url: "postgres://u@/ledger?host=/run/pg&port=7000") else { throw Failure() }
        #expect(unix.unixSocketPath == "/run/pg/.s.PGSQL.7000")
        #expect(throws: LedgerDatabase.BadURL.self) { try LedgerDatabase(url: "mysql://x") }
    }

    struct Failure: Error {}
}
