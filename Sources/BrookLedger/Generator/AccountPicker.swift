import BrookProtocol
import Foundation

/// The generator's randomness is BrookProtocol's SplitMix64 (`SeededRandom`): its output depends
/// only on the seed, so the same seed gives the same events on every platform and Swift version.
extension SeededRandom {
    /// Uniform in [0, 1) from the top 53 bits (only used for choosing, never for money).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in `range`, without Swift's unspecified-across-versions `random(in:using:)`.
    mutating func int(_ range: ClosedRange<Int64>) -> Int64 {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        return range.lowerBound + Int64(span == 0 ? next() : next() % span)
    }
}

/// Chooses an account index, uniformly or with a Zipf skew (a few hot accounts, as in real
/// trading), from a precomputed cumulative distribution.
struct AccountPicker: Sendable {
    private let cumulative: [Double]?
    let count: Int

    init(count: Int, skew: AccountSkew) {
        self.count = count
        switch skew {
        case .uniform:
            cumulative = nil
        case .zipf(let exponent):
            var sums: [Double] = []
            sums.reserveCapacity(count)
            var total = 0.0
            for rank in 1...max(count, 1) {
                total += 1 / pow(Double(rank), exponent)
                sums.append(total)
            }
            cumulative = sums.map { $0 / total }
        }
    }

    func pick(_ rng: inout SeededRandom) -> Int {
        guard let cumulative else { return Int(rng.int(0...Int64(count - 1))) }
        let u = rng.unit()
        var (lo, hi) = (0, cumulative.count - 1)
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
