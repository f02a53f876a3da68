import BrookProtocol

public enum AccountSkew: Sendable, Hashable {
    case uniform
    /// P(rank k) ∝ 1 / k^exponent (1.0 is the classic Zipf).
    case zipf(exponent: Double)
}

public struct LedgerGeneratorConfig: Sendable {
    public var accounts: Int
    public var events: Int
    public var seed: UInt64
    public var skew: AccountSkew
    /// Fraction (0…1) of records after the opening deposits that are poison: bytes the worker
    /// cannot decode, or events that can never be applied.
    public var poisonRate: Double
    public var currencies: [String]
    public var symbols: [String]

    public init(accounts: Int, events: Int, seed: UInt64 = 1, skew: AccountSkew = .uniform, poisonRate: Double = 0,
                currencies: [String] = ["USD", "EUR", "GBP"], symbols: [String] = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK"]) {
        precondition(accounts > 0 && events >= 0 && (0...1).contains(poisonRate))
        self.accounts = accounts
        self.events = events
        self.seed = seed
        self.skew = skew
        self.poisonRate = poisonRate
        self.currencies = currencies
        self.symbols = symbols
    }
}

/// One generated record: produce `value` with key `key` (or insert it into `pending_events`).
public struct GeneratedRecord: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]
    /// The event the bytes encode, or nil for poison.
    public var event: LedgerEvent?
    public var eventId: String

    public var pendingEvent: PendingEvent { PendingEvent(eventId: eventId, account: key, payload: value) }
}

/// Deterministic synthetic events: the same configuration gives the same bytes every time.
///
/// One deposit per account comes first (in the account's home currency, a multiple of 1 000
/// units), so most later trades and withdrawals succeed; then a mix of 30% buys, 20% sells (of
/// what the account was last seen buying), 15% deposits, 12% withdrawals, 13% transfers and 10%
/// dividends.
public struct LedgerGenerator: Sequence, IteratorProtocol, Sendable {
    public let config: LedgerGeneratorConfig
    private var rng: SeededRandom
    private let picker: AccountPicker
    private var index = 0
    /// Generator-side memory of buys, so sells mostly name something held.
    private var bought: [Int: (symbol: String, micros: Int64)] = [:]

    public init(_ config: LedgerGeneratorConfig) {
        self.config = config
        self.rng = SeededRandom(seed: config.seed)
        self.picker = AccountPicker(count: config.accounts, skew: config.skew)
    }

    public static func account(_ index: Int) -> String {
        let digits = String(index)
        return "acct-" + String(repeating: "0", count: Swift.max(0, 6 - digits.count)) + digits
    }

    private func home(_ account: Int) -> String { config.currencies[account % config.currencies.count] }

    public mutating func next() -> GeneratedRecord? {
        guard index < config.events else { return nil }
        defer { index += 1 }
        let id = "s\(config.seed)-\(index)"
        if index < config.accounts {
            let event = LedgerEvent(id: id, account: Self.account(index),
                                    body: .deposit(Cash(rng.int(10...100) * 100_000, home(index))))
            return GeneratedRecord(key: event.account, value: LedgerEventCodec.encode(event), event: event, eventId: id)
        }
        let a = picker.pick(&rng)
        let account = Self.account(a)
        if config.poisonRate > 0 && rng.unit() < config.poisonRate {
            return poison(id: id, account: account)
        }
        let currency = home(a)
        let roll = rng.int(0...99)
        let body: LedgerEvent.Body
        switch roll {
        case 0..<30:
            let symbol = config.symbols[Int(rng.int(0...Int64(config.symbols.count - 1)))]
            let micros = rng.int(1...20_000) * 1000
            bought[a] = (symbol, micros)
            body = .trade(Trade(side: .buy, symbol: symbol, quantity: Quantity(micros: micros),
                                price: rng.int(100...50_000), fee: rng.int(0...500), currency: currency))
        case 30..<50:
            let last = bought[a] ?? (config.symbols[0], 1_000_000)
            let micros = Swift.max(1000, last.micros / 1000 * rng.int(1...2) / 2 * 1000)
            body = .trade(Trade(side: .sell, symbol: last.symbol, quantity: Quantity(micros: micros),
                                price: rng.int(100...50_000), fee: rng.int(0...500), currency: currency))
        case 50..<65:
            body = .deposit(Cash(rng.int(100...500_000), currency))
        case 65..<77:
            body = .withdrawal(Cash(rng.int(100...300_000), currency))
        case 77..<90 where config.accounts > 1:
            var to = picker.pick(&rng)
            if to == a { to = (a + 1) % config.accounts }
            body = .transfer(to: Self.account(to), Cash(rng.int(100...200_000), currency))
        default:
            let symbol = bought[a]?.symbol ?? config.symbols[0]
            body = .dividend(symbol: symbol, Cash(rng.int(1...10_000), currency))
        }
        let event = LedgerEvent(id: id, account: account, body: body)
        return GeneratedRecord(key: account, value: LedgerEventCodec.encode(event), event: event, eventId: id)
    }

    /// Four kinds of poison: truncated JSON, an unknown event type, a negative amount and an
    /// unknown currency. The first two fail decoding, the last two validation.
    private mutating func poison(id: String, account: String) -> GeneratedRecord {
        let text: String
        switch rng.int(0...3) {
        case 0: text = #"{"v":1,"id":"\#(id)","account":"\#(account)","type":"deposit","amount":12"#
        case 1: text = #"{"v":1,"id":"\#(id)","account":"\#(account)","type":"teleport","amount":100,"currency":"USD"}"#
        case 2: text = #"{"v":1,"id":"\#(id)","account":"\#(account)","type":"deposit","amount":-500,"currency":"USD"}"#
        default: text = #"{"v":1,"id":"\#(id)","account":"\#(account)","type":"withdrawal","amount":500,"currency":"XXX"}"#
        }
        return GeneratedRecord(key: account, value: Array(text.utf8), event: nil, eventId: id)
    }
}
