import BrookProtocol
import Foundation
import NIOCore
import Testing

@testable import BrookBroker

@Suite("Storage: compaction")
struct CompactionTests {
    static let t0: Int64 = 1_700_000_000_000

    static func config() -> LogConfig {
        var c = LogConfig()
        c.segmentBytes = 600
        c.indexIntervalBytes = 64
        c.compact = true
        c.retentionMs = -1
        c.flushPolicy = .os
        return c
    }

    /// One batch of keyed records (nil value = tombstone), built with the protocol's builder.
    static func batch(_ records: [(String, String?)], codec: CompressionCodec = .none, at ts: Int64 = t0) throws -> ByteBuffer {
        var b = RecordBatchBuilder(codec: codec)
        for (k, v) in records { b.append(timestamp: ts, key: ByteBuffer(string: k), value: v.map { ByteBuffer(string: $0) }) }
        return try b.finish()
    }

    /// Every (offset, key, value) readable from the log, in order.
    static func readAll(_ log: PartitionLog) throws -> [(Int64, String, String?)] {
        var out: [(Int64, String, String?)] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset {
            let data = try log.read(from: offset, maxBytes: 1 << 20)
            let batches = try RecordBatch.batches(in: data)
            guard let last = batches.last else { break }
            for b in batches {
                for r in try b.decodeRecords() where b.offset(of: r) >= offset {
                    out.append((b.offset(of: r), String(buffer: r.key!), r.value.map { String(buffer: $0) }))
                }
            }
            offset = last.header.baseOffset + Int64(last.header.lastOffsetDelta) + 1
        }
        return out
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .zstd])
    func keepsTheLatestRecordPerKeyWithOffsetsUnchanged(codec: CompressionCodec) async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir, config: Self.config(), clock: { Self.t0 })
            // 30 rounds over 5 accounts, 2 records per batch: many sealed segments.
            for round in 0..<30 {
                let k = round % 5
                _ = try log.append(try Self.batch([("acct-\(k)", "v\(round)a"), ("acct-\(k)", "v\(round)b")], codec: codec))
            }
            try log.roll()
            try log.flush()
            let end = log.logEndOffset
            let before = try Self.readAll(log)
            #expect(before.count == 60)

            let result = try log.compact(now: Self.t0)
            #expect(result.segmentsRewritten > 0)
            #expect(result.bytesAfter < result.bytesBefore)
            let after = try Self.readAll(log)
            // The latest value of each key survives, at its original offset; nothing else does.
            var latest: [String: (Int64, String?)] = [:]
            for (o, k, v) in before { latest[k] = (o, v) }
            #expect(after.count == 5)
            for (o, k, v) in after {
                #expect(latest[k]?.0 == o && latest[k]?.1 == v)
            }
            #expect(log.logEndOffset == end)
            // New appends continue after the old end; a second pass has nothing to do.
            let info = try log.append(try Self.batch([("acct-9", "new")]))
            #expect(info.firstOffset == end)
            #expect(try log.compact(now: Self.t0).segmentsRewritten == 0)

            // Survives a restart: indexes rebuilt, same records.
            try log.close()
            let reopened = try PartitionLog(directory: dir, config: Self.config(), clock: { Self.t0 })
            let again = try Self.readAll(reopened)
            #expect(again.map(\.0) == after.map(\.0) + [end])
            #expect(reopened.logEndOffset == end + 1)
            try reopened.close()
        }
    }

    @Test func tombstonesLiveForDeleteRetentionThenGo() async throws {
        try await withTemporaryDirectory { dir in
            var config = Self.config()
            config.deleteRetentionMs = 1000
            let log = try PartitionLog(directory: dir, config: config, clock: { Self.t0 })
            _ = try log.append(try Self.batch([("a", "1"), ("b", "1")]))
            _ = try log.append(try Self.batch([("a", nil)]))
            for i in 0..<10 { _ = try log.append(try Self.batch([("c", "\(i)")])) }
            try log.roll()
            try log.flush()
            // Within delete.retention.ms the tombstone stays (consumers must see the delete).
            _ = try log.compact(now: Self.t0 + 10)
            let early = try Self.readAll(log)
            #expect(early.contains { $0.1 == "a" && $0.2 == nil })
            #expect(!early.contains { $0.1 == "a" && $0.2 == "1" })
            // Later it goes too; the other keys keep their latest values.
            _ = try log.append(try Self.batch([("d", "x")]))
            try log.roll()
            try log.flush()
            _ = try log.compact(now: Self.t0 + 5000)
            let late = try Self.readAll(log)
            #expect(!late.contains { $0.1 == "a" })
            #expect(late.filter { $0.1 == "b" }.map(\.2) == ["1"])
            #expect(late.filter { $0.1 == "c" }.map(\.2) == ["9"])
            try log.close()
        }
    }

    @Test func theActiveSegmentIsNeverTouchedAndLeftoversAreCleanedOnLoad() async throws {
        try await withTemporaryDirectory { dir in
            var config = Self.config()
            config.segmentBytes = 1 << 20
            let log = try PartitionLog(directory: dir, config: config, clock: { Self.t0 })
            for i in 0..<10 { _ = try log.append(try Self.batch([("k", "\(i)")])) }
            try log.flush()
            #expect(try log.compact(now: Self.t0).segmentsRewritten == 0)
            #expect(try Self.readAll(log).count == 10)
            try log.close()
            // A crash mid-pass leaves a .cleaned file: the next open removes it.
            let leftover = Sys.join(dir, LogSegment.fileName(0, LogSegment.logSuffix)) + LogCleaner.cleanedSuffix
            FileManager.default.createFile(atPath: leftover, contents: Data([1, 2, 3]))
            let reopened = try PartitionLog(directory: dir, config: config, clock: { Self.t0 })
            #expect(!FileManager.default.fileExists(atPath: leftover))
            #expect(try Self.readAll(reopened).count == 10)
            try reopened.close()
        }
    }
}
