import BrookProtocol
import NIOCore
import Testing

/// Every API, every version, both directions: encode a random value, decode it, compare.
@Suite struct RoundTripTests {
    static let cases: [(APIKey, Int16)] = APIKey.allCases.flatMap { api in api.versions.map { (api, $0) } }

    @Test(arguments: APIKey.allCases)
    func requestsAndResponsesRoundTripAtEveryVersion(api: APIKey) throws {
        var rng = SeededRandom(seed: UInt64(api.rawValue) &+ 17)
        for version in api.versions {
            for _ in 0..<40 {
                try roundTrip(api.requestType, version: version, rng: &rng)
                try roundTrip(api.responseType, version: version, rng: &rng)
            }
        }
    }

    private func roundTrip<M: KafkaMessage>(_ type: M.Type, version: Int16, rng: inout SeededRandom) throws {
        let value = M.arbitrary(version: version, using: &rng)
        var buf = ByteBuffer()
        value.encode(into: &buf, version: version)
        let encoded = buf
        let decoded = try M(from: &buf, version: version)
        #expect(decoded == value, "\(M.self) v\(version) did not round-trip")
        #expect(buf.readableBytes == 0, "\(M.self) v\(version) left \(buf.readableBytes) bytes")
        // Re-encoding the decoded value gives the same bytes.
        var again = ByteBuffer()
        decoded.encode(into: &again, version: version)
        #expect(again == encoded)
    }

    @Test(arguments: APIKey.allCases)
    func truncatedInputThrowsAndNeverTraps(api: APIKey) throws {
        var rng = SeededRandom(seed: 99 &+ UInt64(api.rawValue))
        for version in api.versions {
            try truncations(api.requestType, version: version, rng: &rng)
            try truncations(api.responseType, version: version, rng: &rng)
        }
    }

    private func truncations<M: KafkaMessage>(_ type: M.Type, version: Int16, rng: inout SeededRandom) throws {
        let value = M.arbitrary(version: version, using: &rng)
        var buf = ByteBuffer()
        value.encode(into: &buf, version: version)
        let full = buf.readableBytes
        guard full > 0 else { return }
        for cut in 0..<full {
            var slice = buf.getSlice(at: buf.readerIndex, length: cut)!
            do {
                _ = try M(from: &slice, version: version)
                // A prefix may decode when trailing fields are optional-empty; it must not trap.
            } catch is ProtocolError {
            }
        }
        // Random corruption: flip bytes; any outcome but a trap is acceptable.
        for _ in 0..<20 {
            var corrupted = buf
            let i = Int.random(in: 0..<full, using: &rng)
            let b = corrupted.getInteger(at: corrupted.readerIndex + i, as: UInt8.self)!
            corrupted.setInteger(b ^ UInt8.random(in: 1...255, using: &rng), at: corrupted.readerIndex + i)
            _ = try? M(from: &corrupted, version: version)
        }
    }

    @Test func unsupportedVersionIsATypedError() {
        var buf = ByteBuffer()
        #expect(throws: ProtocolError.unsupportedVersion(apiKey: 3, version: 99)) {
            _ = try MetadataRequest(from: &buf, version: 99)
        }
    }
}
