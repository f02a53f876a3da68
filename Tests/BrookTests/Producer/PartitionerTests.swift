@testable import Brook
import NIOCore
import Testing

@Suite("Producer partitioning")
struct ProducerPartitionerTests {
    /// Values from Kafka's own `UtilsTest.testMurmur2` (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
    static let javaValues: [(String, Int32)] = [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107),
        // Also from Kafka's Utils.murmur2 (quoted by Akka's Murmur2Spec).
        ("1", -1_993_445_489),
        ("12", 126_087_238),
        ("123", -267_702_483),
        ("1234", -1_614_185_708),
        ("12345", -1_188_365_604),
    ]

    @Test("murmur2 matches Java's Utils.murmur2", arguments: javaValues.indices)
    func murmur2MatchesJava(_ i: Int) {
        let (text, expected) = Self.javaValues[i]
        #expect(Murmur2.hash(Array(text.utf8)) == expected)
        let buffer = ByteBuffer(string: text)
        #expect(buffer.withUnsafeReadableBytes { Murmur2.hash(raw: $0) } == expected)
    }

    @Test("the producer's buffer hash equals the reference for every length and byte")
    func rawHashEqualsReference() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<64 {
            for _ in 0..<8 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let raw = bytes.withUnsafeBytes { Murmur2.hash(raw: $0) }
                #expect(raw == Murmur2.hash(bytes))
                let p = Murmur2.partition(keyBuffer: ByteBuffer(bytes: bytes), partitions: 7)
                #expect(p == Murmur2.partition(key: bytes, partitions: 7))
            }
        }
    }

    @Test("Java's toPositive(murmur2) % n")
    func javaPartition() {
        // toPositive(-973932308) = -973932308 & 0x7fffffff = 1173551340; % 3 = 0; % 10 = 0
        #expect(Murmur2.partition(key: Array("21".utf8), partitions: 3) == Int32(1_173_551_340 % 3))
        #expect(Murmur2.partition(key: Array("foobar".utf8), partitions: 10) == Int32((-790_332_482 & 0x7fff_ffff) % 10))
    }

    @Test("sequence numbers wrap like Kafka's")
    func sequenceWrap() {
        #expect(incrementSequence(0, by: 5) == 5)
        #expect(incrementSequence(Int32.max - 1, by: 1) == Int32.max)
        #expect(incrementSequence(Int32.max, by: 1) == 0)
        #expect(incrementSequence(Int32.max - 2, by: 5) == 2)
    }

    @Test("configuration validation")
    func validation() throws {
        var c = ProducerConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: 9092)])
        try c.validate()
        c.maxInFlightRequestsPerConnection = 6
        #expect(throws: KafkaClientError.self) { try c.validate() }
        c.acks = .leader  // not idempotent: more in flight allowed
        try c.validate()
        #expect(!c.isIdempotent)
        c.bufferMemory = 10
        #expect(throws: KafkaClientError.self) { try c.validate() }
    }
}
