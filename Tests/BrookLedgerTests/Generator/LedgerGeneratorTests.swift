import BrookLedger
import Testing

@Suite("Event generator")
struct LedgerGeneratorTests {
    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        let config = LedgerGeneratorConfig(accounts: 50, events: 1_000, seed: 42, skew: .zipf(exponent: 1.0), poisonRate: 0.05)
        let a = Array(LedgerGenerator(config))
        let b = Array(LedgerGenerator(config))
        #expect(a == b)
        var other = config
        other.seed = 43
        #expect(Array(LedgerGenerator(other)).map(\.value) != a.map(\.value))
        #expect(a.count == 1_000)
        #expect(Set(a.map(\.eventId)).count == 1_000)
    }

    @Test func depositsComeFirstAndKeysAreAccounts() {
        let records = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: 20, events: 500, seed: 1)))
        for (i, r) in records.prefix(20).enumerated() {
            guard case .deposit = r.event?.body else {
                Issue.record("event \(i) is not a deposit")
                continue
            }
            #expect(r.key == LedgerGenerator.account(i))
        }
        #expect(records.allSatisfy { $0.event == nil || $0.event?.account == $0.key })
        let replay = LedgerVerifier.replay(records.enumerated().map { VerifyRecord(partition: 0, offset: Int64($0), value: $1.value) })
        #expect(replay.applied > 4 * replay.rejected, "most events succeed: \(replay.applied) applied, \(replay.rejected) rejected")
    }

    @Test func poisonRateAndPoisonIsUnusable() throws {
        let records = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: 10, events: 5_010, seed: 9, poisonRate: 0.1)))
        let poison = records.filter { $0.event == nil }
        #expect((400...600).contains(poison.count))
        for p in poison { #expect(throws: LedgerEventError.self) { try LedgerEventCodec.decode(p.value) } }
        for r in records where r.event != nil { #expect(try LedgerEventCodec.decode(r.value) == r.event) }
    }

    @Test func zipfSkewConcentratesOnFewAccounts() {
        func topShare(_ skew: AccountSkew) -> Double {
            let records = LedgerGenerator(LedgerGeneratorConfig(accounts: 1_000, events: 21_000, seed: 5, skew: skew)).dropFirst(1_000)
            var counts: [String: Int] = [:]
            for r in records { counts[r.key, default: 0] += 1 }
            let top = counts.values.sorted(by: >).prefix(10).reduce(0, +)
            return Double(top) / 20_000
        }
        #expect(topShare(.uniform) < 0.05)
        #expect(topShare(.zipf(exponent: 1.0)) > 0.25)
    }
}
