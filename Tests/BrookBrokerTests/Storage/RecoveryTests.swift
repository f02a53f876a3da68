import Foundation
import NIOCore
import Testing

@testable import BrookBroker

@Suite("Storage: recovery")
struct StorageRecoveryTests {
    static let config: LogConfig = {
        var c = LogConfig()
        c.segmentBytes = 1_500
        c.indexIntervalBytes = 100
        return c
    }()

    /// Ten 5-record batches in one segment, left unflushed and unclosed (a crash).
    func crashedLog(_ dir: String) throws -> (batchSize: Int, segment: String) {
        var c = LogConfig()
        c.indexIntervalBytes = 100
        let log = try PartitionLog(directory: dir, config: c)
        for _ in 0..<10 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20)) }
        return (TestBatch.make(records: 5, valueSize: 20).readableBytes, FileSurgery.segmentPath(dir, 0))
    }

    func expectIntactAfterCut(_ dir: String, batches: Int, batchSize: Int) throws {
        let log = try PartitionLog(directory: dir)
        #expect(log.logEndOffset == Int64(batches * 5))
        #expect(log.size == batches * batchSize)
        #expect(try FileSurgery.size(FileSurgery.segmentPath(dir, 0)) == batches * batchSize)
        let back = TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 20))
        #expect(back.count == batches && back.allSatisfy { $0.crcOK })
        #expect(back.last?.lastOffset == Int64(batches * 5 - 1))
        // Appends continue right after the last good batch.
        #expect(try log.append(TestBatch.make(records: 2)).firstOffset == Int64(batches * 5))
        #expect(TestBatch.parse(try log.read(from: Int64(batches * 5), maxBytes: 1)).first?.baseOffset == Int64(batches * 5))
    }

    @Test func garbageAfterTheLastBatchIsCut() async throws {
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.append(segment, (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) })
            try expectIntactAfterCut(dir, batches: 10, batchSize: size)
        }
    }

    @Test func zeroFilledTailIsCut() async throws {
        // What a file system can leave after a crash: the size grew but the data never landed.
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.append(segment, [UInt8](repeating: 0, count: 4096))
            try expectIntactAfterCut(dir, batches: 10, batchSize: size)
        }
    }

    @Test func batchTornMidwayIsCut() async throws {
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.truncate(segment, to: 10 * size - 17)
            try expectIntactAfterCut(dir, batches: 9, batchSize: size)
        }
    }

    @Test func headerTornMidwayIsCut() async throws {
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.truncate(segment, to: 9 * size + 30)
            try expectIntactAfterCut(dir, batches: 9, batchSize: size)
        }
    }

    @Test func flippedByteInTheLastBatchIsCut() async throws {
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.flipByte(segment, at: 9 * size + 70)
            try expectIntactAfterCut(dir, batches: 9, batchSize: size)
        }
    }

    @Test func flippedLengthFieldIsCut() async throws {
        try await withTemporaryDirectory { dir in
            let (size, segment) = try crashedLog(dir)
            try FileSurgery.flipByte(segment, at: 9 * size + 10)
            try expectIntactAfterCut(dir, batches: 9, batchSize: size)
        }
    }

    @Test func corruptionInAnEarlierSegmentDropsTheSegmentsAfterIt() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.config)
            for _ in 0..<60 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20)) }
            let bases = log.segmentBaseOffsets
            #expect(bases.count >= 4)
            // Corrupt the second batch of the second segment (nothing was flushed: all are rescanned).
            let size = TestBatch.make(records: 5, valueSize: 20).readableBytes
            try FileSurgery.flipByte(FileSurgery.segmentPath(dir, bases[1]), at: size + 40)

            let reopened = try PartitionLog(directory: dir, config: Self.config)
            #expect(reopened.logEndOffset == bases[1] + 5)
            #expect(reopened.segmentBaseOffsets == [bases[0], bases[1]])
            for base in bases[2...] {
                #expect(!FileManager.default.fileExists(atPath: FileSurgery.segmentPath(dir, base)))
                #expect(!FileManager.default.fileExists(atPath: FileSurgery.segmentPath(dir, base, ".index")))
            }
            #expect(try reopened.append(TestBatch.make(records: 1)).firstOffset == bases[1] + 5)
        }
    }

    @Test func flushedSegmentsAreNotRescannedButTheTailIs() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.config)
            for _ in 0..<40 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20)) }
            try log.flush()
            try log.checkpoint()
            let flushed = log.logEndOffset
            for _ in 0..<5 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20)) }
            // Tear the unflushed tail.
            let active = FileSurgery.segmentPath(dir, log.segmentBaseOffsets.last!)
            try FileSurgery.truncate(active, to: try FileSurgery.size(active) - 3)
            let reopened = try PartitionLog(directory: dir, config: Self.config)
            #expect(reopened.logEndOffset == flushed + 20)
            #expect(reopened.flushedOffset == reopened.logEndOffset)
        }
    }

    @Test func missingOrCorruptIndexesAreRebuilt() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.config)
            for i in 0..<60 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20, baseTimestamp: 1_000 + Int64(i) * 100)) }
            let bases = log.segmentBaseOffsets
            let indexSizes = try bases.map { try FileSurgery.size(FileSurgery.segmentPath(dir, $0, ".index")) }
            let timeSizes = try bases.map { try FileSurgery.size(FileSurgery.segmentPath(dir, $0, ".timeindex")) }
            try log.close()
            #expect(indexSizes[0] > 0 && timeSizes[0] > 0)

            try FileManager.default.removeItem(atPath: FileSurgery.segmentPath(dir, bases[0], ".index"))
            try FileManager.default.removeItem(atPath: FileSurgery.segmentPath(dir, bases[1], ".timeindex"))
            try FileSurgery.truncate(FileSurgery.segmentPath(dir, bases[2], ".index"), to: 5)  // not whole entries
            try FileSurgery.append(FileSurgery.segmentPath(dir, bases[3], ".index"), [UInt8](repeating: 0, count: 8))  // zero entry

            let reopened = try PartitionLog(directory: dir, config: Self.config)
            #expect(reopened.logEndOffset == 300)
            for (i, base) in bases.enumerated() {
                #expect(try FileSurgery.size(FileSurgery.segmentPath(dir, base, ".index")) == indexSizes[i])
                #expect(try FileSurgery.size(FileSurgery.segmentPath(dir, base, ".timeindex")) == timeSizes[i])
            }
            for offset in stride(from: Int64(0), to: 300, by: 7) {
                let b = TestBatch.parse(try reopened.read(from: offset, maxBytes: 1))
                #expect(b.first.map { $0.baseOffset <= offset && offset <= $0.lastOffset } == true)
            }
            #expect(try reopened.offset(forTimestamp: 1_000 + 17 * 100)?.offset == 17 * 5)
        }
    }

    @Test func orphanAndTemporaryFilesAreRemoved() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir)
            _ = try log.append(TestBatch.make(records: 1))
            try log.close()
            _ = FileManager.default.createFile(atPath: FileSurgery.segmentPath(dir, 500, ".index"), contents: Data([1, 2, 3]))
            _ = FileManager.default.createFile(atPath: dir + "/partition.checkpoint.tmp", contents: Data([1]))
            let reopened = try PartitionLog(directory: dir)
            #expect(reopened.logEndOffset == 1)
            #expect(!FileManager.default.fileExists(atPath: FileSurgery.segmentPath(dir, 500, ".index")))
            #expect(!FileManager.default.fileExists(atPath: dir + "/partition.checkpoint.tmp"))
        }
    }

    @Test func uncleanReopenWithoutAnyCheckpointRecoversEverything() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.config)
            for _ in 0..<30 { _ = try log.append(TestBatch.make(records: 5, valueSize: 20)) }
            try FileManager.default.removeItem(atPath: dir + "/partition.checkpoint")
            let reopened = try PartitionLog(directory: dir, config: Self.config)
            #expect(reopened.logEndOffset == 150)
            #expect(reopened.logStartOffset == 0)
        }
    }
}
