import Brook
import BrookPipeline
import Synchronization
import Testing

@Suite(.serialized) struct BackpressureTests {
    enum Bound: Sendable, CaseIterable { case records, bytes }

    /// Records are ~120 bytes: 20 records or 2 400 bytes in flight are about the same bound.
    @Test(arguments: Bound.allCases)
    func slowHandlerKeepsInFlightBoundedAndPausesPartitions(_ bound: Bound) async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("slow", partitions: 4)
            for p in Int32(0)..<4 {
                try await broker.send("slow", partition: p, (0..<50).map { (nil, "p\(p)-\($0)-" + String(repeating: "x", count: 100)) })
            }
            var config = broker.pipelineConfig(group: "g-slow", topics: ["slow"])
            switch bound {
            case .records: config.maxInFlightRecords = 20
            case .bytes: config.maxInFlightBytes = 2400
            }
            config.maxBatchRecords = 5
            // Small fetches, so that one fetched batch (the bound's overshoot) stays small.
            config.consumer.fetch.maxPartitionBytes = 1500
            config.consumer.fetch.maxBytes = 3000
            let seen = Seen()
            let pipeline = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { batch in
                try await Task.sleep(for: .milliseconds(15))
                seen.add(batch)
            }
            let running = Running(pipeline)
            let observed = Mutex((inFlight: 0, bytes: 0, paused: 0))
            let watcher = Task {
                while !Task.isCancelled {
                    let s = pipeline.snapshot()
                    observed.withLock {
                        $0.inFlight = max($0.inFlight, s.inFlightRecords)
                        $0.bytes = max($0.bytes, s.inFlightBytes)
                        $0.paused = max($0.paused, s.partitions.values.filter(\.paused).count)
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            try await eventually("all records") { seen.count >= 200 }
            watcher.cancel()
            try await running.stop()
            let (inFlight, bytes, paused) = observed.withLock { ($0.inFlight, $0.bytes, $0.paused) }
            // The bound may be overshot by one fetched batch (at most ~1 500 bytes here).
            #expect(inFlight <= 20 + 14, "in flight \(inFlight)")
            #expect(bytes <= 2400 + 1700, "bytes in flight \(bytes)")
            #expect(inFlight >= 10)
            #expect(paused > 0)
            #expect(seen.batchSizes.allSatisfy { $0 <= 5 })
            for p in Int32(0)..<4 {
                #expect(seen.all.filter { $0.partition == p }.map(\.offset) == Array(0..<50))
            }
        }
    }
}
