import Brook
import BrookPipeline
import ServiceLifecycle
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

@Suite(.serialized) struct ServiceGroupTests {
    @Test func serviceGroupShutdownStopsThePipelineGracefully() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("svc", partitions: 1)
            try await broker.send("svc", [("k", "v0"), ("k", "v1")])
            let seen = Seen()
            let pipeline = Pipeline(configuration: broker.pipelineConfig(group: "g-svc", topics: ["svc"]), decoder: stringDecoder, logger: quietLogger("p")) {
                seen.add($0)
            }
            let group = ServiceGroup(services: [pipeline], logger: quietLogger("group"))
            let task = Task { try await group.run() }
            try await eventually("processed") { seen.count == 2 }
            await group.triggerGracefulShutdown()
            try await task.value
            #expect(try await broker.committed("g-svc", "svc") == [0: 2])
            #expect(try await broker.admin.describeGroup("g-svc").members.isEmpty)
        }
    }
}

@Suite(.serialized) struct StaticMembershipTests {
    @Test func staticMemberKeepsItsMembershipAcrossARestart() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("st", partitions: 2)
            try await broker.send("st", partition: 0, [("a", "v0"), ("a", "v1")])
            try await broker.send("st", partition: 1, [("b", "v2")])
            var config = broker.pipelineConfig(group: "g-st", topics: ["st"])
            config.consumer.group.groupInstanceId = "worker-1"
            let seen = Seen()
            var running = Running(Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { seen.add($0) })
            try await eventually("first records") { seen.count == 3 }
            try await running.stop()
            #expect(try await broker.committed("g-st", "st") == [0: 2, 1: 1])
            // A static member does not leave: its partitions wait for it (no rebalance of the others).
            let members = try await broker.admin.describeGroup("g-st").members
            #expect(members.map(\.groupInstanceId) == ["worker-1"])

            running = Running(Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { seen.add($0) })
            try await broker.send("st", partition: 1, [("b", "v3")])
            try await eventually("after restart") { seen.count == 4 }
            try await running.stop()
            #expect(seen.values.sorted() == ["v0", "v1", "v2", "v3"])
            #expect(try await broker.admin.describeGroup("g-st").members.count == 1)
        }
    }
}
