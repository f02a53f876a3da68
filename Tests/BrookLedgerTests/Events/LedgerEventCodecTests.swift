import BrookLedger
import BrookPipeline
import NIOCore
import Testing

@Suite("Ledger event encoding")
struct LedgerEventCodecTests {
    static let samples: [LedgerEvent] = [
        Fx.deposit("e1", "a1", 10_000),
        Fx.withdrawal("e2", "a1", 2_500, "EUR"),
        Fx.trade("e3", "a1", .buy, "ACME", "1.5", price: 12_345, fee: 100),
        Fx.trade("e4", "a1", .sell, "ACME", "0.000001", price: 1, fee: 0),
        LedgerEvent(id: "e5", account: "a1", body: .dividend(symbol: "ACME", Cash(300, "JPY"))),
        Fx.transfer("e6", "a1", "a2", 500),
        Fx.transfer("e6", "a1", "a2", 500).creditForTransfer()!,
    ]

    @Test(arguments: samples)
    func roundTrips(_ event: LedgerEvent) throws {
        let bytes = LedgerEventCodec.encode(event)
        #expect(try LedgerEventCodec.decode(bytes) == event)
        #expect(String(decoding: bytes, as: UTF8.self).contains(#""v":1"#))
    }

    @Test func encodingIsStableJSON() {
        let text = String(decoding: LedgerEventCodec.encode(Fx.trade("e3", "a1", .buy, "ACME", "1.5", price: 12_345, fee: 100)), as: UTF8.self)
        #expect(text == #"{"account":"a1","currency":"USD","fee":100,"id":"e3","price":12345,"quantity":"1.5","symbol":"ACME","type":"buy","v":1}"#)
    }

    @Test(arguments: [
        #"{"v":1,"id":"x","account":"a","type":"deposit","amount":12"#,
        #"not json"#,
        #"{"v":2,"id":"x","account":"a","type":"deposit","amount":1,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"teleport","amount":1,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"deposit","currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"deposit","amount":1.5,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"buy","symbol":"S","quantity":"1.0000001","price":1,"currency":"USD"}"#,
    ])
    func undecodableBytesAreDecodeErrors(_ text: String) {
        #expect(throws: LedgerEventError.self) { try LedgerEventCodec.decode(Array(text.utf8)) }
        do {
            _ = try LedgerEventCodec.decode(Array(text.utf8))
        } catch {
            #expect(error.typeName == "DecodeError")
        }
    }

    @Test(arguments: [
        #"{"v":1,"id":"x","account":"a","type":"deposit","amount":-5,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"deposit","amount":0,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"withdrawal","amount":5,"currency":"XXX"}"#,
        #"{"v":1,"id":"x","account":"a","type":"transfer","to":"a","amount":5,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"buy","symbol":"S","quantity":"-1","price":1,"currency":"USD"}"#,
        #"{"v":1,"id":"x","account":"a","type":"sell","symbol":"S","quantity":"1","price":1,"fee":-1,"currency":"USD"}"#,
    ])
    func invalidEventsAreNonRetryableRecordErrors(_ text: String) {
        do {
            _ = try LedgerEventCodec.decode(ByteBuffer(string: text), offset: 42)
            Issue.record("decoded an invalid event")
        } catch {
            #expect(error.kind == .nonRetryable)
            #expect(error.type == "InvalidEvent")
            #expect(error.offset == 42)
        }
    }

    @Test func quantitiesParseExactly() {
        #expect(Quantity(parsing: "1.5")?.micros == 1_500_000)
        #expect(Quantity(parsing: "0.000001")?.micros == 1)
        #expect(Quantity(parsing: "12")?.micros == 12_000_000)
        #expect(Quantity(parsing: "1.") == nil)
        #expect(Quantity(parsing: ".5") == nil)
        #expect(Quantity(parsing: "1e3") == nil)
        #expect(Quantity(micros: 1_500_000).description == "1.5")
        #expect(Quantity(micros: 7).description == "0.000007")
    }

    @Test func tradeCostRoundsHalfAwayFromZeroBeforeTheFee() {
        // 0.5 × 3 = 1.5 minor units → 2; 0.25 × 3 = 0.75 → 1; 0.1 × 3 = 0.3 → 0.
        #expect(TradeMath.gross(quantity: Quantity(parsing: "0.5")!, price: 3) == 2)
        #expect(TradeMath.gross(quantity: Quantity(parsing: "0.25")!, price: 3) == 1)
        #expect(TradeMath.gross(quantity: Quantity(parsing: "0.1")!, price: 3) == 0)
        #expect(TradeMath.cashDelta(side: .buy, quantity: Quantity(parsing: "0.5")!, price: 3, fee: 10) == -12)
        #expect(TradeMath.cashDelta(side: .sell, quantity: Quantity(parsing: "0.5")!, price: 3, fee: 10) == -8)
        #expect(TradeMath.gross(quantity: Quantity(units: 1_000_000_000), price: Int64.max / 10) == nil)
    }
}
