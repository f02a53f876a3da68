import BrookLedger
import Testing

@Suite("LedgerVerifyOffsets")
struct VerifyStoredOffsetsTests {
    @Test func aGroupWithoutStoredOffsetsIsOneClearLineNamingTheOthers() {
        let line = LedgerVerifier.missingStoredOffsets(group: "brook-ledgr", topic: "trades", storedPartitions: 0, groupsWithOffsets: ["brook-ledger", "other"])
        #expect(line == "the database has no stored offsets for group 'brook-ledgr' on topic 'trades'; groups with stored offsets: brook-ledger, other (pass --group NAME)")
    }

    @Test func anEmptyDatabaseSaysNoGroupHasAny() {
        let line = LedgerVerifier.missingStoredOffsets(group: "brook-ledger", topic: "trades", storedPartitions: 0, groupsWithOffsets: [])
        #expect(line?.hasSuffix("no group has any (no worker has applied a batch to this database yet)") == true)
    }

    @Test func aGroupWithStoredOffsetsPasses() {
        #expect(LedgerVerifier.missingStoredOffsets(group: "g", topic: "t", storedPartitions: 3, groupsWithOffsets: ["g"]) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func storesListTheGroupsWithOffsetsOnATopic(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        #expect(try await store.storedGroups(topic: Fx.topic) == [])
        try await store.apply(Fx.records([Fx.deposit("1", "a", 10)]), partition: Fx.tp(), group: "g2", expected: nil, next: 1)
        try await store.apply(Fx.records([Fx.deposit("2", "b", 10)], partition: 1), partition: Fx.tp(1), group: "g1", expected: nil, next: 1)
        try await store.apply(Fx.records([Fx.deposit("3", "c", 10)], partition: 2), partition: Fx.tp(2), group: "g1", expected: nil, next: 1)
        #expect(try await store.storedGroups(topic: Fx.topic) == ["g1", "g2"])
        #expect(try await store.storedGroups(topic: "other") == [])
        try await store.close()
    }
}

@Suite("LedgerStoreState")
struct LedgerStoreStateTests {
    /// Verify reads offsets, balances, positions and counts in one snapshot; they must be what
    /// the single reads return.
    @Test(arguments: StoreKind.allCases)
    func stateIsTheSingleReadsInOneSnapshot(_ kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        let events = [Fx.deposit("1", "a", 1_000), Fx.trade("2", "a", .buy, "ACME", "2", price: 100), Fx.withdrawal("3", "b", 5)]
        try await store.apply(Fx.records(events), partition: Fx.tp(), group: Fx.group, expected: nil, next: 3)
        let state = try await store.state(group: Fx.group, partitions: [Fx.tp(), Fx.tp(1)])
        #expect(state.storedOffsets == [Fx.tp(): 3])
        #expect(state.cash == (try await store.balances()) && state.cash == [CashKey("a", "USD"): 800])
        #expect(state.positions == (try await store.positions()) && state.positions == [PositionKey("a", "ACME"): 2_000_000])
        #expect(state.processedCounts == ["applied": 2, "rejected": 1])
        #expect(try await store.state(group: "other", partitions: [Fx.tp()]).storedOffsets.isEmpty)
        try await store.close()
    }
}
