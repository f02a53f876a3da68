import Brook
import BrookBroker
@testable import BrookOps
import Foundation
import Logging
import Testing

@Suite("Topics as code")
struct TopicsAsCodeTests {
    static let yaml = """
        topics:
          - name: trades
            partitions: 4
            config:
              retention.ms: 604800000
              cleanup.policy: delete
          - name: trades.dlt
            partitions: 2
            keyed: false
        """

    @Test func parsesNumbersAsConfigStrings() throws {
        let f = try TopicsFile.parse(Self.yaml)
        #expect(f.topics.map(\.name) == ["trades", "trades.dlt"])
        #expect(f.topics[0].config == ["retention.ms": "604800000", "cleanup.policy": "delete"])
        #expect(f.topics[0].keyed && !f.topics[1].keyed)
    }

    @Test(arguments: [
        ("topics:\n  - partitions: 3\n", "missing name"),
        ("topics:\n  - name: a\n", "partitions must be a positive number"),
        ("topics:\n  - name: a b\n    partitions: 1\n", "illegal topic name"),
        ("topics:\n  - name: a\n    partitions: 1\n  - name: a\n    partitions: 1\n", "appears twice"),
        ("topics: [", "not a valid topics file"),
    ])
    func badFilesNameTheProblem(yaml: String, message: String) {
        #expect {
            try TopicsFile.parse(yaml)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func planCreatesGrowsAndAltersButNeverShrinksOrDeletes() throws {
        let f = try TopicsFile.parse(Self.yaml)
        let observed: [String: TopicPlan.Observed] = [
            "trades": .init(partitions: 4, configs: ["retention.ms": "1000"]),
            "other": .init(partitions: 1, configs: [:]),
            "__consumer_offsets": .init(partitions: 50, configs: [:]),
        ]
        let plan = try TopicPlan.make(file: f, observed: observed)
        #expect(plan.changes == [
            .setConfigs(topic: "trades", ["retention.ms": "604800000", "cleanup.policy": "delete"]),
            .create(f.topics[1]),
        ])
        #expect(plan.unmanaged == ["other"])

        // Shrinking is impossible; growing a keyed topic needs consent; an unkeyed one may grow.
        #expect(throws: TopicsFileError.self) {
            try TopicPlan.make(file: f, observed: ["trades": .init(partitions: 8, configs: [:])])
        }
        #expect(throws: TopicsFileError.self) {
            try TopicPlan.make(file: f, observed: ["trades": .init(partitions: 2, configs: [:])])
        }
        let grown = try TopicPlan.make(file: f, observed: ["trades": .init(partitions: 2, configs: [:])], allowPartitionIncrease: true)
        #expect(grown.changes.first == .addPartitions(topic: "trades", from: 2, to: 4))
        let dlt = try TopicPlan.make(file: f, observed: ["trades.dlt": .init(partitions: 1, configs: [:])])
        #expect(dlt.changes.contains(.addPartitions(topic: "trades.dlt", from: 1, to: 2)))
    }

    @Test func appliesToTheEmbeddedBrokerAndIsIdempotent() async throws {
        var logger = Logger(label: "test.ops")
        logger.logLevel = .error
        let broker = try await EmbeddedBroker.start(logger: logger) { $0.flushPolicy = .os }
        let port = broker.port

        let admin = KafkaAdmin(config: ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: port)]), logger: logger)
        let applier = TopicApplier(admin: admin, logger: logger)
        let file = try TopicsFile.parse(Self.yaml)

        let first = try await applier.plan(file)
        #expect(first.changes.count == 2)
        try await applier.apply(first)
        #expect(try await admin.describeTopic("trades").partitions.count == 4)
        #expect(try await admin.describeTopic("trades.dlt").partitions.count == 2)
        let cfg = try await admin.describeConfigs(.topic, name: "trades", keys: ["retention.ms"])
        #expect(cfg.first?.value == "604800000")

        #expect(try await applier.plan(file).isEmpty)

        // A bad config value is refused before anything changes (validate-only pass first).
        var bad = file
        bad.topics.append(TopicSpec(name: "fresh", partitions: 1))
        bad.topics[0].config["retention.ms"] = "not-a-number"
        await #expect(throws: (any Error).self) {
            try await applier.apply(try await applier.plan(bad))
        }
        #expect(try await admin.listTopics().contains { $0.name == "fresh" } == false)
        await admin.close()
        await broker.stop()
    }
}
