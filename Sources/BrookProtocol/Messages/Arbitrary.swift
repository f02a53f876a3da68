import NIOCore

// Random field values for the generated `arbitrary(version:using:)` builders, which the
// round-trip tests and the fuzzer's seed corpus use.

@usableFromInline
func _arbitraryString(using rng: inout some RandomNumberGenerator) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz-._0123456789é☃")
    let n = Int.random(in: 0...12, using: &rng)
    return String((0..<n).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
}

@usableFromInline
func _arbitraryBytes(using rng: inout some RandomNumberGenerator) -> ByteBuffer {
    let n = Int.random(in: 0...24, using: &rng)
    var b = ByteBuffer()
    for _ in 0..<n { b.writeInteger(UInt8.random(in: 0...255, using: &rng)) }
    return b
}

/// A small deterministic generator (SplitMix64) so failures reproduce from a seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
