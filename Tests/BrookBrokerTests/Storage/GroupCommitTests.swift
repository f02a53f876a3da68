import NIOCore
import NIOPosix
import Testing

@testable import BrookBroker

@Suite("Storage: group commit")
struct StorageGroupCommitTests {
    @Test func hundredConcurrentProducersShareFewFsyncs() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir)
            let committer = GroupCommitter(threads: 1)
            // Built up front so producers arrive as fast as a broker's would (debug builds make
            // batch construction slower than an fsync).
            let batch = TestBatch.make(records: 10, valueSize: 100)
            let syncsBefore = log.fsyncCount
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 {
                    group.addTask {
                        let info = try log.append(batch)
                        try await committer.waitDurable(log, upTo: info.lastOffset)
                        #expect(log.flushedOffset > info.lastOffset)
                    }
                }
                try await group.waitForAll()
            }
            let rounds = committer.flushRounds
            let syncs = log.fsyncCount - syncsBefore
            print("group commit: 100 appends, \(committer.waitRequests) waits, \(rounds) flush rounds, \(syncs) fsyncs in \(ContinuousClock.now - started)")
            #expect(log.flushedOffset == 1_000)
            #expect(rounds >= 1 && rounds <= 25)
            #expect(syncs <= rounds * 2)
            try await committer.shutdown()
        }
    }

    @Test func manyLogsAndTheFutureAndAppendVariants() async throws {
        try await withTemporaryDirectory { dir in
            let logs = try (0..<4).map { try PartitionLog(directory: "\(dir)/t-\($0)") }
            let committer = GroupCommitter(threads: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        _ = try await committer.appendDurably(to: logs[i % 4], TestBatch.make(records: 1))
                    }
                }
                try await group.waitForAll()
            }
            for log in logs { #expect(log.flushedOffset == 50) }

            let elg = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let info = try logs[0].append(TestBatch.make(records: 3))
            try await committer.waitDurable(logs[0], upTo: info.lastOffset, on: elg.next()).get()
            #expect(logs[0].flushedOffset == 53)
            // Already durable: answered at once.
            try await committer.waitDurable(logs[0], upTo: 10, on: elg.next()).get()
            try await elg.shutdownGracefully()
            try await committer.shutdown()
        }
    }

    @Test func aClosedLogFailsItsWaiters() async throws {
        try await withTemporaryDirectory { dir in
            let log = try PartitionLog(directory: dir)
            let committer = GroupCommitter()
            let info = try log.append(TestBatch.make(records: 1))
            try log.delete()
            await #expect(throws: StorageError.self) { try await committer.waitDurable(log, upTo: info.lastOffset) }
            try await committer.shutdown()
            await #expect(throws: StorageError.self) { try await committer.waitDurable(log, upTo: 99) }
        }
    }
}
