/// Cash as integer minor units (cents for USD, yen for JPY) in one currency: money is never
/// floating point anywhere in the ledger.
public struct Cash: Sendable, Hashable, CustomStringConvertible {
    /// Minor units of `currency`.
    public var amount: Int64
    /// ISO 4217 code, one of ``LedgerCurrencies/known``.
    public var currency: String

    public init(_ amount: Int64, _ currency: String) {
        self.amount = amount
        self.currency = currency
    }

    public var description: String { "\(amount) \(currency)" }
}

/// The currencies the ledger accepts; anything else makes an event invalid (dead-lettered),
/// because a balance in an unknown currency could never be reconciled.
public enum LedgerCurrencies {
    public static let known: Set<String> = ["USD", "EUR", "GBP", "CHF", "JPY", "SEK", "NOK"]
}

/// A quantity of a security as an exact decimal with six fractional digits, held as an
/// integer count of millionths (fractional shares without floating point).
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let scale: Int64 = 1_000_000
    public var micros: Int64

    public init(micros: Int64) { self.micros = micros }
    public init(units: Int64) { self.micros = units * Self.scale }

    /// Parses "12", "12.5", "0.000001"; nil for anything else (a leading "-", at most 12 whole
    /// digits and 6 decimals; no exponent, no empty part).
    public init?(parsing text: String) {
        var bytes = Substring(text).utf8[...]
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        var whole: Int64 = 0, wholeDigits = 0, fraction: Int64 = 0, fractionDigits = 0, seenPoint = false
        for b in bytes {
            if b == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
                continue
            }
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(b - UInt8(ascii: "0"))
            if seenPoint {
                fractionDigits += 1
                fraction = fraction * 10 + digit
            } else {
                wholeDigits += 1
                whole = whole * 10 + digit
            }
            guard wholeDigits <= 12, fractionDigits <= 6 else { return nil }
        }
        guard wholeDigits > 0, !seenPoint || fractionDigits > 0 else { return nil }
        for _ in fractionDigits..<6 { fraction *= 10 }
        micros = (whole * Self.scale + fraction) * (negative ? -1 : 1)
    }

    public var description: String {
        let sign = micros < 0 ? "-" : ""
        let magnitude = micros.magnitude
        let whole = magnitude / UInt64(Self.scale)
        let fraction = magnitude % UInt64(Self.scale)
        if fraction == 0 { return "\(sign)\(whole)" }
        var f = String(fraction)
        f = String(repeating: "0", count: 6 - f.count) + f
        while f.last == "0" { f.removeLast() }
        return "\(sign)\(whole).\(f)"
    }

    public static func < (a: Quantity, b: Quantity) -> Bool { a.micros < b.micros }
}

/// Trade arithmetic. `quantity × price` is computed exactly in 128 bits, then rounded to
/// minor units half away from zero (the usual commercial rounding); the fee is added (buy) or
/// subtracted (sell) after rounding, so the fee itself is never rounded.
public enum TradeMath {
    /// The gross amount in minor units, or nil if it does not fit in Int64.
    public static func gross(quantity: Quantity, price: Int64) -> Int64? {
        let product = quantity.micros.multipliedFullWidth(by: price)
        guard product.high >= 0 else { return nil }  // both factors are positive for valid trades
        return divideRounded(high: product.high, low: product.low)
    }

    private static func divideRounded(high: Int64, low: UInt64) -> Int64? {
        let scale = Quantity.scale
        guard high < scale / 2 else { return nil }  // quotient would exceed Int64
        let (quotient, remainder) = scale.dividingFullWidth((high, low))
        guard remainder * 2 >= scale else { return quotient }
        let (up, overflow) = quotient.addingReportingOverflow(1)
        return overflow ? nil : up
    }

    /// Cash change for a trade: buy = −(gross + fee), sell = gross − fee; nil on overflow.
    public static func cashDelta(side: TradeSide, quantity: Quantity, price: Int64, fee: Int64) -> Int64? {
        guard let gross = gross(quantity: quantity, price: price) else { return nil }
        switch side {
        case .buy:
            let (total, overflow) = gross.addingReportingOverflow(fee)
            return overflow ? nil : -total
        case .sell:
            return gross - fee
        }
    }
}
