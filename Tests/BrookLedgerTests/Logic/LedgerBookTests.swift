import BrookLedger
import Testing

@Suite("Ledger rules")
struct LedgerBookTests {
    @Test func depositsWithdrawalsAndRejections() throws {
        var book = LedgerBook()
        #expect(try book.apply(Fx.deposit("1", "a", 1_000)) == .applied)
        #expect(try book.apply(Fx.withdrawal("2", "a", 400)) == .applied)
        guard case .rejected(let reason) = try book.apply(Fx.withdrawal("3", "a", 601)) else {
            Issue.record("overdraft accepted")
            return
        }
        #expect(reason.contains("insufficient funds"))
        #expect(book.balance("a", "USD") == 600)
        // Currencies are separate balances.
        #expect(try book.apply(Fx.withdrawal("4", "a", 1, "EUR")) != .applied)
        #expect(Set(book.touchedCash) == [CashKey("a", "USD")])
    }

    @Test func tradesMoveCashAndPositions() throws {
        var book = LedgerBook()
        _ = try book.apply(Fx.deposit("1", "a", 10_000))
        // 1.5 × 1 001 = 1 501.5 → 1 502, plus fee 10.
        #expect(try book.apply(Fx.trade("2", "a", .buy, "ACME", "1.5", price: 1_001, fee: 10)) == .applied)
        #expect(book.balance("a", "USD") == 10_000 - 1_512)
        #expect(book.position("a", "ACME") == Quantity(parsing: "1.5"))
        guard case .rejected(let why) = try book.apply(Fx.trade("3", "a", .sell, "ACME", "2", price: 1_000)) else {
            Issue.record("short sale accepted")
            return
        }
        #expect(why.contains("insufficient position"))
        #expect(try book.apply(Fx.trade("4", "a", .sell, "ACME", "0.5", price: 2_000, fee: 5)) == .applied)
        #expect(book.balance("a", "USD") == 10_000 - 1_512 + 995)
        #expect(book.position("a", "ACME") == Quantity(units: 1))
        // A buy the cash cannot cover is rejected and changes nothing.
        #expect(try book.apply(Fx.trade("5", "a", .buy, "ACME", "100", price: 1_000)) != .applied)
        #expect(book.position("a", "ACME") == Quantity(units: 1))
    }

    @Test func invalidEventsThrow() {
        var book = LedgerBook()
        #expect(throws: LedgerEventError.self) { try book.apply(Fx.deposit("1", "a", -1)) }
        #expect(throws: LedgerEventError.self) { try book.apply(Fx.deposit("1", "a", 1, "XYZ")) }
    }

    @Test func batchSkipsProcessedAndRepeatedIdsAndEmitsTransferCredits() throws {
        let source = EventSource(topic: "t", partition: 0, offset: 0)
        let events = [Fx.deposit("d", "a", 100), Fx.deposit("old", "a", 100), Fx.transfer("t1", "a", "b", 60),
                      Fx.deposit("d", "a", 100), Fx.transfer("t2", "a", "b", 60)].map { ($0, source) }
        let result = try LedgerBatch.apply(events, alreadyProcessed: ["old"], book: LedgerBook())
        #expect(result.book.balance("a", "USD") == 40)
        #expect(result.processed.map(\.eventId) == ["d", "t1", "t2"])
        #expect(result.processed.map(\.status) == ["applied", "applied", "rejected"])
        #expect(result.outbox == [LedgerEvent(id: "t1/credit", account: "b", body: .transferCredit(from: "a", transferId: "t1", Cash(60, "USD")))])
    }
}
