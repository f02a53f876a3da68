import Brook
import BrookPipeline
import Synchronization
import Testing

@Suite(.serialized) struct OrderingTests {
    @Test func perPartitionOrderExactlyOnceAndBoundedBatches() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("orders", partitions: 3)
            for p in Int32(0)..<3 {
                try await broker.send("orders", partition: p, (0..<60).map { ("k\($0 % 5)", "p\(p)-\($0)") })
            }
            var config = broker.pipelineConfig(group: "g-order", topics: ["orders"])
            config.maxBatchRecords = 7
            let seen = Seen()
            let running = Running(Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { seen.add($0) })
            try await eventually("all records") { seen.count >= 180 }
            try await eventually("commits") { try await broker.committed("g-order", "orders") == [0: 60, 1: 60, 2: 60] }
            try await running.stop()
            #expect(seen.count == 180)
            #expect(seen.batchSizes.allSatisfy { $0 <= 7 })
            for p in Int32(0)..<3 {
                let offsets = seen.all.filter { $0.partition == p }.map(\.offset)
                #expect(offsets == Array(0..<60))
            }
        }
    }

    @Test func perKeyOrderWithConcurrencyBeyondPartitions() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("accounts", partitions: 1)
            try await broker.send("accounts", (0..<80).map { ("acct\($0 % 8)", "\($0 / 8)") })
            var config = broker.pipelineConfig(group: "g-key", topics: ["accounts"])
            config.ordering = .key(lanesPerPartition: 8)
            config.maxBatchRecords = 2
            let seen = Seen()
            let concurrent = Mutex((now: 0, max: 0))
            let running = Running(
                Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { batch in
                    concurrent.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
                    try await Task.sleep(for: .milliseconds(20))
                    concurrent.withLock { $0.now -= 1 }
                    seen.add(batch)
                })
            try await eventually("all records") { seen.count >= 80 }
            try await eventually("commit") { try await broker.committed("g-key", "accounts") == [0: 80] }
            try await running.stop()
            // One partition, yet several handler calls at once: concurrency comes from keys.
            #expect(concurrent.withLock { $0.max } > 1)
            for k in 0..<8 {
                #expect(seen.valuesOf(key: "acct\(k)") == (0..<10).map(String.init))
            }
        }
    }

    @Test func commitsStopAtTheFirstUnfinishedRecord() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("prefix", partitions: 1)
            let lanes = 4
            func lane(_ k: String) -> Int32 { (Murmur2.hash(Array(k.utf8)) & 0x7fff_ffff) % Int32(lanes) }
            let fast = (0..<100).map { "f\($0)" }.filter { lane($0) != lane("slow") }.prefix(3)
            try await broker.send("prefix", [("slow", "blocked")] + (0..<30).map { (fast[fast.startIndex + $0 % 3], "v\($0)") })
            var config = broker.pipelineConfig(group: "g-prefix", topics: ["prefix"])
            config.ordering = .key(lanesPerPartition: lanes)
            let gate = Mutex(false)
            let seen = Seen()
            let running = Running(
                Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { batch in
                    if batch.contains(where: { $0.keyString == "slow" }) {
                        while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                    }
                    seen.add(batch)
                })
            try await eventually("fast keys done") { seen.count == 30 }
            try await Task.sleep(for: .milliseconds(400))  // several commit intervals
            #expect((try await broker.committed("g-prefix", "prefix")[0] ?? 0) == 0)
            gate.withLock { $0 = true }
            try await eventually("commit after the slow record") { try await broker.committed("g-prefix", "prefix") == [0: 31] }
            try await running.stop()
        }
    }
}
