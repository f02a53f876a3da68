public enum TradeSide: String, Sendable, Hashable { case buy, sell }

/// A trade of `quantity` units of `symbol` at `price` minor units per unit, plus `fee`.
public struct Trade: Sendable, Hashable {
    public var side: TradeSide
    public var symbol: String
    public var quantity: Quantity
    /// Minor units of `currency` per whole unit.
    public var price: Int64
    /// Minor units of `currency`, never rounded (see ``TradeMath``).
    public var fee: Int64
    public var currency: String

    public init(side: TradeSide, symbol: String, quantity: Quantity, price: Int64, fee: Int64, currency: String) {
        self.side = side
        self.symbol = symbol
        self.quantity = quantity
        self.price = price
        self.fee = fee
        self.currency = currency
    }
}

/// One ledger event. Every event is keyed by `account` (the Kafka record key), so all events
/// of an account are ordered within one partition.
public struct LedgerEvent: Sendable, Hashable {
    public enum Body: Sendable, Hashable {
        case deposit(Cash)
        case withdrawal(Cash)
        case trade(Trade)
        /// A cash dividend (the total amount) paid on a holding of `symbol`.
        case dividend(symbol: String, Cash)
        /// Debits `account` and, if that succeeds, emits a ``transferCredit`` for `to`
        /// through the outbox (see ``LedgerOutbox``).
        case transfer(to: String, Cash)
        /// The credit half of transfer `transferId`, keyed by the destination account.
        case transferCredit(from: String, transferId: String, Cash)
    }

    /// Unique across the whole ledger; the idempotence key.
    public var id: String
    public var account: String
    public var body: Body

    public init(id: String, account: String, body: Body) {
        self.id = id
        self.account = account
        self.body = body
    }

    /// The credit event a successful transfer publishes; its id is derived from the transfer's
    /// so that publishing it twice is harmless (idempotence by event id).
    public func creditForTransfer() -> LedgerEvent? {
        guard case .transfer(let to, let cash) = body else { return nil }
        return LedgerEvent(id: "\(id)/credit", account: to, body: .transferCredit(from: account, transferId: id, cash))
    }

    /// The currency the event moves.
    public var currency: String {
        switch body {
        case .deposit(let c), .withdrawal(let c), .dividend(_, let c), .transfer(_, let c), .transferCredit(_, _, let c): c.currency
        case .trade(let t): t.currency
        }
    }

    /// Checks what makes an event impossible to apply at all (as opposed to a business
    /// rejection): such an event is dead-lettered.
    public func validate() throws(LedgerEventError) {
        func invalid(_ why: String) -> LedgerEventError { .invalid("event \(id): \(why)") }
        func cash(_ c: Cash, _ what: String) throws(LedgerEventError) {
            guard LedgerCurrencies.known.contains(c.currency) else { throw invalid("unknown currency '\(c.currency)'") }
            guard c.amount > 0 else { throw invalid("\(what) must be positive, got \(c.amount)") }
        }
        guard !id.isEmpty else { throw .invalid("event without id") }
        guard !account.isEmpty else { throw invalid("empty account") }
        switch body {
        case .deposit(let c): try cash(c, "deposit amount")
        case .withdrawal(let c): try cash(c, "withdrawal amount")
        case .dividend(let symbol, let c):
            guard !symbol.isEmpty else { throw invalid("dividend without symbol") }
            try cash(c, "dividend amount")
        case .transfer(let to, let c):
            guard !to.isEmpty, to != account else { throw invalid("transfer to '\(to)' from '\(account)'") }
            try cash(c, "transfer amount")
        case .transferCredit(let from, let transferId, let c):
            guard !from.isEmpty, !transferId.isEmpty else { throw invalid("credit without source") }
            try cash(c, "credit amount")
        case .trade(let t):
            guard LedgerCurrencies.known.contains(t.currency) else { throw invalid("unknown currency '\(t.currency)'") }
            guard !t.symbol.isEmpty else { throw invalid("trade without symbol") }
            guard t.quantity.micros > 0 else { throw invalid("quantity must be positive, got \(t.quantity)") }
            guard t.price > 0 else { throw invalid("price must be positive, got \(t.price)") }
            guard t.fee >= 0 else { throw invalid("fee must not be negative, got \(t.fee)") }
            guard TradeMath.cashDelta(side: t.side, quantity: t.quantity, price: t.price, fee: t.fee) != nil else {
                throw invalid("trade amount overflows")
            }
        }
    }
}

/// Why an event cannot be used at all; maps to a non-retryable ``RecordError``.
public enum LedgerEventError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not a ledger event (bad JSON, unknown version or type, missing field).
    case undecodable(String)
    /// A well-formed event that can never be applied (unknown currency, non-positive amount).
    case invalid(String)

    /// The `type` the dead-letter headers carry.
    public var typeName: String {
        switch self {
        case .undecodable: "DecodeError"
        case .invalid: "InvalidEvent"
        }
    }

    public var description: String {
        switch self {
        case .undecodable(let m), .invalid(let m): m
        }
    }
}
