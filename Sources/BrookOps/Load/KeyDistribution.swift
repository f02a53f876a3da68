import Foundation

/// A small, fast, seedable generator (SplitMix64), so key sequences repeat run to run and
/// tests can pin their shape.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How `brook loadtest` picks a record's key: none (kafka-producer-perf-test's unkeyed
/// records), round-robin over `keys`, uniform random, or Zipf-distributed (a few hot keys, as
/// real account or device ids are).
public enum KeyDistribution: Sendable, Equatable {
    case none
    case roundRobin(keys: Int)
    case random(keys: Int)
    /// Key k (0-based) is drawn with probability ∝ 1 / (k+1)^exponent.
    case zipf(keys: Int, exponent: Double)

    /// Parses `--key-distribution` with `--keys` (and an optional Zipf exponent, 1 by default).
    public static func parse(_ name: String, keys: Int, exponent: Double = 1.0) throws -> KeyDistribution {
        switch name.lowercased() {
        case "none": return .none
        case "round-robin", "roundrobin": return .roundRobin(keys: try positive(keys))
        case "random", "uniform": return .random(keys: try positive(keys))
        case "zipf":
            guard exponent > 0 else { throw LoadTestError.invalid("the Zipf exponent must be positive") }
            return .zipf(keys: try positive(keys), exponent: exponent)
        default: throw LoadTestError.invalid("--key-distribution must be none, round-robin, random or zipf, not \(name)")
        }
    }

    private static func positive(_ keys: Int) throws -> Int {
        guard keys > 0 else { throw LoadTestError.invalid("--keys must be positive with a key distribution") }
        return keys
    }
}

/// Draws key indices from a ``KeyDistribution``: O(1) for round-robin and random, O(log keys)
/// for Zipf (a binary search of the precomputed cumulative distribution).
public struct KeySequence: Sendable {
    /// The distribution drawn from.
    public let distribution: KeyDistribution
    private var rng: SplitMix64
    private var counter = 0
    /// Zipf only: cdf[k] = P(key ≤ k).
    private let cdf: [Double]

    /// A sequence of `distribution`, repeatable for a given `seed`.
    public init(_ distribution: KeyDistribution, seed: UInt64 = 42) {
        self.distribution = distribution
        rng = SplitMix64(seed: seed)
        if case .zipf(let n, let s) = distribution {
            var weights = (0..<n).map { 1.0 / pow(Double($0 + 1), s) }
            let total = weights.reduce(0, +)
            var acc = 0.0
            for i in weights.indices {
                acc += weights[i] / total
                weights[i] = acc
            }
            weights[n - 1] = 1.0
            cdf = weights
        } else {
            cdf = []
        }
    }

    /// The next key index, nil for ``KeyDistribution/none``.
    public mutating func next() -> Int? {
        switch distribution {
        case .none:
            return nil
        case .roundRobin(let n):
            defer { counter = counter == n - 1 ? 0 : counter + 1 }
            return counter
        case .random(let n):
            return Int(rng.next() % UInt64(n))
        case .zipf:
            let u = Double(rng.next() >> 11) * 0x1.0p-53
            var lo = 0
            var hi = cdf.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }

    /// The key bytes of index `i`: `key-<i>`, so keys read well in `brook consume`.
    public static func keyBytes(_ i: Int) -> [UInt8] { Array("key-\(i)".utf8) }
}

/// A load test's configuration or input is wrong; the message says how.
public enum LoadTestError: Error, Equatable, CustomStringConvertible {
    case invalid(String)

    /// The message.
    public var description: String {
        switch self {
        case .invalid(let m): return m
        }
    }
}
