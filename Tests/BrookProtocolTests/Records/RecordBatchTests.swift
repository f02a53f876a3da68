import BrookProtocol
import NIOCore
import Testing

@Suite("Records: record batches")
struct RecordBatchTests {
    typealias S = RecordsTestSupport

    // MARK: - byte-exact encoding

    /// The batch from the Kafka protocol guide's layout, written out by hand.
    static func handBuiltBatch() -> [UInt8] {
        func be<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        // Record 1: attributes 0, timestampDelta 0, offsetDelta 0, key "key", value "value", header h=x.
        let record1: [UInt8] = [0x24, 0x00, 0x00, 0x00, 0x06] + Array("key".utf8) + [0x0a] + Array("value".utf8)
            + [0x02, 0x02, UInt8(ascii: "h"), 0x02, UInt8(ascii: "x")]
        // Record 2: timestampDelta 5 (zig-zag 10), offsetDelta 1 (2), null key (-1 = 1), value "v2", no headers.
        let record2: [UInt8] = [0x10, 0x00, 0x0a, 0x02, 0x01, 0x04, UInt8(ascii: "v"), UInt8(ascii: "2"), 0x00]
        let base: Int64 = 1_700_000_000_000
        let afterCRC: [UInt8] = be(Int16(0)) + be(Int32(1)) + be(base) + be(base + 5)
            + be(Int64(1234)) + be(Int16(3)) + be(Int32(77)) + be(Int32(2)) + record1 + record2
        let crc = RecordsTestSupport.referenceCRC32C(afterCRC)
        let batchLength = Int32(4 + 1 + 4 + afterCRC.count)
        return be(Int64(0)) + be(batchLength) + be(Int32(-1)) + [2] + be(crc) + afterCRC
    }

    @Test("the builder writes the hand-built batch byte for byte")
    func byteExact() throws {
        let expected = Self.handBuiltBatch()
        #expect(expected.count == 61 + 19 + 9)
        var builder = RecordBatchBuilder(producerId: 1234, producerEpoch: 3, baseSequence: 77)
        builder.append(
            timestamp: 1_700_000_000_000, key: S.buffer("key"), value: S.buffer("value"),
            headers: [RecordHeader(key: "h", value: S.buffer("x"))])
        builder.append(timestamp: 1_700_000_000_005, key: nil, value: S.buffer("v2"))
        let built = try builder.finish()
        #expect(Array(built.readableBytesView) == expected)
    }

    @Test("the hand-built batch decodes")
    func decodeHandBuilt() throws {
        let batch = try RecordBatch(bytes: ByteBuffer(bytes: Self.handBuiltBatch()))
        let h = batch.header
        #expect(h.batchLength == 77 && h.magic == 2 && h.partitionLeaderEpoch == -1)
        #expect(h.lastOffsetDelta == 1 && h.recordCount == 2)
        #expect(h.baseTimestamp == 1_700_000_000_000 && h.maxTimestamp == 1_700_000_000_005)
        #expect(h.producerId == 1234 && h.producerEpoch == 3 && h.baseSequence == 77 && h.lastSequence == 78)
        #expect(try h.codec == CompressionCodec.none && h.timestampType == .createTime && !h.isTransactional && !h.isControl)
        #expect(batch.isCRCValid)
        let records = try batch.decodeRecords()
        #expect(records == [
            Record(key: S.buffer("key"), value: S.buffer("value"), headers: [RecordHeader(key: "h", value: S.buffer("x"))]),
            Record(timestampDelta: 5, offsetDelta: 1, key: nil, value: S.buffer("v2")),
        ])
        #expect(batch.timestamp(of: records[1]) == 1_700_000_000_005)
        #expect(batch.offset(of: records[1]) == 1)
        let summary = try batch.validate()
        #expect(summary.recordCount == 2 && summary.minTimestamp == 1_700_000_000_000 && summary.maxTimestamp == 1_700_000_000_005)
        #expect(summary.firstOffsetDelta == 0 && summary.lastOffsetDelta == 1 && summary.offsetDeltasAreSequential)
        #expect(!summary.allRecordsHaveKeys && !summary.isCompressed && summary.sizeInBytes == 89)
    }

    @Test("header parses at an index without moving the reader, and writes back identically")
    func headerAtIndex() throws {
        var buffer = ByteBuffer(bytes: [1, 2, 3] + Self.handBuiltBatch())
        buffer.moveReaderIndex(forwardBy: 2)
        let header = try RecordBatchHeader(parsing: buffer, at: 3)
        #expect(header.recordCount == 2 && buffer.readerIndex == 2)
        var out = ByteBuffer()
        header.write(to: &out)
        #expect(Array(out.readableBytesView) == Array(Self.handBuiltBatch().prefix(61)))
        #expect(throws: ProtocolError.self) { try RecordBatchHeader(parsing: buffer, at: 40) }
        #expect(throws: ProtocolError.self) { try RecordBatchHeader(parsing: buffer, at: 1) }
    }

    // MARK: - round trips

    static func sampleRecords(_ count: Int) -> [(Int64, ByteBuffer?, ByteBuffer?, [RecordHeader])] {
        (0..<count).map { i in
            let key: ByteBuffer? = i % 7 == 3 ? nil : ByteBuffer(string: "key-\(i % 100)")
            let value: ByteBuffer? = i % 11 == 5 ? nil : ByteBuffer(bytes: S.textBytes(50 + (i * 37) % 400, seed: UInt64(i + 1)))
            let headers: [RecordHeader] = i % 3 == 0
                ? [RecordHeader(key: "trace-id", value: ByteBuffer(string: "\(i)")), RecordHeader(key: "ünïcode", value: nil)]
                : []
            // Out-of-order timestamps: deltas may be negative, max is not the last.
            return (1_700_000_000_000 + Int64((i * 7919) % 5000) - 100, key, value, headers)
        }
    }

    @Test("compressed and uncompressed batches round trip", arguments: CompressionCodec.allCases)
    func roundTrip(codec: CompressionCodec) throws {
        let input = Self.sampleRecords(1000)
        var builder = RecordBatchBuilder(
            codec: codec, baseOffset: 500, partitionLeaderEpoch: 9, producerId: 42, producerEpoch: 1, baseSequence: 1000,
            isTransactional: true)
        for (ts, key, value, headers) in input { builder.append(timestamp: ts, key: key, value: value, headers: headers) }
        #expect(builder.recordCount == 1000)
        let uncompressed = builder.uncompressedSize
        let bytes = try builder.finish()

        let summary = try RecordBatch.validate(bytes)
        #expect(summary.recordCount == 1000 && summary.codec == codec && summary.isCompressed == (codec != .none))
        #expect(summary.isTransactional && summary.producerId == 42 && summary.producerEpoch == 1 && summary.baseSequence == 1000)
        #expect(summary.maxTimestamp == input.map(\.0).max() && summary.minTimestamp == input.map(\.0).min())
        #expect(summary.headerMaxTimestamp == summary.maxTimestamp && summary.baseTimestamp == input[0].0)
        #expect(summary.uncompressedRecordsSize == uncompressed - 61)
        #expect(summary.offsetDeltasAreSequential && summary.lastOffsetDelta == 999)
        if codec != .none { #expect(bytes.readableBytes < uncompressed / 2, "\(codec) did not compress") }

        let batch = try RecordBatch(bytes: bytes)
        #expect(batch.header.baseOffset == 500 && batch.header.partitionLeaderEpoch == 9)
        var reader = try batch.records()
        var i = 0
        while let record = try reader.next() {
            let (ts, key, value, headers) = input[i]
            #expect(batch.timestamp(of: record) == ts)
            #expect(batch.offset(of: record) == 500 + Int64(i))
            #expect(record.key == key && record.value == value && record.headers == headers, "record \(i)")
            i += 1
        }
        #expect(i == 1000 && reader.remainingCount == 0)

        // The in-place views see the same records.
        var j = 0
        try batch.forEachRecord { view in
            let (_, key, value, headers) = input[j]
            #expect(view.offsetDelta == Int32(j) && view.headerCount == headers.count)
            #expect(view.key.map { Array($0) } == key.map { Array($0.readableBytesView) })
            #expect(view.value.map { Array($0) } == value.map { Array($0.readableBytesView) })
            #expect(view.materialize() == Record(
                timestampDelta: input[j].0 - input[0].0, offsetDelta: Int32(j), key: key, value: value, headers: headers))
            j += 1
        }
        #expect(j == 1000)
    }

    @Test("the builder appends after existing bytes of the given buffer")
    func appendingToBuffer() throws {
        for codec in [CompressionCodec.none, .zstd] {
            var prefix = ByteBuffer()
            prefix.writeString("request header")
            var builder = RecordBatchBuilder(codec: codec, appendingTo: prefix)
            builder.append(timestamp: 10, key: nil, value: S.buffer("v"))
            var out = try builder.finish()
            #expect(out.readString(length: 14) == "request header")
            let summary = try RecordBatch.validate(out)
            #expect(summary.recordCount == 1 && summary.maxTimestamp == 10)
        }
    }

    @Test("records with explicit deltas keep them (compaction gaps)")
    func explicitDeltas() throws {
        var builder = RecordBatchBuilder(baseTimestamp: 1000)
        for delta in [0, 3, 4, 9] as [Int32] {
            builder.append(Record(timestampDelta: Int64(delta) * 10, offsetDelta: delta, key: S.buffer("k"), value: nil))
        }
        let bytes = try builder.finish()
        let batch = try RecordBatch(bytes: bytes)
        #expect(batch.header.lastOffsetDelta == 9 && batch.header.recordCount == 4 && batch.header.maxTimestamp == 1090)
        #expect(throws: ProtocolError.self) { try batch.validate() } // from a client the range must be dense
        let summary = try batch.validate(options: RecordBatchValidationOptions(fromClient: false))
        #expect(!summary.offsetDeltasAreSequential && summary.firstOffsetDelta == 0 && summary.lastOffsetDelta == 9)
        #expect(summary.allRecordsHaveKeys)
        #expect(try batch.decodeRecords().map(\.offsetDelta) == [0, 3, 4, 9])
    }

    @Test("Record encodes and decodes alone, including extreme varints")
    func recordAlone() throws {
        let records = [
            Record(value: nil),
            Record(attributes: 0, timestampDelta: Int64.min, offsetDelta: Int32.max, key: S.buffer(""), value: S.buffer("")),
            Record(timestampDelta: -1, offsetDelta: -1, key: ByteBuffer(bytes: S.randomBytes(300, seed: 1)), value: nil,
                   headers: (0..<70).map { RecordHeader(key: "h\($0)", value: $0 % 2 == 0 ? nil : S.buffer("\($0)")) }),
        ]
        var buffer = ByteBuffer()
        for r in records {
            let before = buffer.writerIndex
            r.encode(into: &buffer)
            #expect(buffer.writerIndex - before == r.encodedSize)
        }
        for r in records { #expect(try Record.decode(from: &buffer) == r) }
        #expect(buffer.readableBytes == 0)
    }

    // MARK: - corruption

    @Test("a corrupted CRC or payload is rejected")
    func corruptCRC() throws {
        var bytes = Self.handBuiltBatch()
        bytes[17] ^= 0xff
        let batch = try RecordBatch(bytes: ByteBuffer(bytes: bytes))
        #expect(!batch.isCRCValid)
        #expect(throws: ProtocolError.self) { try batch.verifyCRC() }
        #expect(throws: ProtocolError.self) { try RecordBatch.validate(ByteBuffer(bytes: bytes)) }
        var payload = Self.handBuiltBatch()
        payload[70] ^= 0x01
        #expect(throws: ProtocolError.self) { try RecordBatch.validate(ByteBuffer(bytes: payload)) }
        // Leader epoch and base offset are outside the CRC.
        var outside = ByteBuffer(bytes: Self.handBuiltBatch())
        outside.setRecordBatchBaseOffset(99, batchAt: 0)
        outside.setRecordBatchPartitionLeaderEpoch(5, batchAt: 0)
        #expect(try RecordBatch.validate(outside).recordCount == 2)
    }

    @Test("every truncation throws, never traps", arguments: [CompressionCodec.none, .snappy, .lz4])
    func truncation(codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(codec: codec)
        for (ts, key, value, headers) in Self.sampleRecords(5) { builder.append(timestamp: ts, key: key, value: value, headers: headers) }
        let bytes = Array(try builder.finish().readableBytesView)
        for cut in 0..<bytes.count {
            let prefix = ByteBuffer(bytes: bytes.prefix(cut))
            #expect(throws: ProtocolError.self) { try RecordBatch(bytes: prefix) }
            #expect(throws: ProtocolError.self) { try RecordBatch.validate(prefix) }
            var it = RecordBatchIterator(prefix)
            #expect(try it.next() == nil)
            #expect(it.hasPartialTrailingBatch == (cut > 0))
        }
    }

    /// Rewrites the batch's header field and fixes the CRC, so checks after the CRC are reached.
    static func tamper(_ bytes: ByteBuffer, _ body: (inout RecordBatchHeader) -> Void) throws -> ByteBuffer {
        var out = bytes
        var header = try RecordBatchHeader(parsing: out, at: out.readerIndex)
        body(&header)
        header.set(in: &out, at: out.readerIndex)
        try out.updateRecordBatchCRC(batchAt: out.readerIndex)
        return out
    }

    @Test("validation checks counts, offsets and producer fields")
    func validationRules() throws {
        var builder = RecordBatchBuilder(codec: .gzip, producerId: 5, producerEpoch: 0, baseSequence: 0)
        for i in 0..<10 { builder.append(timestamp: Int64(i), key: nil, value: S.buffer("v\(i)")) }
        let good = try builder.finish()
        #expect(try RecordBatch.validate(good).recordCount == 10)

        let cases: [(String, (inout RecordBatchHeader) -> Void)] = [
            ("count too high", { $0.recordCount = 11; $0.lastOffsetDelta = 10 }),
            ("count too low", { $0.recordCount = 9; $0.lastOffsetDelta = 8 }),
            ("count vs range", { $0.recordCount = 10; $0.lastOffsetDelta = 12 }),
            ("negative count", { $0.recordCount = -1 }),
            ("empty", { $0.recordCount = 0 }),
            ("control", { $0.attributes |= RecordBatchHeader.controlBit }),
            ("no sequence", { $0.baseSequence = -1 }),
            ("transactional without pid", { $0.attributes |= RecordBatchHeader.transactionalBit; $0.producerId = -1 }),
            ("unknown codec", { $0.attributes = ($0.attributes & ~7) | 6 }),
            ("wrong codec", { $0.attributes = ($0.attributes & ~7) | 4 }),
        ]
        for (name, change) in cases {
            let bad = try Self.tamper(good, change)
            #expect(throws: ProtocolError.self, "\(name)") { try RecordBatch.validate(bad) }
        }
        // Non-monotonic deltas are refused even from replication.
        var b2 = RecordBatchBuilder(baseTimestamp: 0)
        for d in [0, 2, 1] as [Int32] { b2.append(Record(offsetDelta: d, value: nil)) }
        #expect(throws: ProtocolError.self) {
            try RecordBatch.validate(try b2.finish(), options: RecordBatchValidationOptions(fromClient: false))
        }
        // Trailing bytes after the last record, inside the declared length.
        var padded = ByteBuffer(bytes: Self.handBuiltBatch())
        padded.writeInteger(UInt8(0))
        padded.setInteger(Int32(78), at: 8)
        try padded.updateRecordBatchCRC(batchAt: 0)
        #expect(throws: ProtocolError.self) { try RecordBatch.validate(padded) }
        #expect(throws: ProtocolError.self) { try RecordBatch(bytes: padded).decodeRecords() }
        #expect(throws: ProtocolError.self) { try RecordBatch(bytes: padded).forEachRecord { _ in } }
        let short = try Self.tamper(ByteBuffer(bytes: Self.handBuiltBatch())) { $0.recordCount = 3 }
        #expect(throws: ProtocolError.self) { try RecordBatch(bytes: short).forEachRecord { _ in } }
        #expect(throws: ProtocolError.self) { try RecordBatch(bytes: short).decodeRecords() }
        // Extra bytes after the batch are not one batch.
        var extra = ByteBuffer(bytes: Self.handBuiltBatch())
        extra.writeInteger(UInt8(0))
        #expect(throws: ProtocolError.self) { try RecordBatch.validate(extra) }
    }

    @Test("decompression of a batch is bounded")
    func batchBomb() throws {
        var builder = RecordBatchBuilder(codec: .zstd)
        builder.append(timestamp: 0, key: nil, value: ByteBuffer(bytes: [UInt8](repeating: 0, count: 4 << 20)))
        let bytes = try builder.finish()
        #expect(bytes.readableBytes < 2000)
        let batch = try RecordBatch(bytes: bytes)
        let error = #expect(throws: ProtocolError.self) {
            try batch.validate(options: RecordBatchValidationOptions(maxUncompressedBytes: 1 << 20))
        }
        #expect(error.map { "\($0)".contains("exceeds") } == true)
        #expect(throws: ProtocolError.self) { try batch.records(maxUncompressedBytes: 1 << 20) }
        #expect(try batch.validate().uncompressedRecordsSize > 4 << 20)
    }

    @Test("mutated compressed batches with a fixed-up CRC never trap", arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func fuzzBatches(codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(codec: codec)
        for (ts, key, value, headers) in Self.sampleRecords(20) { builder.append(timestamp: ts, key: key, value: value, headers: headers) }
        let good = Array(try builder.finish().readableBytesView)
        for i in 0..<300 {
            var bytes = good
            let r = S.randomBytes(4, seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            let at = 61 + (Int(r[0]) << 8 | Int(r[1])) % (bytes.count - 61)
            bytes[at] ^= r[2] | 1
            var buffer = ByteBuffer(bytes: bytes)
            try buffer.updateRecordBatchCRC(batchAt: 0)
            _ = try? RecordBatch.validate(buffer)
            _ = try? RecordBatch(bytes: buffer).decodeRecords()
            _ = try? RecordBatch(bytes: buffer).forEachRecord { view in
                _ = view.materialize()
            }
        }
    }

    // MARK: - splitting

    @Test("concatenated batches split, a partial trailing batch is left over")
    func split() throws {
        var all = ByteBuffer()
        for (n, codec) in [(3, CompressionCodec.none), (5, .lz4), (2, .snappy)] {
            var builder = RecordBatchBuilder(codec: codec, baseOffset: Int64(all.readableBytes))
            for i in 0..<n { builder.append(timestamp: Int64(i), key: nil, value: S.buffer("r\(i)")) }
            all.writeImmutableBuffer(try builder.finish())
        }
        let complete = all.readableBytes
        let fourth = Self.handBuiltBatch()
        all.writeBytes(fourth.prefix(40))
        var it = RecordBatchIterator(all)
        var counts: [Int32] = []
        while let batch = try it.next() {
            try batch.verifyCRC()
            counts.append(batch.header.recordCount)
        }
        #expect(counts == [3, 5, 2])
        #expect(it.hasPartialTrailingBatch && it.remaining.readableBytes == 40)
        #expect(try RecordBatch.batches(in: all).count == 3)
        #expect(try RecordBatch.batches(in: all.getSlice(at: 0, length: complete)!).count == 3)
        #expect(try RecordBatch.batches(in: ByteBuffer()).isEmpty)
    }

    @Test("old message formats and bad lengths are rejected clearly")
    func magic() throws {
        for magic: UInt8 in [0, 1, 3] {
            var bytes = Self.handBuiltBatch()
            bytes[16] = magic
            var it = RecordBatchIterator(ByteBuffer(bytes: bytes))
            let error = #expect(throws: ProtocolError.self) { try it.next() }
            #expect(error.map { "\($0)".contains("magic") } == true, "\(String(describing: error))")
            #expect(throws: ProtocolError.self) { try RecordBatch(bytes: ByteBuffer(bytes: bytes)) }
        }
        var short = Self.handBuiltBatch()
        short[8...11] = [0, 0, 0, 20]
        var it = RecordBatchIterator(ByteBuffer(bytes: short))
        #expect(throws: ProtocolError.self) { try it.next() }
    }

    // MARK: - in-place patches

    @Test("base offset, leader epoch and log-append time patches")
    func patches() throws {
        var buffer = ByteBuffer(bytes: [0xaa, 0xbb] + Self.handBuiltBatch())
        buffer.setRecordBatchBaseOffset(1_000_000, batchAt: 2)
        buffer.setRecordBatchPartitionLeaderEpoch(17, batchAt: 2)
        buffer.moveReaderIndex(forwardBy: 2)
        var batch = try RecordBatch(bytes: buffer)
        #expect(batch.header.baseOffset == 1_000_000 && batch.header.partitionLeaderEpoch == 17 && batch.isCRCValid)

        buffer.moveReaderIndex(to: 0)
        try buffer.setRecordBatchLogAppendTime(1_800_000_000_000, batchAt: 2)
        buffer.moveReaderIndex(forwardBy: 2)
        batch = try RecordBatch(bytes: buffer)
        #expect(batch.isCRCValid && batch.header.timestampType == .logAppendTime)
        #expect(batch.header.maxTimestamp == 1_800_000_000_000 && batch.header.baseTimestamp == 1_700_000_000_000)
        for record in try batch.decodeRecords() { #expect(batch.timestamp(of: record) == 1_800_000_000_000) }
        let summary = try batch.validate()
        #expect(summary.timestampType == .logAppendTime && summary.headerMaxTimestamp == 1_800_000_000_000)

        try buffer.setRecordBatchMaxTimestamp(1_700_000_000_005, type: .createTime, batchAt: 2)
        // Back to the original attributes and timestamp: from the magic on, the original bytes (CRC included).
        #expect(Array(buffer.readableBytesView.dropFirst(16)) == Array(Self.handBuiltBatch().dropFirst(16)))
        #expect(try RecordBatch(bytes: buffer).isCRCValid)
        #expect(throws: ProtocolError.self) { try buffer.setRecordBatchLogAppendTime(1, batchAt: 50) }
    }

    @Test("a builder with log-append time and control bits")
    func logAppendTimeBuilder() throws {
        var builder = RecordBatchBuilder(codec: .snappy, isControl: true, logAppendTime: 777)
        builder.append(timestamp: 5, key: S.buffer("k"), value: S.buffer("v"))
        let batch = try RecordBatch(bytes: try builder.finish())
        #expect(batch.header.isControl && batch.header.timestampType == .logAppendTime && batch.header.maxTimestamp == 777)
        #expect(try batch.header.codec == .snappy)
        #expect(throws: ProtocolError.self) { try batch.validate() }
        #expect(try batch.validate(options: RecordBatchValidationOptions(fromClient: false)).isControl)
    }

    @Test("an empty builder produces a valid empty batch")
    func emptyBatch() throws {
        let bytes = try RecordBatchBuilder(codec: .lz4).finish()
        let batch = try RecordBatch(bytes: bytes)
        #expect(batch.header.recordCount == 0 && batch.header.baseTimestamp == -1 && batch.isCRCValid)
        #expect(try batch.decodeRecords().isEmpty)
        let summary = try batch.validate(options: RecordBatchValidationOptions(fromClient: false))
        #expect(summary.recordCount == 0 && summary.maxTimestamp == -1)
    }
}
