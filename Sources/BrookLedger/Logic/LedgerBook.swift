/// Balance of one account in one currency.
public struct CashKey: Sendable, Hashable, Comparable {
    public var account: String
    public var currency: String
    public init(_ account: String, _ currency: String) { self.account = account; self.currency = currency }
    public static func < (a: CashKey, b: CashKey) -> Bool { (a.account, a.currency) < (b.account, b.currency) }
}

/// Holding of one account in one symbol.
public struct PositionKey: Sendable, Hashable, Comparable {
    public var account: String
    public var symbol: String
    public init(_ account: String, _ symbol: String) { self.account = account; self.symbol = symbol }
    public static func < (a: PositionKey, b: PositionKey) -> Bool { (a.account, a.symbol) < (b.account, b.symbol) }
}

/// What applying a valid event did. Rejections are outcomes, recorded like successes.
public enum LedgerOutcome: Sendable, Hashable {
    case applied
    case rejected(reason: String)
}

/// The ledger rules over an in-memory slice of state: pure, no I/O. Stores load the rows of
/// the accounts a batch touches into a book, apply the batch, and write back ``touchedCash`` and
/// ``touchedPositions``. Absent keys are zero.
public struct LedgerBook: Sendable {
    public private(set) var cash: [CashKey: Int64]
    public private(set) var positions: [PositionKey: Int64]
    /// Each balance row changed since the book was made (or since ``forgetChanges()``), with its
    /// value before the first change (nil: there was no row). A store that kept the book between
    /// transactions checks these old values as it writes the new ones.
    public private(set) var cashBefore: [CashKey: Int64?] = [:]
    /// As ``cashBefore``, for positions.
    public private(set) var positionsBefore: [PositionKey: Int64?] = [:]

    /// The balance rows to write back.
    public var touchedCash: Dictionary<CashKey, Int64?>.Keys { cashBefore.keys }
    /// The position rows to write back.
    public var touchedPositions: Dictionary<PositionKey, Int64?>.Keys { positionsBefore.keys }

    public init(cash: [CashKey: Int64] = [:], positions: [PositionKey: Int64] = [:]) {
        self.cash = cash
        self.positions = positions
    }

    public func balance(_ account: String, _ currency: String) -> Int64 { cash[CashKey(account, currency)] ?? 0 }
    public func position(_ account: String, _ symbol: String) -> Quantity {
        Quantity(micros: positions[PositionKey(account, symbol)] ?? 0)
    }

    /// Applies one event. Throws only for events that ``LedgerEvent/validate()`` rejects.
    public mutating func apply(_ event: LedgerEvent) throws(LedgerEventError) -> LedgerOutcome {
        try event.validate()
        let account = event.account
        switch event.body {
        case .deposit(let c), .dividend(_, let c), .transferCredit(_, _, let c):
            return credit(CashKey(account, c.currency), c.amount)
        case .withdrawal(let c), .transfer(_, let c):
            return debit(CashKey(account, c.currency), c.amount)
        case .trade(let t):
            // validate() guarantees the delta exists.
            let delta = TradeMath.cashDelta(side: t.side, quantity: t.quantity, price: t.price, fee: t.fee)!
            let cashKey = CashKey(account, t.currency)
            let positionKey = PositionKey(account, t.symbol)
            let held = positions[positionKey] ?? 0
            let balance = cash[cashKey] ?? 0
            if t.side == .sell && held < t.quantity.micros {
                return .rejected(reason: "insufficient position: holds \(Quantity(micros: held)) \(t.symbol), sells \(t.quantity)")
            }
            guard let newBalance = checkedSum(balance, delta) else { return .rejected(reason: "balance overflow") }
            if newBalance < 0 {
                return .rejected(reason: "insufficient funds: balance \(balance) \(t.currency), trade needs \(-delta)")
            }
            guard let newHeld = checkedSum(held, t.side == .buy ? t.quantity.micros : -t.quantity.micros) else {
                return .rejected(reason: "position overflow")
            }
            set(cashKey, newBalance)
            if positionsBefore[positionKey] == nil { positionsBefore[positionKey] = .some(positions[positionKey]) }
            positions[positionKey] = newHeld
            return .applied
        }
    }

    private mutating func credit(_ key: CashKey, _ amount: Int64) -> LedgerOutcome {
        guard let sum = checkedSum(cash[key] ?? 0, amount) else { return .rejected(reason: "balance overflow") }
        set(key, sum)
        return .applied
    }

    private mutating func debit(_ key: CashKey, _ amount: Int64) -> LedgerOutcome {
        let balance = cash[key] ?? 0
        guard balance >= amount else {
            return .rejected(reason: "insufficient funds: balance \(balance) \(key.currency), needs \(amount)")
        }
        set(key, balance - amount)
        return .applied
    }

    private mutating func set(_ key: CashKey, _ value: Int64) {
        if cashBefore[key] == nil { cashBefore[key] = .some(cash[key]) }
        cash[key] = value
    }

    /// Starts a new round of changes: the rows written so far are stored.
    public mutating func forgetChanges() {
        cashBefore.removeAll(keepingCapacity: true)
        positionsBefore.removeAll(keepingCapacity: true)
    }

    /// Puts `rows` (read from the database) in place of what the book held for their keys.
    mutating func merge(_ rows: LedgerBook) {
        for (k, v) in rows.cash { cash[k] = v }
        for (k, v) in rows.positions { positions[k] = v }
    }

    private func checkedSum(_ a: Int64, _ b: Int64) -> Int64? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }
}
