import Foundation

/// A record as read back from the ledger topic (or the poller's queue: partition 0, offset = seq).
public struct VerifyRecord: Sendable, Hashable {
    public var partition: Int32
    public var offset: Int64
    public var value: [UInt8]
    public init(partition: Int32, offset: Int64, value: [UInt8]) {
        self.partition = partition
        self.offset = offset
        self.value = value
    }
}

/// A record's place in the topic; the dead-letter topic's provenance headers name it.
public struct RecordPosition: Sendable, Hashable {
    public var partition: Int32
    public var offset: Int64
    public init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// The balances the events imply, computed without any of the stores' code.
public struct LedgerExpectation: Sendable {
    public var cash: [CashKey: Int64] = [:]
    public var positions: [PositionKey: Int64] = [:]
    public var applied = 0
    public var rejected = 0
    /// Undecodable or invalid records, and records still dead-lettered.
    public var skipped = 0
    public var duplicates = 0
}

public struct LedgerDifference: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable { case cash, position }
    public var kind: Kind
    public var account: String
    /// Currency or symbol.
    public var item: String
    public var expected: Int64
    public var actual: Int64

    public init(kind: Kind, account: String, item: String, expected: Int64, actual: Int64) {
        self.kind = kind
        self.account = account
        self.item = item
        self.expected = expected
        self.actual = actual
    }

    public var description: String { "\(kind.rawValue) \(account) \(item): expected \(expected), database has \(actual)" }
}

/// Recomputes every balance from the topic independently of the stores: its own replay loop and
/// its own trade arithmetic (Foundation's `Decimal`, rounded `.plain` = half away from zero),
/// so a bug in the ledger rules or the stores' SQL shows up as a difference.
public enum LedgerVerifier {
    /// Replays `records` in offset order per partition (an account's events are all in one
    /// partition), skipping records at `deadLettered` positions (still in the DLT; a replayed
    /// record is back in the topic at a new offset) and repeated event ids.
    public static func replay(_ records: [VerifyRecord], deadLettered: Set<RecordPosition> = []) -> LedgerExpectation {
        var x = LedgerExpectation()
        var seen = Set<String>()
        let ordered = records.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
        for record in ordered {
            guard !deadLettered.contains(RecordPosition(partition: record.partition, offset: record.offset)),
                  let event = try? LedgerEventCodec.decode(record.value) else {
                x.skipped += 1
                continue
            }
            guard seen.insert(event.id).inserted else {
                x.duplicates += 1
                continue
            }
            if apply(event, to: &x) { x.applied += 1 } else { x.rejected += 1 }
        }
        return x
    }

    /// Returns false for a business rejection.
    private static func apply(_ e: LedgerEvent, to x: inout LedgerExpectation) -> Bool {
        func add(_ currency: String, _ delta: Int64) -> Bool {
            let key = CashKey(e.account, currency)
            let new = (x.cash[key] ?? 0) + delta
            if new < 0 { return false }
            x.cash[key] = new
            return true
        }
        switch e.body {
        case .deposit(let c), .dividend(_, let c), .transferCredit(_, _, let c): return add(c.currency, c.amount)
        case .withdrawal(let c), .transfer(_, let c): return add(c.currency, -c.amount)
        case .trade(let t):
            var gross = Decimal(t.quantity.micros) / Decimal(1_000_000) * Decimal(t.price)
            var rounded = Decimal()
            NSDecimalRound(&rounded, &gross, 0, .plain)
            let amount = NSDecimalNumber(decimal: rounded).int64Value
            let key = PositionKey(e.account, t.symbol)
            let held = x.positions[key] ?? 0
            if t.side == .sell && held < t.quantity.micros { return false }
            guard add(t.currency, t.side == .buy ? -(amount + t.fee) : amount - t.fee) else { return false }
            x.positions[key] = held + (t.side == .buy ? t.quantity.micros : -t.quantity.micros)
            return true
        }
    }

    /// Every key where the database and the expectation disagree (absent counts as zero).
    public static func differences(expected: LedgerExpectation, cash: [CashKey: Int64], positions: [PositionKey: Int64]) -> [LedgerDifference] {
        var out: [LedgerDifference] = []
        for key in Set(expected.cash.keys).union(cash.keys).sorted() {
            let (e, a) = (expected.cash[key] ?? 0, cash[key] ?? 0)
            if e != a { out.append(LedgerDifference(kind: .cash, account: key.account, item: key.currency, expected: e, actual: a)) }
        }
        for key in Set(expected.positions.keys).union(positions.keys).sorted() {
            let (e, a) = (expected.positions[key] ?? 0, positions[key] ?? 0)
            if e != a { out.append(LedgerDifference(kind: .position, account: key.account, item: key.symbol, expected: e, actual: a)) }
        }
        return out
    }

    /// The line to stop with when the store holds no offsets for `group` on `topic`: there is
    /// nothing the database claims to have consumed, so comparing would only list every balance
    /// as "expected 0" (a mistyped or forgotten `--group`, or no worker has committed yet).
    /// Nil when it holds some (`storedPartitions` > 0).
    public static func missingStoredOffsets(group: String, topic: String, storedPartitions: Int, groupsWithOffsets: [String]) -> String? {
        guard storedPartitions == 0 else { return nil }
        let others = groupsWithOffsets.filter { $0 != group }
        let hint = others.isEmpty
            ? "no group has any (no worker has applied a batch to this database yet)"
            : "groups with stored offsets: \(others.joined(separator: ", ")) (pass --group NAME)"
        return "the database has no stored offsets for group '\(group)' on topic '\(topic)'; \(hint)"
    }

    /// Replays and compares with `store`.
    public static func verify(_ store: some LedgerStore, records: [VerifyRecord], deadLettered: Set<RecordPosition> = []) async throws -> [LedgerDifference] {
        let expected = replay(records, deadLettered: deadLettered)
        return differences(expected: expected, cash: try await store.balances(), positions: try await store.positions())
    }
}
