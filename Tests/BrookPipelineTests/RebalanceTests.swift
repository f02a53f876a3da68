import Brook
import BrookPipeline
import Synchronization
import Testing

@Suite(.serialized) struct RebalanceTests {
    @Test func secondMemberJoiningMidStreamProcessesEachRecordOnce() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("rb", partitions: 4)
            for p in Int32(0)..<4 {
                try await broker.send("rb", partition: p, (0..<40).map { ("k\($0 % 3)", "p\(p)-\($0)") })
            }
            var config = broker.pipelineConfig(group: "g-rb", topics: ["rb"])
            config.maxBatchRecords = 2
            let seen = Seen()
            let bySecond = Seen()
            // The first member holds after 20 records until the second one's join has started a
            // rebalance: otherwise, on a loaded machine, it could finish everything first.
            let rebalancing = Mutex(false)
            func handler(_ mine: Seen?, holdAfter: Int = .max) -> Pipeline<String>.BatchHandler {
                { batch in
                    while seen.count >= holdAfter, !rebalancing.withLock({ $0 }) {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    try await Task.sleep(for: .milliseconds(50))
                    seen.add(batch)
                    mine?.add(batch)
                }
            }
            let first = Running(Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p1"), handler: handler(nil, holdAfter: 20)))
            try await eventually("first member busy") { seen.count >= 20 }
            let second = Running(Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p2"), handler: handler(bySecond)))
            try await eventually("the second member's join starts a rebalance") {
                let group = try await broker.admin.describeGroup("g-rb")
                return group.state != "Stable" || group.members.count == 2
            }
            rebalancing.withLock { $0 = true }
            try await eventually("all records") { seen.count >= 160 }
            try await eventually("both members") { try await broker.admin.describeGroup("g-rb").members.count == 2 }
            try await eventually("commits") { try await broker.committed("g-rb", "rb") == [0: 40, 1: 40, 2: 40, 3: 40] }
            try await second.stop()
            try await first.stop()
            // Revocation finished the handler calls in progress and committed them: nothing twice.
            #expect(bySecond.count > 0 && bySecond.count < 160, "the second member took over part of the work")
            #expect(seen.count == 160)
            #expect(Set(seen.values).count == 160)
            for p in Int32(0)..<4 {
                let offsets = seen.all.filter { $0.partition == p }.map(\.offset)
                #expect(offsets == Array(0..<40))
            }
        }
    }
}
