import BrookProtocol
import Foundation
import NIOCore
import Testing

@testable import BrookBroker

@Suite("Storage: PartitionLog")
struct StoragePartitionLogTests {
    static func smallSegments(_ bytes: Int = 1_000, interval: Int = 100) -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = bytes
        c.indexIntervalBytes = interval
        return c
    }

    @Test func appendAssignsOffsetsAndReadsBackAcrossSegmentRolls() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments())
            var expected: [(Int64, Int64)] = []
            for i in 0..<60 {
                let info = try log.append(TestBatch.make(records: 3, baseOffset: 999))  // client offsets are ignored
                #expect(info.firstOffset == Int64(i * 3))
                #expect(info.lastOffset == Int64(i * 3 + 2))
                #expect(info.logEndOffset == Int64(i * 3 + 3))
                #expect(info.recordCount == 3 && info.batchCount == 1)
                expected.append((info.firstOffset, info.lastOffset))
            }
            #expect(log.logEndOffset == 180)
            #expect(log.segmentCount > 5)
            #expect(log.segmentBaseOffsets.first == 0)

            let all = try log.read(from: 0, maxBytes: 1 << 20, minOneBatch: true)
            let batches = TestBatch.parse(all)
            #expect(batches.count == 60)
            #expect(batches.map { ($0.baseOffset, $0.lastOffset) }.elementsEqual(expected, by: ==))
            #expect(batches.allSatisfy { $0.crcOK })
            #expect(all.readableBytes == log.size)

            // Mid-batch offset: the read starts with the batch containing it.
            let mid = TestBatch.parse(try log.read(from: 100, maxBytes: 1 << 20))
            #expect(mid.first?.baseOffset == 99)
            #expect(mid.count == 27)

            // The end of the log reads empty; beyond it is out of range.
            #expect(try log.read(from: 180, maxBytes: 1000).readableBytes == 0)
            #expect(throws: StorageError.self) { try log.read(from: 181, maxBytes: 1000) }
        }
    }

    @Test func readRespectsMaxBytesMinOneBatchAndUpperBound() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments(1 << 20))
            for _ in 0..<10 { _ = try log.append(TestBatch.make(records: 2, valueSize: 50)) }
            let size = TestBatch.make(records: 2, valueSize: 50).readableBytes

            // Whole batches only.
            let three = TestBatch.parse(try log.read(from: 0, maxBytes: size * 3 + size / 2))
            #expect(three.count == 3)
            // A limit below one batch: one batch with minOneBatch, nothing without.
            #expect(TestBatch.parse(try log.read(from: 4, maxBytes: 10, minOneBatch: true)).map(\.baseOffset) == [4])
            #expect(try log.read(from: 4, maxBytes: 10, minOneBatch: false).readableBytes == 0)
            // Nothing at or past the upper bound; a batch straddling it is withheld too.
            #expect(TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 20, upTo: 6)).map(\.baseOffset) == [0, 2, 4])
            #expect(TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 20, upTo: 5)).map(\.baseOffset) == [0, 2])
            #expect(try log.read(from: 6, maxBytes: 1 << 20, upTo: 6).readableBytes == 0)
        }
    }

    @Test func multiBatchAppendIsOneAppendAndRejectsMalformedInputWholesale() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments(1 << 20))
            // More batches than one pwritev can carry.
            let many = TestBatch.concat((0..<700).map { _ in TestBatch.make(records: 1, valueSize: 1) })
            let info = try log.append(many)
            #expect(info.firstOffset == 0 && info.lastOffset == 699 && info.batchCount == 700)
            let back = TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 22))
            #expect(back.count == 700)
            #expect(back.enumerated().allSatisfy { $0.element.baseOffset == Int64($0.offset) && $0.element.crcOK })

            var truncated = TestBatch.concat([TestBatch.make(records: 2), TestBatch.make(records: 2)])
            truncated.moveWriterIndex(to: truncated.writerIndex - 3)
            #expect(throws: StorageError.self) { try log.append(truncated) }
            var badMagic = TestBatch.make(records: 1)
            badMagic.setInteger(Int8(1), at: 16)
            #expect(throws: StorageError.self) { try log.append(badMagic) }
            #expect(throws: StorageError.self) { try log.append(ByteBuffer()) }
            var small = Self.smallSegments(1 << 20)
            small.maxMessageBytes = 100
            log.updateConfig(small)
            #expect(throws: StorageError.recordBatchTooLarge(size: TestBatch.make(records: 5, valueSize: 40).readableBytes, max: 100)) {
                try log.append(TestBatch.make(records: 5, valueSize: 40))
            }
            #expect(log.logEndOffset == 700)
            #expect(log.size == many.readableBytes)
        }
    }

    @Test func offsetIndexLocatesEveryOffset() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments(8_000, interval: 200))
            for i in 0..<200 { _ = try log.append(TestBatch.make(records: 1 + i % 4, valueSize: 20)) }
            let end = log.logEndOffset
            // The sparse indexes have entries (the point of the test is that seeks use them).
            let counts = log.withSegmentsForTesting { $0.map(\.offsetIndex.count) }
            #expect(counts.allSatisfy { $0 > 5 })
            for offset in stride(from: Int64(0), to: end, by: 1) {
                let b = TestBatch.parse(try log.read(from: offset, maxBytes: 1, minOneBatch: true))
                #expect(b.count == 1)
                #expect(b[0].baseOffset <= offset && offset <= b[0].lastOffset)
            }
        }
    }

    @Test func timestampLookupIsRecordExact() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments(2_000, interval: 150))
            // Batch i holds 4 records with timestamps 10_000 + 100 i + {0, 10, 20, 30}.
            for i in 0..<50 {
                _ = try log.append(TestBatch.make(records: 4, baseTimestamp: 10_000 + Int64(i) * 100, timestampStep: 10))
            }
            #expect(log.segmentCount > 3)
            #expect(try log.offset(forTimestamp: 0) == TimestampAndOffset(timestamp: 10_000, offset: 0))
            // Exact hit, between records, between batches.
            #expect(try log.offset(forTimestamp: 12_320) == TimestampAndOffset(timestamp: 12_320, offset: 23 * 4 + 2))
            #expect(try log.offset(forTimestamp: 12_315) == TimestampAndOffset(timestamp: 12_320, offset: 23 * 4 + 2))
            #expect(try log.offset(forTimestamp: 12_335) == TimestampAndOffset(timestamp: 12_400, offset: 24 * 4))
            #expect(try log.offset(forTimestamp: 14_930) == TimestampAndOffset(timestamp: 14_930, offset: 199))
            #expect(try log.offset(forTimestamp: 14_931) == nil)
            #expect(try log.maxTimestampOffset() == TimestampAndOffset(timestamp: 14_930, offset: 199))
            // Every record, after a reopen (time indexes loaded from disk).
            try log.close()
            let reopened = try PartitionLog(directory: dir, config: Self.smallSegments(2_000, interval: 150))
            for i in 0..<50 {
                for r in 0..<4 {
                    let ts = 10_000 + Int64(i) * 100 + Int64(r) * 10
                    #expect(try reopened.offset(forTimestamp: ts) == TimestampAndOffset(timestamp: ts, offset: Int64(i * 4 + r)))
                }
            }
        }
    }

    @Test func logAppendTimeRewritesHeaderAndCRC() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir)
            _ = try log.append(TestBatch.make(records: 3, baseTimestamp: 5))
            let info = try log.append(TestBatch.make(records: 3, baseTimestamp: 5), logAppendTime: 777_000)
            #expect(info.logAppendTime == 777_000)
            let b = TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 20))
            #expect(b.count == 2 && b.allSatisfy { $0.crcOK })
            #expect(b[0].attributes & 8 == 0 && b[0].maxTimestamp == 7)
            #expect(b[1].attributes & 8 == 8 && b[1].maxTimestamp == 777_000)
            #expect(try log.offset(forTimestamp: 100) == TimestampAndOffset(timestamp: 777_000, offset: 3))
        }
    }

    @Test func compressedBatchesAnswerTimeLookupsPerBatch() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir)
            _ = try log.append(TestBatch.make(records: 4, baseTimestamp: 100, timestampStep: 10, attributes: 1))
            // Inside a compressed batch the answer is its first offset and max timestamp.
            #expect(try log.offset(forTimestamp: 115) == TimestampAndOffset(timestamp: 130, offset: 0))
        }
    }

    @Test func rollsBySegmentMs() async throws {
        try await withTemporaryDirectory { dir in
            let clock = TestClock(1_000_000)
            var config = LogConfig()
            config.segmentMs = 60_000
            let log = try PartitionLog(directory: dir, config: config, clock: clock.function)
            _ = try log.append(TestBatch.make(records: 1))
            clock.advance(by: 30_000)
            _ = try log.append(TestBatch.make(records: 1))
            #expect(log.segmentCount == 1)
            clock.advance(by: 31_000)
            _ = try log.append(TestBatch.make(records: 1))
            #expect(log.segmentBaseOffsets == [0, 2])
            // An idle segment past segment.ms is rolled by maintenance.
            clock.advance(by: 61_000)
            #expect(try log.runMaintenance().rolled)
            #expect(log.segmentBaseOffsets == [0, 2, 3])
        }
    }

    @Test func retentionBySizeKeepsTheNewestAndNeverTheActiveSegment() async throws {
        try await withTemporaryDirectory { dir in
            var config = Self.smallSegments(1_000)
            let log = try PartitionLog(directory: dir, config: config)
            for _ in 0..<40 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40)) }
            let before = log.segmentCount
            let sizeBefore = log.size
            config.retentionBytes = 2_500
            config.retentionMs = -1
            log.updateConfig(config)
            let r = try log.applyRetention()
            #expect(r.deletedSegments > 0 && r.deletedSegments < before)
            #expect(log.size <= 2_500 + 1_000)
            #expect(log.size >= 2_500 || log.segmentCount == 1)
            #expect(sizeBefore - log.size == r.deletedBytes)
            #expect(log.logStartOffset == log.segmentBaseOffsets.first)
            #expect(throws: StorageError.self) { try log.read(from: 0, maxBytes: 100) }
            let rest = TestBatch.parse(try log.read(from: log.logStartOffset, maxBytes: 1 << 20))
            #expect(rest.first?.baseOffset == log.logStartOffset && rest.last?.lastOffset == 79)
            // Retention 0 removes everything but the active segment.
            config.retentionBytes = 0
            log.updateConfig(config)
            try log.applyRetention()
            #expect(log.segmentCount == 1)
            #expect(log.logEndOffset == 80)
            // The deletions are durable: a reopen agrees.
            let start = log.logStartOffset
            try log.close()
            let reopened = try PartitionLog(directory: dir, config: config)
            #expect(reopened.logStartOffset == start)
            #expect(reopened.logEndOffset == 80)
        }
    }

    @Test func retentionByTimeUsesTheNewestTimestampOfASegment() async throws {
        try await withTemporaryDirectory { dir in
            let day: Int64 = 86_400_000
            let now: Int64 = 1_700_000_000_000
            var config = Self.smallSegments(600)
            config.retentionMs = day
            let log = try PartitionLog(directory: dir, config: config, clock: { now })
            for i in 0..<20 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40, baseTimestamp: now - 10 * day + Int64(i))) }
            let oldEnd = log.logEndOffset
            try log.roll()
            for _ in 0..<20 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40, baseTimestamp: now - day / 2)) }
            let r = try log.applyRetention(now: now)
            #expect(r.deletedSegments > 0)
            #expect(log.logStartOffset == oldEnd)
            #expect(log.segmentBaseOffsets.first == oldEnd)
            // Nothing left to expire.
            #expect(try log.applyRetention(now: now).deletedSegments == 0)
            // Later, all sealed segments expire; the active one stays.
            try log.applyRetention(now: now + 2 * day)
            #expect(log.segmentCount == 1)
            #expect(log.logEndOffset == oldEnd + 40)
        }
    }

    @Test func deleteRecordsAdvancesLogStartDurably() async throws {
        try await withTemporaryDirectory { dir in
            let config = Self.smallSegments(1_000)
            let log = try PartitionLog(directory: dir, config: config)
            for _ in 0..<30 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40)) }
            let segments = log.segmentCount
            #expect(try log.deleteRecords(before: 25) == 25)
            #expect(log.logStartOffset == 25)
            #expect(log.segmentCount < segments)
            #expect(log.segmentBaseOffsets.first! <= 25)
            #expect(throws: StorageError.self) { try log.read(from: 24, maxBytes: 100) }
            #expect(TestBatch.parse(try log.read(from: 25, maxBytes: 1)).first?.baseOffset == 24)  // the batch holding 25
            #expect(try log.deleteRecords(before: 10) == 25)  // never backwards
            #expect(throws: StorageError.self) { try log.deleteRecords(before: 61) }
            // Survives an unclean restart (the checkpoint was written at once).
            let reopened = try PartitionLog(directory: dir, config: config)
            #expect(reopened.logStartOffset == 25)
            #expect(reopened.logEndOffset == 60)
            // Deleting everything rolls and removes the old active segment; appends go on.
            #expect(try reopened.deleteRecords(before: 60) == 60)
            #expect(reopened.segmentBaseOffsets == [60])
            #expect(try reopened.append(TestBatch.make(records: 1)).firstOffset == 60)
        }
    }

    @Test func truncateCutsWholeBatches() async throws {
        try await withTemporaryDirectory { dir in
            let config = Self.smallSegments(1_000)
            let log = try PartitionLog(directory: dir, config: config)
            for _ in 0..<30 { _ = try log.append(TestBatch.make(records: 3, valueSize: 30)) }
            try log.flush()
            try log.truncate(to: 40)  // inside batch 39...41
            #expect(log.logEndOffset == 39)
            #expect(log.flushedOffset <= 39)
            #expect(TestBatch.parse(try log.read(from: 0, maxBytes: 1 << 20)).last?.lastOffset == 38)
            #expect(try log.append(TestBatch.make(records: 1)).firstOffset == 39)
            try log.truncate(to: 0)
            #expect(log.logEndOffset == 0 && log.logStartOffset == 0 && log.segmentCount == 1)
            #expect(try log.append(TestBatch.make(records: 2)).firstOffset == 0)
            try log.close()
            let reopened = try PartitionLog(directory: dir, config: config)
            #expect(reopened.logEndOffset == 2)
        }
    }

    @Test func reopenAfterCleanCloseRestoresEverything() async throws {
        try await withTemporaryDirectory { dir in
            let config = Self.smallSegments(2_000, interval: 150)
            let log = try PartitionLog(directory: dir, config: config)
            for i in 0..<40 { _ = try log.append(TestBatch.make(records: 2, baseTimestamp: 1_000 + Int64(i) * 10)) }
            let bytes = try log.read(from: 0, maxBytes: 1 << 20)
            let segments = log.segmentBaseOffsets
            try log.close()
            #expect(FileManager.default.fileExists(atPath: dir + "/clean_shutdown"))
            #expect(throws: StorageError.logClosed) { try log.append(TestBatch.make(records: 1)) }

            let reopened = try PartitionLog(directory: dir, config: config)
            #expect(!FileManager.default.fileExists(atPath: dir + "/clean_shutdown"))
            #expect(reopened.logEndOffset == 80)
            #expect(reopened.flushedOffset == 80)
            #expect(reopened.segmentBaseOffsets == segments)
            #expect(try reopened.read(from: 0, maxBytes: 1 << 20) == bytes)
            #expect(try reopened.offset(forTimestamp: 1_205)?.offset == 42)
            #expect(try reopened.append(TestBatch.make(records: 1)).firstOffset == 80)
            // The active segment's indexes keep working after the reopen.
            for _ in 0..<5 { _ = try reopened.append(TestBatch.make(records: 1)) }
            #expect(TestBatch.parse(try reopened.read(from: 83, maxBytes: 1)).first?.baseOffset == 83)
        }
    }

    @Test func flushAdvancesTheRecoveryPoint() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.smallSegments(1_000))
            for _ in 0..<20 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40)) }
            #expect(log.flushedOffset == 0)
            try log.flush()
            #expect(log.flushedOffset == 40)
            let syncs = log.fsyncCount
            #expect(syncs >= log.segmentCount)
            try log.flush()  // nothing new: no fsync
            #expect(log.fsyncCount == syncs)
            try log.checkpoint()
            let text = try String(contentsOfFile: dir + "/partition.checkpoint", encoding: .utf8)
            #expect(text.contains("recovery-point 40"))
        }
    }

    @Test func concurrentAppendsReadsFlushesAndRetentionStayConsistent() async throws {
        try await withTemporaryDirectory { dir in
            var config = Self.smallSegments(4_000, interval: 200)
            config.retentionBytes = 40_000
            let log = try PartitionLog(directory: dir, config: config)
            let batch = TestBatch.make(records: 4, valueSize: 30)
            let total: Int64 = 4 * 1_500
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for _ in 0..<1_500 { _ = try log.append(batch) }
                }
                group.addTask {
                    while log.logEndOffset < total {
                        try log.flush()
                        try log.applyRetention()
                        await Task.yield()
                    }
                }
                for _ in 0..<2 {
                    group.addTask {
                        var next: Int64 = 0
                        while next < total {
                            let start = log.logStartOffset
                            if next < start { next = start }
                            let buffer: ByteBuffer
                            do {
                                buffer = try log.read(from: next, maxBytes: 3_000)
                            } catch StorageError.offsetOutOfRange(_, _, _) {
                                continue  // retention overtook us
                            }
                            let batches = TestBatch.parse(buffer)
                            #expect(batches.allSatisfy { $0.crcOK })
                            #expect(batches.reduce(0) { $0 + $1.size } == buffer.readableBytes)
                            if let first = batches.first {
                                #expect(first.baseOffset <= next && next <= first.lastOffset)
                                for (a, b) in zip(batches, batches.dropFirst()) { #expect(b.baseOffset == a.lastOffset + 1) }
                                next = batches.last!.lastOffset + 1
                            } else {
                                await Task.yield()
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(log.logEndOffset == total)
            try log.flush()
            #expect(log.flushedOffset == total)
        }
    }
}
