import Brook
import BrookPipeline
import Synchronization
import Testing

@Suite(.serialized) struct ShutdownTests {
    @Test func gracefulShutdownFinishesInFlightWorkCommitsAndLeavesTheGroup() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("sd", partitions: 1)
            try await broker.send("sd", (0..<5).map { ("k\($0)", "v\($0)") })
            let config = broker.pipelineConfig(group: "g-sd", topics: ["sd"])
            let started = Mutex(false)
            let seen = Seen()
            let pipeline = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { batch in
                started.withLock { $0 = true }
                try await Task.sleep(for: .milliseconds(500))
                seen.add(batch)
            }
            let running = Running(pipeline)
            try await eventually("member joined") { try await broker.admin.describeGroup("g-sd").members.count == 1 }
            try await eventually("handler started") { started.withLock { $0 } }
            try await running.stop()
            #expect(seen.count == 5)
            #expect(try await broker.committed("g-sd", "sd") == [0: 5])
            #expect(try await broker.admin.describeGroup("g-sd").members.isEmpty)
        }
    }
}
