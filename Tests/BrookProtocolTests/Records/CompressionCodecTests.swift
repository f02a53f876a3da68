@testable import BrookProtocol
import NIOCore
import Testing

@Suite("Records: compression codecs")
struct CompressionCodecTests {
    static let codecs: [CompressionCodec] = [.none, .gzip, .snappy, .lz4, .zstd]

    @Test("codec ids match Kafka's attribute values")
    func ids() throws {
        #expect(CompressionCodec.allCases.map(\.rawValue) == [0, 1, 2, 3, 4])
        #expect(try CompressionCodec(attributes: 0x13) == .lz4)
        #expect(throws: ProtocolError.self) { try CompressionCodec(attributes: 5) }
        #expect(throws: ProtocolError.self) { try CompressionCodec(attributes: 7) }
    }

    @Test("all codecs are available on this machine")
    func available() throws {
        for codec in Self.codecs {
            #expect(codec.isAvailable, "\(codec)")
            try codec.checkAvailable()
        }
    }

    @Test("round trip of every input", arguments: codecs)
    func roundTrip(codec: CompressionCodec) throws {
        for (name, bytes) in RecordsTestSupport.corpus {
            let input = ByteBuffer(bytes: bytes)
            let compressed = try codec.compress(input)
            let output = try codec.decompress(compressed, maxOutput: bytes.count)
            #expect(output == input, "\(codec) \(name)")
            if name.hasPrefix("zeros") && codec != .none {
                #expect(compressed.readableBytes < bytes.count / 20, "\(codec) barely compressed \(name)")
            }
        }
    }

    @Test("levels", arguments: [CompressionCodec.gzip, .lz4, .zstd])
    func levels(codec: CompressionCodec) throws {
        let input = ByteBuffer(bytes: RecordsTestSupport.textBytes(200_000))
        let levels: [Int] = switch codec {
        case .gzip: [1, 6, 9]
        case .lz4: [0, 1, 9, 12]
        default: [-5, 1, 3, 19]
        }
        for level in levels {
            let compressed = try codec.compress(input, level: level)
            #expect(try codec.decompress(compressed, maxOutput: 200_000) == input, "\(codec) level \(level)")
        }
        if codec == .gzip {
            #expect(throws: ProtocolError.self) { try codec.compress(input, level: 42) }
        }
    }

    @Test("decompression stops at the bound", arguments: codecs)
    func bound(codec: CompressionCodec) throws {
        let input = ByteBuffer(bytes: [UInt8](repeating: 7, count: 1 << 20))
        let compressed = try codec.compress(input)
        #expect(try codec.decompress(compressed, maxOutput: 1 << 20) == input)
        for limit in [0, 1000, (1 << 20) - 1] {
            let error = #expect(throws: ProtocolError.self) { try codec.decompress(compressed, maxOutput: limit) }
            if case .compression(let message) = error {
                #expect(message.contains("exceeds"), "\(codec): \(message)")
            } else {
                Issue.record("\(codec): unexpected \(String(describing: error))")
            }
        }
    }

    @Test("truncated input throws", arguments: [CompressionCodec.gzip, .lz4, .zstd])
    func truncated(codec: CompressionCodec) throws {
        let input = ByteBuffer(bytes: RecordsTestSupport.textBytes(5000))
        let compressed = try codec.compress(input)
        for cut in 0..<compressed.readableBytes {
            let prefix = compressed.getSlice(at: compressed.readerIndex, length: cut)!
            #expect(throws: ProtocolError.self, "\(codec) cut at \(cut)") { try codec.decompress(prefix, maxOutput: 1 << 20) }
        }
    }

    @Test("garbage and mutated input never traps", arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func fuzz(codec: CompressionCodec) throws {
        let original = try codec.compress(ByteBuffer(bytes: RecordsTestSupport.textBytes(20_000)))
        let bytes = Array(original.readableBytesView)
        var seed: UInt64 = 0x1234
        for i in 0..<400 {
            var mutated = bytes
            let r = RecordsTestSupport.randomBytes(8, seed: seed)
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            switch i % 4 {
            case 0: mutated[Int(r[0]) % mutated.count] ^= r[1] | 1
            case 1: mutated[(Int(r[0]) << 8 | Int(r[1])) % mutated.count] = r[2]
            case 2: mutated = Array(mutated.prefix((Int(r[0]) << 8 | Int(r[1])) % mutated.count))
            default: mutated = RecordsTestSupport.randomBytes(Int(r[0]) + 1, seed: seed)
            }
            // Either a clean error or some output within the bound; never a crash.
            if let out = try? codec.decompress(ByteBuffer(bytes: mutated), maxOutput: 100_000) {
                #expect(out.readableBytes <= 100_000)
            }
        }
    }

    @Test("concatenated gzip members, zstd frames and lz4 frames decode as one stream", arguments: [CompressionCodec.gzip, .lz4, .zstd])
    func concatenated(codec: CompressionCodec) throws {
        var a = try codec.compress(ByteBuffer(string: "first part, "))
        let b = try codec.compress(ByteBuffer(string: "second part"))
        a.writeImmutableBuffer(b)
        #expect(try codec.decompress(a, maxOutput: 1000) == ByteBuffer(string: "first part, second part"))
    }

    @Test("output is the format Kafka clients expect")
    func formats() throws {
        let input = ByteBuffer(string: "abc")
        #expect(Array(try CompressionCodec.gzip.compress(input).readableBytesView.prefix(3)) == [0x1f, 0x8b, 0x08])
        #expect(Array(try CompressionCodec.lz4.compress(input).readableBytesView.prefix(4)) == [0x04, 0x22, 0x4d, 0x18])
        #expect(Array(try CompressionCodec.zstd.compress(input).readableBytesView.prefix(4)) == [0x28, 0xb5, 0x2f, 0xfd])
        let snappy = Array(try CompressionCodec.snappy.compress(input).readableBytesView)
        #expect(Array(snappy.prefix(16)) == [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
        // One chunk: int32 length then raw snappy (preamble 3, literal of 3).
        #expect(Array(snappy.dropFirst(16)) == [0, 0, 0, 5, 0x03, 0x08, 0x61, 0x62, 0x63])
        // LZ4: FLG = version 01, block independence; BD = 64 KiB blocks, as librdkafka writes.
        let lz4 = Array(try CompressionCodec.lz4.compress(input).readableBytesView)
        #expect(lz4[4] == 0x60 && lz4[5] == 0x40)
    }

    @Test("contexts are reused safely from many threads")
    func concurrent() async throws {
        let input = ByteBuffer(bytes: RecordsTestSupport.textBytes(50_000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<40 {
                        let codec = Self.codecs[(t + i) % Self.codecs.count]
                        let c = try codec.compress(input)
                        let d = try codec.decompress(c, maxOutput: 50_000)
                        guard d == input else { throw ProtocolError.compression("mismatch for \(codec)") }
                        // An error mid-stream must not poison the cached context.
                        if codec != .none, codec != .snappy {
                            _ = try? codec.decompress(c.getSlice(at: c.readerIndex, length: c.readableBytes / 2)!, maxOutput: 50_000)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

@Suite("Records: raw and xerial snappy")
struct SnappyFormatTests {
    @Test("decodes hand-written raw snappy: literal and overlapping copy")
    func handWritten() throws {
        // Preamble 12; literal "abcd"; copy (1-byte offset) length 8 offset 4.
        let raw: [UInt8] = [0x0c, 0x0c, 0x61, 0x62, 0x63, 0x64, 0x11, 0x04]
        let out = try CompressionCodec.snappy.decompress(ByteBuffer(bytes: raw), maxOutput: 100)
        #expect(out == ByteBuffer(string: "abcdabcdabcd"))
        // 2-byte offset copy of length 3 (tag 0x0a) and 4-byte offset copy of length 2 (tag 0x07).
        let raw2: [UInt8] = [0x09, 0x0c, 0x61, 0x62, 0x63, 0x64, 0x0a, 0x04, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00]
        #expect(try CompressionCodec.snappy.decompress(ByteBuffer(bytes: raw2), maxOutput: 100) == ByteBuffer(string: "abcdabcbc"))
        // Empty input compresses to the single preamble byte 0 (and librdkafka may send that).
        #expect(try CompressionCodec.snappy.decompress(ByteBuffer(bytes: [0]), maxOutput: 0).readableBytes == 0)
    }

    /// Raw snappy output of the reference compressor (Google's algorithm via the `snap` port, checked
    /// with cramjam), as length and CRC-32C. Ours follows the same algorithm, so it must be identical.
    @Test("compression is byte-identical to reference snappy")
    func goldenVectors() throws {
        func raw(_ bytes: [UInt8]) throws -> [UInt8] {
            // Strip xerial's 16-byte header and the single chunk's 4-byte length.
            let framed = Array(try CompressionCodec.snappy.compress(ByteBuffer(bytes: bytes)).readableBytesView)
            return Array(framed.dropFirst(20))
        }
        #expect(try raw(Array("hello hello hello hello".utf8)) == [23, 20, 104, 101, 108, 108, 111, 32, 66, 6, 0])
        let text = Array((0..<2000).map { "record-\($0 % 97) " }.joined().utf8)
        #expect(text.count == 19790)
        // Under 32 KiB: one xerial chunk, so the chunk is the whole raw stream.
        let compressed = try raw(text)
        #expect(compressed.count == 1296 && CRC32C.checksum(compressed) == 0x8E0B_22BE)

        // 80 000 bytes in one raw block (two 64 KiB fragments, a repeat inside the first).
        let random = RecordsTestSupport.randomBytes(20000, seed: 7)
        let mixed = random + random.prefix(10000) + RecordsTestSupport.randomBytes(50000, seed: 9)
        let block = Self.rawCompress(mixed)
        #expect(block.count == 70548 && CRC32C.checksum(block) == 0x17C8_9C3D)
        let back = try CompressionCodec.snappy.decompress(ByteBuffer(bytes: block), maxOutput: mixed.count)
        #expect(Array(back.readableBytesView) == mixed)
    }

    /// One raw snappy block for the whole input, as librdkafka writes it.
    static func rawCompress(_ bytes: [UInt8]) -> [UInt8] {
        var out = ByteBuffer()
        bytes.withUnsafeBytes { Snappy.compressRaw($0, appendingTo: &out) }
        return Array(out.readableBytesView)
    }

    @Test("rejects malformed raw snappy")
    func malformed() {
        let cases: [[UInt8]] = [
            [],
            [0x80],                                // unterminated preamble
            [0x05, 0x0c, 0x61],                    // literal runs past the input
            [0x04, 0x11, 0x04],                    // copy before any output
            [0x08, 0x0c, 0x61, 0x62, 0x63, 0x64, 0x01, 0x00], // offset 0
            [0x03, 0x08, 0x61, 0x62, 0x63, 0x00],  // output longer than declared
            [0x05, 0x08, 0x61, 0x62, 0x63],        // output shorter than declared
            [0xff, 0xff, 0xff, 0xff, 0x7f],        // length above 2^32
        ]
        for bytes in cases {
            #expect(throws: ProtocolError.self, "\(bytes)") {
                try CompressionCodec.snappy.decompress(ByteBuffer(bytes: bytes), maxOutput: 1 << 20)
            }
        }
    }

    @Test("decodes a single raw snappy block as librdkafka writes it, and xerial with many chunks")
    func rawAndChunked() throws {
        let text = RecordsTestSupport.textBytes(100_000)
        // Our xerial output has 4 chunks of 32 KiB; strip the framing of each to build librdkafka's form.
        let framed = Array(try CompressionCodec.snappy.compress(ByteBuffer(bytes: text)).readableBytesView)
        var pos = 16
        var chunks: [[UInt8]] = []
        while pos < framed.count {
            let n = Int(framed[pos]) << 24 | Int(framed[pos + 1]) << 16 | Int(framed[pos + 2]) << 8 | Int(framed[pos + 3])
            chunks.append(Array(framed[(pos + 4)..<(pos + 4 + n)]))
            pos += 4 + n
        }
        #expect(chunks.count == 4)
        let first = try CompressionCodec.snappy.decompress(ByteBuffer(bytes: chunks[0]), maxOutput: 1 << 20)
        #expect(Array(first.readableBytesView) == Array(text.prefix(32 * 1024)))
        #expect(try CompressionCodec.snappy.decompress(ByteBuffer(bytes: framed), maxOutput: 100_000) == ByteBuffer(bytes: text))
        #expect(throws: ProtocolError.self) {
            try CompressionCodec.snappy.decompress(ByteBuffer(bytes: framed), maxOutput: 99_999)
        }
        // A chunk length past the end is corrupt, not a crash.
        var bad = framed
        bad[16] = 0x7f
        #expect(throws: ProtocolError.self) { try CompressionCodec.snappy.decompress(ByteBuffer(bytes: bad), maxOutput: 1 << 20) }
    }
}
