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
            // How many appends land between two fsyncs depends on scheduling: alone, 1 to 3
            // rounds; beside other tests on 2 cores, up to 57 were seen. Without group commit
            // there would be 100. The bound that matters is checked deterministically below.
            #expect(rounds >= 1 && rounds < 100)
            #expect(syncs <= rounds * 2)

            // Deterministic: 100 waits on appends that are all in place share one or two rounds.
            var appended: Int64 = 0
            for _ in 0..<100 { appended = try log.append(batch).lastOffset }
            let last = appended
            let roundsBefore = committer.flushRounds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<100 { group.addTask { try await committer.waitDurable(log, upTo: last) } }
                try await group.waitForAll()
            }
            #expect(log.flushedOffset == 2_000)
            #expect(committer.flushRounds - roundsBefore <= 2)
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
