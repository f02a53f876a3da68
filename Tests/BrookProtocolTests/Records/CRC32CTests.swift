import BrookProtocol
import NIOCore
import Testing

@Suite("Records: CRC-32C")
struct CRC32CTests {
    @Test("known vectors")
    func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // RFC 3720 (iSCSI) test patterns.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xff, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
    }

    @Test("matches a bitwise reference at every length and alignment")
    func matchesReference() {
        let data = RecordsTestSupport.randomBytes(300, seed: 3)
        for start in 0..<9 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 300 - start] where start + length <= data.count {
                let slice = Array(data[start..<(start + length)])
                #expect(CRC32C.checksum(slice) == RecordsTestSupport.referenceCRC32C(slice), "start \(start) length \(length)")
            }
        }
    }

    /// Inputs of 768 bytes and more are checksummed as three interleaved blocks (256 or 8192
    /// bytes each) joined with shift tables: every path and the joins between them.
    @Test("long inputs, checksummed in three interleaved blocks, match the reference")
    func interleavedBlocks() {
        let data = RecordsTestSupport.randomBytes(3 * 8192 * 2 + 3 * 256 + 64, seed: 11)
        for start in [0, 3] {
            for length in [767, 768, 769, 3 * 256 + 8, 24_575, 24_576, 24_577, 3 * 8192 * 2 + 3 * 256 + 13] where start + length <= data.count {
                let slice = Array(data[start..<(start + length)])
                #expect(CRC32C.checksum(slice) == RecordsTestSupport.referenceCRC32C(slice), "start \(start) length \(length)")
            }
        }
        // A continued checksum whose first part ends inside a block.
        let split = 10_000
        let first = data[..<split].withUnsafeBytes { CRC32C.checksum($0) }
        let both = data[split...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
        #expect(both == RecordsTestSupport.referenceCRC32C(data))
    }

    @Test("continuing a checksum equals one pass")
    func continuing() {
        let data = RecordsTestSupport.randomBytes(1000, seed: 5)
        let whole = CRC32C.checksum(data)
        let first = data[..<333].withUnsafeBytes { CRC32C.checksum($0) }
        let both = data[333...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
        #expect(both == whole)
    }

    @Test("checksum of a buffer range uses absolute indices")
    func bufferRange() {
        var buffer = ByteBuffer(bytes: [9, 9, 9] + Array("123456789".utf8))
        buffer.moveReaderIndex(forwardBy: 1)
        #expect(CRC32C.checksum(buffer, range: 3..<12) == 0xE306_9283)
    }
}
