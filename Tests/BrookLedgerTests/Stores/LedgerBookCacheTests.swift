import Brook
@testable import BrookLedger
import BrookPipeline
import Testing

/// The SQLite stream store keeps its accounts' rows between transactions (LedgerBookCache).
/// These tests change rows behind a store's cache — through a second store on the same file,
/// applying the same account from another partition, as a producer with another partitioner
/// would — and check that every decision still matches the database.
@Suite("Ledger book cache", .serialized, .timeLimit(.minutes(2)))
struct LedgerBookCacheTests {
    /// Two stores on one new SQLite file.
    private func withTwoStores(_ body: (SQLiteLedgerStore, SQLiteLedgerStore) async throws -> Void) async throws {
        let path = StoreKind.tempSQLitePath()
        let a = try await SQLiteLedgerStore.open(path: path)
        let b = try await SQLiteLedgerStore.open(path: path)
        do {
            try await body(a, b)
        } catch {
            try? await a.close()
            try? await b.close()
            throw error
        }
        try await a.close()
        try await b.close()
    }

    @Test func aWriteOverARowChangedBehindTheCacheUsesTheDatabaseValue() async throws {
        try await withTwoStores { a, b in
            try await a.apply(Fx.records([Fx.deposit("1", "acct", 10)]), partition: Fx.tp(0), group: Fx.group, expected: nil, next: 1)
            // Behind a's cache: the same account through partition 1.
            try await b.apply(Fx.records([Fx.deposit("2", "acct", 100)], partition: 1), partition: Fx.tp(1), group: Fx.group, expected: nil, next: 1)
            // a's cache says 10; the database says 110.
            try await a.apply(Fx.records([Fx.deposit("3", "acct", 5)], from: 1), partition: Fx.tp(0), group: Fx.group, expected: 1, next: 2)
            #expect(try await a.balances() == [CashKey("acct", "USD"): 115])
            // And the cache is right again afterwards.
            try await a.apply(Fx.records([Fx.withdrawal("4", "acct", 115)], from: 2), partition: Fx.tp(0), group: Fx.group, expected: 2, next: 3)
            #expect(try await a.balances() == [CashKey("acct", "USD"): 0])
            #expect(try await a.processedCounts() == ["applied": 4])
        }
    }

    /// A rejection writes no balance row, so no compare-and-set sees the stale value: the row
    /// it read is checked on its own.
    @Test func aRejectionDecidedOnAStaleCachedRowIsDecidedAgain() async throws {
        try await withTwoStores { a, b in
            try await a.apply(Fx.records([Fx.deposit("1", "acct", 10), Fx.trade("2", "acct", .buy, "ACME", "1", price: 10)]),
                              partition: Fx.tp(0), group: Fx.group, expected: nil, next: 2)
            try await b.apply(Fx.records([Fx.deposit("3", "acct", 100), Fx.trade("4", "acct", .buy, "ACME", "2", price: 1)], partition: 1),
                              partition: Fx.tp(1), group: Fx.group, expected: nil, next: 2)
            // a's cache: 0 USD and 1 ACME; the database: 98 USD and 3 ACME.
            try await a.apply(Fx.records([Fx.withdrawal("5", "acct", 50), Fx.trade("6", "acct", .sell, "ACME", "3", price: 1)], from: 2),
                              partition: Fx.tp(0), group: Fx.group, expected: 2, next: 4)
            #expect(try await a.outcome(of: "5") == .applied)
            #expect(try await a.outcome(of: "6") == .applied)
            #expect(try await a.balances() == [CashKey("acct", "USD"): 51])
            #expect(try await a.positions() == [PositionKey("acct", "ACME"): 0])
        }
    }

    /// Another member applied the partition in between (its stored offset moved on): the
    /// cache for it is not used at all.
    @Test func anotherMembersWorkOnThePartitionEmptiesTheCache() async throws {
        try await withTwoStores { a, b in
            try await a.apply(Fx.records([Fx.deposit("1", "acct", 10)]), partition: Fx.tp(0), group: Fx.group, expected: nil, next: 1)
            try await b.apply(Fx.records([Fx.deposit("2", "acct", 7)], from: 1), partition: Fx.tp(0), group: Fx.group, expected: 1, next: 2)
            try await a.apply(Fx.records([Fx.withdrawal("3", "acct", 17)], from: 2), partition: Fx.tp(0), group: Fx.group, expected: 2, next: 3)
            #expect(try await a.outcome(of: "3") == .applied)
            #expect(try await a.balances() == [CashKey("acct", "USD"): 0])
        }
    }

    @Test func theCacheFollowsOffsetsAndStaysBounded() {
        var cache = LedgerBookCache(capacity: 2)
        let p0 = Fx.tp(0), p1 = Fx.tp(1)
        var book = cache.takeBook(merging: LedgerBook(cash: [CashKey("a", "USD"): 5]))
        #expect(book.balance("a", "USD") == 5)
        _ = try? book.apply(Fx.deposit("1", "a", 1))
        cache.committed(book: book, moves: [OffsetMove(partition: p0, expected: nil, next: 1)], accounts: ["a": p0])
        #expect(cache.holds("a", from: p0))
        #expect(!cache.holds("a", from: p1))
        #expect(cache.book.balance("a", "USD") == 6)
        #expect(cache.book.touchedCash.isEmpty)
        // The partition continues where the cache left it: kept.
        cache.begin([OffsetMove(partition: p0, expected: 1, next: 2)])
        #expect(cache.holds("a", from: p0))
        // It does not: emptied.
        cache.begin([OffsetMove(partition: p0, expected: 5, next: 6)])
        #expect(!cache.holds("a", from: p0))
        #expect(cache.book.cash.isEmpty)
        // More accounts than the capacity: emptied.
        cache.committed(book: LedgerBook(), moves: [], accounts: ["a": p0, "b": p0])
        #expect(cache.accountCount == 2)
        cache.committed(book: LedgerBook(), moves: [], accounts: ["c": p1])
        #expect(cache.accountCount == 0)
    }
}
