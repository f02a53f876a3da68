/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed 0x9747b28c).
///
/// Java's default partitioner is `toPositive(murmur2(key)) % numPartitions`; librdkafka's
/// `murmur2_random` is the same, so a key lands on the same partition whichever client wrote it.
public enum Murmur2 {
    public static func hash<C: Collection>(_ data: C) -> Int32 where C.Element == UInt8 {
        Array(data).withUnsafeBytes { hash(raw: $0) }
    }

    /// `hash` over raw bytes without copying them (the producer's hot path).
    static func hash(raw: UnsafeRawBufferPointer) -> Int32 {
        let length = raw.count
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let length4 = length / 4
        var i = 0
        while i < length4 {
            var k = raw.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self).littleEndian
            k = k &* m
            k ^= k >> 24
            k = k &* m
            h = h &* m
            h ^= k
            i &+= 1
        }
        let tail = length4 * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(raw[tail + 2]) << 16
            h ^= UInt32(raw[tail + 1]) << 8
            h ^= UInt32(raw[tail])
            h = h &* m
        case 2:
            h ^= UInt32(raw[tail + 1]) << 8
            h ^= UInt32(raw[tail])
            h = h &* m
        case 1:
            h ^= UInt32(raw[tail])
            h = h &* m
        default:
            break
        }
        h ^= h >> 13
        h = h &* m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// Java's `toPositive(murmur2(key)) % partitions`.
    public static func partition<C: Collection>(key: C, partitions: Int32) -> Int32 where C.Element == UInt8 {
        precondition(partitions > 0)
        return (hash(key) & 0x7fff_ffff) % partitions
    }
}
