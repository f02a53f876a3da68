import BrookProtocol
import NIOCore

/// Helpers shared by the Records tests.
enum RecordsTestSupport {
    /// Bitwise CRC-32C, independent of the library's table and SSE4.2 paths.
    static func referenceCRC32C(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    /// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed | 1
        var out = [UInt8]()
        out.reserveCapacity(count)
        for _ in 0..<count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            out.append(UInt8(truncatingIfNeeded: state))
        }
        return out
    }

    /// Text-like bytes that compress well but not trivially.
    static func textBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
        let words = ["kafka", "brook", "record", "batch", "offset", "partition", "leader", "epoch", "producer",
                     "consumer", "group", "commit", "ledger", "balance", "snappy", "zstd", "lz4", "gzip", "\n", " "]
        var state = seed | 1
        var out = [UInt8]()
        out.reserveCapacity(count + 16)
        while out.count < count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            out.append(contentsOf: words[Int(state % UInt64(words.count))].utf8)
            out.append(0x20)
        }
        return Array(out.prefix(count))
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    static func buffer(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

    /// Byte inputs every codec test runs over.
    static let corpus: [(String, [UInt8])] = [
        ("empty", []),
        ("one byte", [0x41]),
        ("short text", Array("hello hello hello hello, Kafka!".utf8)),
        ("zeros 100k", [UInt8](repeating: 0, count: 100_000)),
        ("random 70k", randomBytes(70_000, seed: 7)),
        ("text 1MiB", textBytes(1 << 20)),
        ("random 1MiB", randomBytes(1 << 20, seed: 99)),
    ]
}
