import BrookProtocol
import Foundation
import Testing

@testable import BrookBroker

@Suite("Storage: LogManager")
struct StorageLogManagerTests {
    @Test func parsesPartitionDirectoryNames() {
        #expect(LogManager.parseDirectoryName("orders-0") == TopicPartition(topic: "orders", partition: 0))
        #expect(LogManager.parseDirectoryName("my-dashed-topic-12") == TopicPartition(topic: "my-dashed-topic", partition: 12))
        #expect(LogManager.parseDirectoryName("__consumer_offsets-3") == TopicPartition(topic: "__consumer_offsets", partition: 3))
        #expect(LogManager.parseDirectoryName("a.b_c-7") == TopicPartition(topic: "a.b_c", partition: 7))
        #expect(LogManager.parseDirectoryName("orders") == nil)
        #expect(LogManager.parseDirectoryName("orders-") == nil)
        #expect(LogManager.parseDirectoryName("-3") == nil)
        #expect(LogManager.parseDirectoryName("orders-x") == nil)
        #expect(LogManager.parseDirectoryName("orders-0.1700000000-delete") == nil)
        #expect(LogManager.parseDirectoryName(".lock") == nil)
        #expect(LogManager.directoryName(for: TopicPartition(topic: "a-b", partition: 4)) == "a-b-4")
    }

    @Test func createsLoadsDeletesAndLocks() async throws {
        try await withTemporaryDirectory { dir in
            let manager = try LogManager(directory: dir)
            #expect(throws: StorageError.directoryLocked(path: dir)) { try LogManager(directory: dir) }
            let a = try manager.openOrCreate(topic: "in-bound", partition: 0)
            let b = try manager.openOrCreate(topic: "in-bound", partition: 1)
            #expect(try manager.openOrCreate(topic: "in-bound", partition: 0) === a)
            _ = try a.append(TestBatch.make(records: 3))
            _ = try b.append(TestBatch.make(records: 5))
            #expect(try manager.partitionsOnDisk() == [TopicPartition(topic: "in-bound", partition: 0), TopicPartition(topic: "in-bound", partition: 1)])
            try manager.close()

            let again = try LogManager(directory: dir)
            #expect(again.allLogs.isEmpty)
            let failures = try again.loadAll()
            #expect(failures.isEmpty)
            #expect(again.log(topic: "in-bound", partition: 0)?.logEndOffset == 3)
            #expect(again.log(topic: "in-bound", partition: 1)?.logEndOffset == 5)

            try again.deleteLog(topic: "in-bound", partition: 1)
            #expect(again.log(topic: "in-bound", partition: 1) == nil)
            #expect(!FileManager.default.fileExists(atPath: dir + "/in-bound-1"))
            #expect(try again.partitionsOnDisk() == [TopicPartition(topic: "in-bound", partition: 0)])
            // A deletion interrupted by a crash is finished on the next start.
            try FileManager.default.createDirectory(atPath: dir + "/x-0.123-delete", withIntermediateDirectories: true)
            try again.close()
            let third = try LogManager(directory: dir)
            #expect(!FileManager.default.fileExists(atPath: dir + "/x-0.123-delete"))
            try third.close()
        }
    }

    @Test func maintenanceAppliesRetentionEverywhere() async throws {
        try await withTemporaryDirectory { dir in
            var config = LogConfig()
            config.segmentBytes = 1_000
            config.retentionBytes = 0
            let manager = try LogManager(directory: dir, defaultConfig: config)
            for p in Int32(0)..<3 {
                let log = try manager.openOrCreate(topic: "t", partition: p)
                for _ in 0..<20 { _ = try log.append(TestBatch.make(records: 2, valueSize: 40)) }
            }
            let (result, failures) = manager.runMaintenance()
            #expect(failures.isEmpty)
            #expect(result.deletedSegments > 3)
            for (_, log) in manager.allLogs {
                #expect(log.segmentCount == 1)
                #expect(log.logStartOffset == log.segmentBaseOffsets[0])
            }
            try manager.close()
        }
    }
}
