import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import BrookBroker

/// Times recovery of a large log. Off by default; run with
/// `BROOK_RECOVERY_BENCH=1 swift test --filter StorageRecoveryBenchmark` (optionally
/// `BROOK_RECOVERY_BENCH_MB=<size>`, default 1024, and `BROOK_RECOVERY_BENCH_DIR=<dir>`; best in
/// release: add `-c release`).
@Suite("Storage: recovery benchmark")
struct StorageRecoveryBenchmark {
    static let environment = ProcessInfo.processInfo.environment
    static let enabled = environment["BROOK_RECOVERY_BENCH"] == "1"

    /// Appends ~16 KiB batches (100 records of 150 bytes) in 1 MiB appends until the log holds
    /// `bytes`. Returns the append throughput in MB/s.
    @discardableResult
    static func buildLargeLog(_ log: PartitionLog, bytes: Int) throws -> Double {
        var batches: [ByteBuffer] = []
        var chunkSize = 0
        var i = 0
        while chunkSize < 1 << 20 {
            let b = TestBatch.make(records: 100, valueSize: 150, baseTimestamp: 1_700_000_000_000 + Int64(i) * 100, fill: UInt8(truncatingIfNeeded: i))
            chunkSize += b.readableBytes
            batches.append(b)
            i += 1
        }
        let chunk = TestBatch.concat(batches)
        let started = ContinuousClock.now
        while log.size + chunk.readableBytes <= bytes {
            _ = try log.append(chunk)
        }
        let seconds = (ContinuousClock.now - started).seconds
        return Double(log.size) / 1e6 / seconds
    }

    static func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let started = ContinuousClock.now
        let result = try body()
        return (result, (ContinuousClock.now - started).seconds)
    }

    /// Drops the segment files' pages from the page cache (they are clean after recovery's fsync).
    static func evictFromPageCache(_ dir: String) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".log") {
            let fd = open(dir + "/" + name, O_RDONLY)
            guard fd >= 0 else { continue }
            _ = fdatasync(fd)
            _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
            close(fd)
        }
    }

    @Test(.enabled(if: enabled), .timeLimit(.minutes(20)))
    func recoveryOfALargeLog() async throws {
        let megabytes = Int(Self.environment["BROOK_RECOVERY_BENCH_MB"] ?? "") ?? 1024
        let run = { (dir: String) throws in
            let config = LogConfig()  // Kafka defaults: 1 GiB segments, 4 KiB index interval
            let log = try PartitionLog(directory: dir, config: config)
            let appendRate = try Self.buildLargeLog(log, bytes: megabytes << 20)
            let size = log.size
            let end = log.logEndOffset
            print("bench: built \(size) bytes, \(end) records, \(log.segmentCount) segment(s), append \(Int(appendRate)) MB/s (page cache)")
            try log.flush()  // clean pages, but the checkpoint still says "recover everything"

            // Crash (no close): every segment after the recovery point, and always the active one, is rescanned.
            let (warm, warmSeconds) = try Self.time { try PartitionLog(directory: dir, config: config) }
            #expect(warm.logEndOffset == end)
            print("bench: unclean recovery, page cache warm: \(String(format: "%.3f", warmSeconds)) s (\(Int(Double(size) / 1e6 / warmSeconds)) MB/s)")

            try Self.evictFromPageCache(dir)
            let (cold, coldSeconds) = try Self.time { try PartitionLog(directory: dir, config: config) }
            #expect(cold.logEndOffset == end)
            print("bench: unclean recovery, page cache evicted: \(String(format: "%.3f", coldSeconds)) s (\(Int(Double(size) / 1e6 / coldSeconds)) MB/s)")

            try cold.close()
            let (clean, cleanSeconds) = try Self.time { try PartitionLog(directory: dir, config: config) }
            #expect(clean.logEndOffset == end)
            print("bench: open after clean shutdown: \(String(format: "%.3f", cleanSeconds)) s")

            let (_, readSeconds) = try Self.time {
                var offset = clean.logStartOffset
                while offset < end {
                    let buf = try clean.read(from: offset, maxBytes: 8 << 20)
                    offset = TestBatch.parse(buf).last!.lastOffset + 1
                }
            }
            print("bench: sequential read of the log in 8 MiB fetches: \(Int(Double(size) / 1e6 / readSeconds)) MB/s")
        }
        if let dir = Self.environment["BROOK_RECOVERY_BENCH_DIR"] {
            try? FileManager.default.removeItem(atPath: dir)
            try run(dir)
            try? FileManager.default.removeItem(atPath: dir)
        } else {
            try await withTemporaryDirectory { try run($0) }
        }
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
