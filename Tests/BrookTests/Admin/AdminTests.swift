import Brook
import BrookBroker
import BrookProtocol
import Foundation
import Logging
import NIOCore
import Testing

/// A real broker on a loopback port for the admin tests.
private final class AdminTestBroker: Sendable {
    let embedded: EmbeddedBroker

    init() async throws {
        var logger = Logger(label: "admin-test")
        logger.logLevel = .warning
        embedded = try await EmbeddedBroker.start(logger: logger) { c in
            c.groupInitialRebalanceDelay = .zero
            c.flushPolicy = .os
        }
    }

    var port: Int { embedded.port }

    func stop() async { await embedded.stop() }

    var config: ClientConfiguration { ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: port)]) }
}

@Suite struct AdminTests {
    @Test func topicLifecycleConfigsAndOffsets() async throws {
        let b = try await AdminTestBroker()
        let admin = KafkaAdmin(config: b.config)
        try await admin.createTopics([.init(name: "payments", partitions: 3, configs: ["retention.ms": "3600000"])])
        await #expect(throws: KafkaClientError.self) {
            try await admin.createTopics([.init(name: "payments", partitions: 3)])
        }
        do {
            try await admin.createTopics([.init(name: "payments", partitions: 1)])
        } catch let e as KafkaClientError {
            #expect(e.code == .broker)
            #expect(e.errorCode == .topicAlreadyExists)
            #expect("\(e)".contains("payments"))
        }
        #expect(try await admin.listTopics().map(\.name) == ["payments"])
        #expect(try await admin.describeTopic("payments").partitions.count == 3)
        try await admin.createPartitions(topic: "payments", totalCount: 5)
        #expect(try await admin.describeTopic("payments").partitions.count == 5)

        let configs = try await admin.describeConfigs(.topic, name: "payments")
        #expect(configs.first { $0.name == "retention.ms" }?.value == "3600000")
        try await admin.alterConfigs(.topic, name: "payments", [("retention.ms", .set, "7200000"), ("cleanup.policy", .set, "compact")])
        let after = try await admin.describeConfigs(.topic, name: "payments", keys: ["retention.ms", "cleanup.policy"])
        #expect(Set(after.map { "\($0.name)=\($0.value ?? "")" }) == ["retention.ms=7200000", "cleanup.policy=compact"])

        // Produce a few records straight over a connection, then offsets and delete-records.
        let conn = try await admin.cluster.anyConnection()
        var produce = ProduceRequest()
        produce.acks = -1
        produce.timeoutMs = 5000
        var t = ProduceRequest.TopicProduceData()
        t.name = "payments"
        var p = ProduceRequest.PartitionProduceData()
        p.index = 0
        // The topic is compacted now: like Kafka, Brook refuses records without a key there.
        var builder = RecordBatchBuilder()
        for i in 0..<10 { builder.append(timestamp: 1_700_000_000_000 + Int64(i) * 1000, key: ByteBuffer(string: "k\(i)"), value: ByteBuffer(string: "v\(i)")) }
        p.records = try builder.finish()
        t.partitionData = [p]
        produce.topicData = [t]
        let pr = try await conn.send(produce)
        #expect(pr.responses[0].partitionResponses[0].errorCode == 0)

        #expect(try await admin.listOffsets(topic: "payments", spec: .latest)[0] == 10)
        #expect(try await admin.listOffsets(topic: "payments", spec: .earliest)[0] == 0)
        #expect(try await admin.listOffsets(topic: "payments", spec: .timestamp(1_700_000_004_500))[0] == 5)
        #expect(try await admin.deleteRecords(topic: "payments", before: [0: 4])[0] == 4)
        #expect(try await admin.listOffsets(topic: "payments", spec: .earliest)[0] == 4)

        // Group offsets for an inactive group: set, read back, lag.
        try await admin.alterGroupOffsets("billing", offsets: ["payments": [0: 7, 1: 0]])
        #expect(try await admin.groupOffsets("billing")["payments"] == [0: 7, 1: 0])
        let lag = try await admin.groupLag("billing")
        #expect(lag.first { $0.partition == 0 }?.lag == 3)
        #expect(try await admin.listGroups().map(\.groupId).contains("billing"))
        try await admin.deleteGroups(["billing"])
        #expect(try await admin.groupOffsets("billing").isEmpty)

        let cluster = try await admin.describeCluster()
        #expect(cluster.brokers.count == 1 && cluster.brokers[0].address.port == b.port)

        try await admin.deleteTopics(["payments"])
        #expect(try await admin.listTopics().isEmpty)
        await admin.close()
        await b.stop()
    }

    @Test func unreachableClusterIsAClearError() async throws {
        var config = ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: 1)])
        config.connectTimeout = .seconds(2)
        let admin = KafkaAdmin(config: config)
        do {
            _ = try await admin.listTopics()
            Issue.record("expected an error")
        } catch let e as KafkaClientError {
            #expect("\(e)".contains("127.0.0.1:1"))
            #expect("\(e)".contains("connection refused"))
        }
        await admin.close()
    }

    @Test func murmur2MatchesJavaKnownValues() {
        // Values from Kafka's UtilsTest (Java client), the contract for key → partition.
        let cases: [(String, Int32)] = [
            ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (s, h) in cases { #expect(Murmur2.hash(Array(s.utf8)) == h, "\(s)") }
    }
}
