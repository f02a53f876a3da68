import BrookPipeline
import NIOCore

/// The wire format of ledger events: one UTF-8 JSON object per record, versioned by `"v"`.
///
/// Version 1 (amounts, prices and fees are JSON integers in minor units; quantities are decimal
/// strings with at most six fractional digits, so nothing passes through a float):
///
///     {"v":1,"id":"e1","account":"a1","type":"deposit","amount":10000,"currency":"USD"}
///     {"v":1,"id":"e2","account":"a1","type":"withdrawal","amount":2500,"currency":"USD"}
///     {"v":1,"id":"e3","account":"a1","type":"buy","symbol":"ACME","quantity":"1.5","price":12345,"fee":100,"currency":"USD"}
///     {"v":1,"id":"e4","account":"a1","type":"sell", …same fields as buy}
///     {"v":1,"id":"e5","account":"a1","type":"dividend","symbol":"ACME","amount":300,"currency":"USD"}
///     {"v":1,"id":"e6","account":"a1","type":"transfer","to":"a2","amount":500,"currency":"USD"}
///     {"v":1,"id":"e6/credit","account":"a2","type":"transfer_credit","from":"a1","transfer_id":"e6","amount":500,"currency":"USD"}
///
/// The record key is the account. Unknown fields are ignored (forward compatible); an unknown
/// version or type is undecodable.
public enum LedgerEventCodec {
    public static let version = 1

    public static func encode(_ event: LedgerEvent) -> [UInt8] {
        var f: [String: FlatJSON.Value] = ["v": .integer(Int64(version)), "id": .string(event.id), "account": .string(event.account)]
        func cash(_ c: Cash) {
            f["amount"] = .integer(c.amount)
            f["currency"] = .string(c.currency)
        }
        switch event.body {
        case .deposit(let c): f["type"] = .string("deposit"); cash(c)
        case .withdrawal(let c): f["type"] = .string("withdrawal"); cash(c)
        case .dividend(let symbol, let c): f["type"] = .string("dividend"); f["symbol"] = .string(symbol); cash(c)
        case .transfer(let to, let c): f["type"] = .string("transfer"); f["to"] = .string(to); cash(c)
        case .transferCredit(let from, let transferId, let c):
            f["type"] = .string("transfer_credit"); f["from"] = .string(from); f["transfer_id"] = .string(transferId); cash(c)
        case .trade(let t):
            f["type"] = .string(t.side.rawValue); f["symbol"] = .string(t.symbol); f["quantity"] = .string(t.quantity.description)
            f["price"] = .integer(t.price); f["fee"] = .integer(t.fee); f["currency"] = .string(t.currency)
        }
        // Sorted keys: stable bytes, so the generator is deterministic byte for byte.
        return FlatJSON.write(f.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Decodes and validates; every failure is a ``LedgerEventError``.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(LedgerEventError) -> LedgerEvent {
        let f: FlatJSON.Object
        do {
            f = try FlatJSON.parse(bytes)
        } catch {
            throw .undecodable("not a ledger event: \(error.message)")
        }
        let id = (try? Self.text(f, "id")) ?? "?"
        func text(_ name: String) throws(LedgerEventError) -> String { try Self.text(f, name) }
        func integer(_ name: String) throws(LedgerEventError) -> Int64 {
            guard case .integer(let v)? = f[name] else { throw .undecodable("event \(id): '\(name)' missing or not an integer") }
            return v
        }
        guard case .integer(let v)? = f["v"], v == Int64(version) else { throw .undecodable("event \(id): unsupported or missing version") }
        func cash() throws(LedgerEventError) -> Cash { Cash(try integer("amount"), try text("currency")) }
        let type = try text("type")
        let body: LedgerEvent.Body
        switch type {
        case "deposit": body = .deposit(try cash())
        case "withdrawal": body = .withdrawal(try cash())
        case "dividend": body = .dividend(symbol: try text("symbol"), try cash())
        case "transfer": body = .transfer(to: try text("to"), try cash())
        case "transfer_credit": body = .transferCredit(from: try text("from"), transferId: try text("transfer_id"), try cash())
        case "buy", "sell":
            let q = try text("quantity")
            guard let quantity = Quantity(parsing: q) else { throw .undecodable("event \(id): bad quantity '\(q)'") }
            body = .trade(Trade(side: type == "buy" ? .buy : .sell, symbol: try text("symbol"), quantity: quantity,
                                price: try integer("price"), fee: f["fee"] == nil ? 0 : try integer("fee"), currency: try text("currency")))
        default:
            throw .undecodable("event \(id): unknown event type '\(type)'")
        }
        let event = LedgerEvent(id: try text("id"), account: try text("account"), body: body)
        try event.validate()
        return event
    }

    private static func text(_ f: FlatJSON.Object, _ name: String) throws(LedgerEventError) -> String {
        guard case .string(let s)? = f[name] else { throw .undecodable("'\(name)' missing or not a string") }
        return s
    }

    /// For the pipeline's decoder: a bad record becomes a non-retryable ``RecordError``, which
    /// the pipeline dead-letters.
    public static func decode(_ buffer: ByteBuffer, offset: Int64) throws(RecordError) -> LedgerEvent {
        do {
            return try decode(buffer.readableBytesView)
        } catch {
            throw error.recordError(offset: offset)
        }
    }
}

extension LedgerEventError {
    public func recordError(offset: Int64) -> RecordError {
        RecordError(offset: offset, kind: .nonRetryable, type: typeName, message: description)
    }
}
