import NIOCore

/// One record batch (magic 2) as the bytes it arrived as, with its parsed header.
///
/// Nothing is decompressed or decoded until asked: brokers store and serve batches as they are,
/// and only validation and consumers look inside.
public struct RecordBatch: Sendable {
    /// Default bound on a batch's decompressed records: large enough for any sane batch
    /// (Kafka's default `message.max.bytes` is 1 MiB compressed), small enough to refuse bombs.
    public static let defaultMaxUncompressedBytes = 64 * 1024 * 1024

    public let header: RecordBatchHeader
    /// Exactly the batch's bytes, header included.
    public let bytes: ByteBuffer

    /// Parses the batch at the reader index of `buffer`. Bytes after the batch are ignored.
    ///
    /// Checks the magic, the length fields and that the whole batch is present; the CRC is
    /// checked separately (``verifyCRC()``), so readers of trusted storage can skip it.
    public init(bytes buffer: ByteBuffer) throws {
        try RecordBatch.checkMagic(buffer, at: buffer.readerIndex)
        let header = try RecordBatchHeader(parsing: buffer, at: buffer.readerIndex)
        guard header.batchLength >= RecordBatchHeader.minimumBatchLength else {
            throw ProtocolError.corruptRecordBatch(
                "batch length \(header.batchLength) is below the minimum \(RecordBatchHeader.minimumBatchLength)")
        }
        guard let slice = buffer.getSlice(at: buffer.readerIndex, length: header.totalSize) else {
            throw ProtocolError.truncated(field: "record batch (\(header.totalSize) bytes declared, \(buffer.readableBytes) present)")
        }
        self.header = header
        self.bytes = slice
    }

    /// Throws unless the byte at `index + 16` (where every message format keeps its magic) is 2.
    static func checkMagic(_ buffer: ByteBuffer, at index: Int) throws {
        guard let magic = buffer.getInteger(at: index + RecordBatchHeader.magicOffset, as: Int8.self) else {
            throw ProtocolError.truncated(field: "record batch magic")
        }
        guard magic == RecordBatchHeader.currentMagic else {
            if magic == 0 || magic == 1 {
                throw ProtocolError.corruptRecordBatch(
                    "unsupported message format v\(magic) (magic \(magic), Kafka before 0.11); only record batches with magic 2 are supported")
            }
            throw ProtocolError.corruptRecordBatch("invalid magic \(magic); only record batches with magic 2 are supported")
        }
    }

    // MARK: - CRC

    /// CRC-32C of the bytes the header's CRC covers (attributes to the end).
    public var computedCRC: UInt32 {
        let start = bytes.readerIndex
        return CRC32C.checksum(bytes, range: (start + RecordBatchHeader.attributesOffset)..<(start + bytes.readableBytes))
    }

    public var isCRCValid: Bool { computedCRC == header.crc }

    public func verifyCRC() throws {
        let computed = computedCRC
        guard computed == header.crc else {
            throw ProtocolError.corruptRecordBatch(
                "CRC mismatch: header says 0x\(String(header.crc, radix: 16)), bytes give 0x\(String(computed, radix: 16))")
        }
    }

    // MARK: - records

    /// The records area as stored (compressed if the batch is).
    public var payload: ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + RecordBatchHeader.size, length: bytes.readableBytes - RecordBatchHeader.size)!
    }

    /// The records area, decompressed if needed; refuses to decompress beyond `maxUncompressedBytes`.
    public func uncompressedPayload(
        maxUncompressedBytes: Int = RecordBatch.defaultMaxUncompressedBytes,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> ByteBuffer {
        let codec = try header.codec
        let payload = self.payload
        if codec == .none { return payload }
        var out = allocator.buffer(capacity: 0)
        try payload.withUnsafeReadableBytes { raw in
            try codec.decompress(raw, maxOutput: maxUncompressedBytes, appendingTo: &out)
        }
        return out
    }

    /// A reader over the records, decompressing first if needed. Records are decoded one at a
    /// time, each key and value a slice of the (decompressed) bytes.
    public func records(
        maxUncompressedBytes: Int = RecordBatch.defaultMaxUncompressedBytes,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> RecordReader {
        guard header.recordCount >= 0 else {
            throw ProtocolError.corruptRecordBatch("negative record count \(header.recordCount)")
        }
        return RecordReader(
            header: header,
            payload: try uncompressedPayload(maxUncompressedBytes: maxUncompressedBytes, allocator: allocator))
    }

    /// All records, decoded into an array.
    public func decodeRecords(
        maxUncompressedBytes: Int = RecordBatch.defaultMaxUncompressedBytes,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> [Record] {
        var reader = try records(maxUncompressedBytes: maxUncompressedBytes, allocator: allocator)
        var result: [Record] = []
        // The count comes from the wire: never reserve more than a small bound up front.
        result.reserveCapacity(min(max(reader.remainingCount, 0), 4096))
        while let record = try reader.next() { result.append(record) }
        return result
    }

    /// Calls `body` with every record, read in place without copies or reference counting.
    /// The views are valid only inside `body`. Throws, after the records before it were
    /// handed out, if a record is malformed or the count disagrees with the header.
    public func forEachRecord(
        maxUncompressedBytes: Int = RecordBatch.defaultMaxUncompressedBytes,
        _ body: (RecordView) throws -> Void
    ) throws {
        let count = Int(header.recordCount)
        guard count >= 0 else { throw ProtocolError.corruptRecordBatch("negative record count \(count)") }
        let records = try uncompressedPayload(maxUncompressedBytes: maxUncompressedBytes)
        try records.withUnsafeReadableBytes { raw in
            var reader = RawReader(raw)
            var end = 0
            for i in 0..<count {
                guard reader.remaining > 0 else {
                    throw ProtocolError.corruptRecordBatch("batch declares \(count) records but holds \(i)")
                }
                let layout = try RecordLayout.parse(&reader, end: &end)
                try body(RecordView(layout: layout, in: raw, headersEnd: end))
            }
            guard reader.remaining == 0 else {
                throw ProtocolError.corruptRecordBatch("\(reader.remaining) bytes left after the last of \(count) records")
            }
        }
    }

    /// The absolute offset of a record of this batch.
    @inlinable
    public func offset(of record: Record) -> Int64 { header.baseOffset &+ Int64(record.offsetDelta) }

    /// The timestamp of a record of this batch (the batch's `maxTimestamp` under log-append time).
    @inlinable
    public func timestamp(of record: Record) -> Int64 { header.timestamp(delta: record.timestampDelta) }

    /// The batches in `buffer`, ignoring a partial batch at its end (as fetch responses have).
    public static func batches(in buffer: ByteBuffer) throws -> [RecordBatch] {
        var iterator = RecordBatchIterator(buffer)
        var result: [RecordBatch] = []
        while let batch = try iterator.next() { result.append(batch) }
        return result
    }
}

/// Decodes the records of one batch, one `next()` at a time.
public struct RecordReader: Sendable {
    public let header: RecordBatchHeader
    /// The (decompressed) records area; its reader index advances record by record.
    private var payload: ByteBuffer
    /// Records still to be read.
    public private(set) var remainingCount: Int

    init(header: RecordBatchHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
        self.remainingCount = Int(header.recordCount)
    }

    /// The next record, or nil after the last one. Throws if the bytes do not hold exactly the
    /// number of records the header declares.
    public mutating func next() throws -> Record? {
        guard remainingCount > 0 else {
            if payload.readableBytes > 0 {
                throw ProtocolError.corruptRecordBatch(
                    "\(payload.readableBytes) bytes left after the last of \(header.recordCount) records")
            }
            return nil
        }
        guard payload.readableBytes > 0 else {
            throw ProtocolError.corruptRecordBatch(
                "batch declares \(header.recordCount) records but holds \(Int(header.recordCount) - remainingCount)")
        }
        remainingCount -= 1
        return try Record.decode(from: &payload)
    }
}

/// Splits concatenated batches (a fetch response's records, a log segment) into batches.
///
/// Stops without error at a partial trailing batch — fetch responses end with one when the
/// size limit cuts a batch — leaving it in ``remaining``. Throws for a batch that is not magic 2.
public struct RecordBatchIterator: Sendable {
    /// The bytes not yet returned as batches.
    public private(set) var remaining: ByteBuffer

    public init(_ buffer: ByteBuffer) {
        self.remaining = buffer
    }

    /// Whether unread bytes are left (after `next()` returned nil: a partial trailing batch).
    public var hasPartialTrailingBatch: Bool { remaining.readableBytes > 0 }

    public mutating func next() throws -> RecordBatch? {
        // The magic sits at offset 16 in every message format; without it nothing can be judged.
        guard remaining.readableBytes > RecordBatchHeader.magicOffset else { return nil }
        let start = remaining.readerIndex
        try RecordBatch.checkMagic(remaining, at: start)
        let length = remaining.getInteger(at: start + RecordBatchHeader.batchLengthOffset, as: Int32.self)!
        guard length >= RecordBatchHeader.minimumBatchLength else {
            throw ProtocolError.corruptRecordBatch(
                "batch length \(length) is below the minimum \(RecordBatchHeader.minimumBatchLength)")
        }
        guard remaining.readableBytes >= Int(length) + RecordBatchHeader.logOverhead else { return nil }
        let batch = try RecordBatch(bytes: remaining)
        remaining.moveReaderIndex(forwardBy: batch.bytes.readableBytes)
        return batch
    }
}
