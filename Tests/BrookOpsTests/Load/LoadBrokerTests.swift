import Brook
import BrookBroker
@testable import BrookOps
import Foundation
import Logging
import Testing

/// Load tests against the embedded broker. Nothing here depends on how fast the machine is:
/// counts are exact, latencies only ordered.
@Suite("Load tests against the embedded broker", .serialized)
struct LoadBrokerTests {
    static var logger: Logger {
        var l = Logger(label: "test.load")
        l.logLevel = .error
        return l
    }

    static func withBroker(_ body: (ClientConfiguration) async throws -> Void) async throws {
        let broker = try await EmbeddedBroker.start(.testing, logger: logger)
        do {
            try await body(ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: broker.port)]))
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    @Test func produceMovesLogEndOffsetsByExactlyN() async throws {
        try await Self.withBroker { client in
            let admin = KafkaAdmin(config: client, logger: Self.logger)
            try await admin.createTopics([.init(name: "load", partitions: 3)])
            let before = try await admin.listOffsets(topic: "load", spec: .latest)
            var pc = ProducerConfiguration(client: client)
            try ClientProperties.apply(producer: [("linger.ms", "1"), ("batch.size", "16384")], to: &pc)
            let producer = try KafkaProducer(configuration: pc, logger: Self.logger)
            let n = 20_000
            let test = ProducerLoadTest(topic: "load", numRecords: n, recordSize: 64, keys: .zipf(keys: 50, exponent: 1.1))
            let result = try await test.run(producer: producer)
            await producer.close()
            let after = try await admin.listOffsets(topic: "load", spec: .latest)
            await admin.close()
            let moved = after.reduce(0) { $0 + Int($1.value - (before[$1.key] ?? 0)) }
            #expect(moved == n)
            #expect(result.stats.count == n && result.stats.failed == 0 && result.firstError == nil)
            // Keyed: every partition got some of the 50 keys.
            #expect(after.values.allSatisfy { $0 > 0 })
            let l = result.stats.latency
            #expect(l.count == n)
            #expect(l.p50 > 0 && l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max)
            #expect(result.totalLine.hasPrefix("\(n) records sent, "))
        }
    }

    @Test func throttledProduceAndConsumeCountExactly() async throws {
        try await Self.withBroker { client in
            let admin = KafkaAdmin(config: client, logger: Self.logger)
            try await admin.createTopics([.init(name: "paced", partitions: 2)])
            await admin.close()
            let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client), logger: Self.logger)
            let r = try await ProducerLoadTest(topic: "paced", numRecords: 2000, recordSize: 10,
                                               throttle: ThroughputThrottle(recordsPerSecond: 20_000), keys: .roundRobin(keys: 7))
                .run(producer: producer)
            await producer.close()
            #expect(r.stats.count == 2000)

            var cc = ConsumerConfiguration(client: client)
            cc.groupId = "perf-consumer"
            cc.offsets.autoOffsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: cc, logger: Self.logger)
            try consumer.subscribe(topics: ["paced"])
            let c = try await ConsumerLoadTest(topic: "paced", messages: 2000, idleTimeout: .seconds(30)).run(consumer: consumer)
            #expect(c.records == 2000 && !c.timedOut)
            #expect(c.summary.bytes == 2000 * 10 + 2000 * "key-0".utf8.count)
            let row = ConsumerPerfReport.row(c.summary)
            #expect(row.split(separator: ",").count == 10 && row.contains(", 2000, "))
        }
    }

    @Test func endToEndCountsEveryRecordAndOrdersLatencies() async throws {
        try await Self.withBroker { client in
            let admin = KafkaAdmin(config: client, logger: Self.logger)
            try await admin.createTopics([.init(name: "e2e", partitions: 2)])
            await admin.close()
            let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client), logger: Self.logger)
            var cc = ConsumerConfiguration(client: client)
            cc.groupId = "e2e-group"
            cc.offsets.autoOffsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: cc, logger: Self.logger)
            try consumer.subscribe(topics: ["e2e"])
            let test = EndToEndLoadTest(topic: "e2e", recordSize: 50, rate: 2000, duration: .seconds(2), interval: .seconds(1))
            let r = try await test.run(producers: [producer], consumers: [consumer], workload: "test", partitions: 2)
            let published = r.publishRate.enumerated().reduce(0.0) { $0 + $1.element }
            #expect(published > 0)
            // Drained: the last backlog is zero and the aggregated percentiles are ordered.
            #expect(r.backlog.last == 0)
            #expect(r.aggregatedEndToEndLatency50pct > 0)
            #expect(r.aggregatedEndToEndLatency50pct <= r.aggregatedEndToEndLatency99pct)
            #expect(r.aggregatedEndToEndLatency99pct <= r.aggregatedEndToEndLatencyMax)
            #expect(r.aggregatedPublishLatency50pct <= r.aggregatedPublishLatency99pct)
        }
    }

    @Test func sweepOnATinyMatrixWritesAllThreeFiles() async throws {
        try await Self.withBroker { client in
            let spec = try SweepSpec.parse("""
                partitions: 2
                records: 2000
                warmup-records: 200
                repeats: 2
                producer:
                  linger.ms: [0, 2]
                consumer:
                  fetch.max.wait.ms: 50
                """)
            let runner = SweepRunner(spec: spec, target: ConsumerSweepTarget(logger: Self.logger), client: client, logger: Self.logger)
            let lines = LinesBox()
            let report = try await runner.run(title: "tiny") { lines.append($0) }
            #expect(report.runs.count == 4)
            #expect(lines.value.count == 4 && lines.value.last!.hasPrefix("[4/4] "))
            #expect(report.runs.allSatisfy { $0.measurement.throughput > 0 && $0.measurement.cpuSeconds >= 0 })
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
            try report.write(to: dir)
            defer { try? FileManager.default.removeItem(at: dir) }
            for f in SweepReport.fileNames {
                let size = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path)[.size] as? Int ?? 0
                #expect(size > 100, "\(f)")
            }
            #expect(report.analysis.best != nil)
        }
    }
}

/// Progress lines collected from the runner's callback.
final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var value: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
