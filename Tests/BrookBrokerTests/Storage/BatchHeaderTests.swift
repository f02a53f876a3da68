import BrookProtocol
import NIOCore
import Testing

@testable import BrookBroker

/// Storage reads batch headers from raw memory with `RecordBatchHeader`'s layout; these pin that
/// it reads what the protocol module parses, from batches built byte by byte (`TestBatch`).
@Suite struct BatchHeaderTests {
    private func both(_ batch: ByteBuffer) throws -> (BatchHeader, RecordBatchHeader) {
        let parsed = try RecordBatchHeader(parsing: batch, at: batch.readerIndex)
        let raw = batch.withUnsafeReadableBytes { BatchHeader($0.baseAddress!) }
        return (raw, parsed)
    }

    @Test(arguments: [
        Int16(0),
        RecordBatchHeader.timestampTypeBit,
        RecordBatchHeader.attributes(codec: .gzip),
    ])
    func readsTheFieldsTheProtocolModuleParses(attributes: Int16) throws {
        let batch = TestBatch.make(records: 5, baseTimestamp: 1_700_000_000_000, timestampStep: 7, attributes: attributes, baseOffset: 42)
        let (raw, parsed) = try both(batch)
        #expect(raw.baseOffset == parsed.baseOffset)
        #expect(raw.batchLength == parsed.batchLength)
        #expect(raw.magic == parsed.magic)
        #expect(raw.crc == parsed.crc)
        #expect(raw.attributes == parsed.attributes)
        #expect(raw.lastOffsetDelta == parsed.lastOffsetDelta)
        #expect(raw.baseTimestamp == parsed.baseTimestamp)
        #expect(raw.maxTimestamp == parsed.maxTimestamp)
        #expect(raw.recordCount == parsed.recordCount)
        #expect(raw.totalSize == parsed.totalSize)
        #expect(raw.totalSize == batch.readableBytes)
        #expect(raw.lastOffset == parsed.lastOffset)
        #expect(raw.isCompressed == parsed.isCompressed)
        #expect(raw.isLogAppendTime == (parsed.timestampType == .logAppendTime))
        #expect(raw.isWellFramed)
    }

    @Test func computesTheCRCTheHeaderHolds() throws {
        let batch = TestBatch.make(records: 3)
        let (raw, _) = try both(batch)
        let crc = batch.withUnsafeReadableBytes { BatchHeader.computeCRC($0.baseAddress!, totalSize: raw.totalSize) }
        #expect(crc == raw.crc)
        #expect(try RecordBatch(bytes: batch).isCRCValid)
    }

    @Test func aBatchShorterThanAHeaderIsNotWellFramed() throws {
        var batch = TestBatch.make(records: 1)
        batch.setInteger(RecordBatchHeader.minimumBatchLength - 1, at: batch.readerIndex + RecordBatchHeader.batchLengthOffset)
        let (raw, _) = try both(batch)
        #expect(!raw.isWellFramed)
    }
}
