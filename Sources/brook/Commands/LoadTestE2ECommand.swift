import ArgumentParser
import Brook
import BrookOps
import Foundation

/// `brook loadtest e2e`: producers at a target rate, a consumer group reading along; latency
/// percentiles per interval and aggregated, backlog over time, OpenMessaging Benchmark JSON.
struct LoadTestE2E: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e", abstract: "End-to-end latency at a target rate: producers → broker → consumer group.")

    @OptionGroup var client: ClientOptions
    @Option(help: "Topic (created with --partitions if missing).") var topic: String
    @Option(help: "Partitions of a topic this command creates.") var partitions: Int32 = 4
    @Option(help: "Records per second over all producers.") var rate: Double = 10000
    @Option(name: .customLong("record-size"), help: "Value size in bytes (≥ 8: the send time is stamped in).") var recordSize: Int = 100
    @Option(help: "Producer instances.") var producers: Int = 1
    @Option(help: "Consumer group members.") var consumers: Int = 1
    @Option(help: "Consumer group id.") var group: String = "brook-e2e-\(Int.random(in: 10000...99999))"
    @Option(name: .customLong("duration"), help: "Seconds to produce.") var durationSeconds: Int = 60
    @Option(name: .customLong("interval"), help: "Seconds per reporting interval.") var intervalSeconds: Int = 10
    @Option(name: .customLong("producer-props"), parsing: .upToNextOption, help: "Producer properties k=v.") var producerProps: [String] = []
    @Option(name: .customLong("consumer-props"), parsing: .upToNextOption, help: "Consumer properties k=v.") var consumerProps: [String] = []
    @Option(name: .customLong("key-distribution"), help: "none, round-robin, random or zipf.") var keyDistribution: String = "none"
    @Option(help: "Distinct keys.") var keys: Int = 1000
    @Option(help: "Write OpenMessaging Benchmark's result JSON here.") var json: String?

    func run() async throws {
        try await runClient {
            guard rate > 0, producers > 0, consumers > 0, durationSeconds > 0, intervalSeconds > 0 else {
                throw ValidationError("--rate, --producers, --consumers, --duration and --interval must be positive")
            }
            let cfg = try client.configuration()
            let admin = KafkaAdmin(config: cfg, logger: client.logger)
            let existing = try await admin.listTopics().first { $0.name == topic }
            if existing == nil { try await admin.createTopics([.init(name: topic, partitions: partitions)]) }
            let partitionCount = existing?.partitions.count ?? Int(partitions)
            await admin.close()

            var pc = ProducerConfiguration(client: cfg)
            try ClientProperties.apply(producer: try ClientProperties.parsePairs(producerProps), to: &pc)
            var cc = ConsumerConfiguration(client: cfg)
            cc.groupId = group
            cc.offsets.autoOffsetReset = .earliest
            try ClientProperties.apply(consumer: try ClientProperties.parsePairs(consumerProps), to: &cc)
            let ps = try (0..<producers).map { _ in try KafkaProducer(configuration: pc, logger: client.logger) }
            let cs = try (0..<consumers).map { _ in
                let c = try KafkaConsumer(configuration: cc, logger: client.logger)
                try c.subscribe(topics: [topic])
                return c
            }
            let test = EndToEndLoadTest(topic: topic, recordSize: recordSize, rate: rate, duration: .seconds(durationSeconds),
                                        interval: .seconds(intervalSeconds), keys: try KeyDistribution.parse(keyDistribution, keys: keys))
            let result = try await test.run(producers: ps, consumers: cs, workload: "\(topic)-\(Int(rate))rps-\(recordSize)b",
                                            partitions: partitionCount) { print($0.line) }
            print("Aggregated: Pub Latency (ms) avg \(f(result.aggregatedPublishLatencyAvg)) 50% \(f(result.aggregatedPublishLatency50pct)) "
                + "99% \(f(result.aggregatedPublishLatency99pct)) 99.9% \(f(result.aggregatedPublishLatency999pct)) max \(f(result.aggregatedPublishLatencyMax)) | "
                + "E2E Latency (ms) 50% \(f(result.aggregatedEndToEndLatency50pct)) 95% \(f(result.aggregatedEndToEndLatency95pct)) "
                + "99% \(f(result.aggregatedEndToEndLatency99pct)) 99.9% \(f(result.aggregatedEndToEndLatency999pct)) max \(f(result.aggregatedEndToEndLatencyMax))")
            if let json { try result.json().write(to: URL(fileURLWithPath: json)) }
        }
    }

    private func f(_ x: Double) -> String { String(format: "%.2f", x) }
}
