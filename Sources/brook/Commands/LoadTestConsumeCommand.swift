import ArgumentParser
import Brook
import BrookOps
import Foundation

/// `brook loadtest consume`: kafka-consumer-perf-test's flags and CSV columns.
struct LoadTestConsume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume", abstract: "kafka-consumer-perf-test: read records as a group member, print its CSV.")

    @OptionGroup var client: ClientOptions
    @Option(help: "Topic to read.") var topic: String
    @Option(help: "Records to read.") var messages: Int
    @Option(help: "Consumer group (several processes with one group share the partitions).") var group: String = "perf-consumer-\(Int.random(in: 10000...99999))"
    @Flag(name: .customLong("from-latest"), help: "Start at the end of the log instead of the beginning (new groups).") var fromLatest = false
    @Option(name: .customLong("consumer.config"), help: "Java properties file of consumer settings.") var consumerConfig: String?
    @Option(help: "Give up after this many milliseconds without a record.") var timeout: Int = 10000
    @Flag(name: .customLong("show-detailed-stats"), help: "A row per --reporting-interval instead of one for the run.") var showDetailedStats = false
    @Option(name: .customLong("reporting-interval"), help: "Milliseconds between detailed rows.") var reportingInterval: Int = 5000
    @Flag(name: .customLong("hide-header"), help: "Omit the CSV header.") var hideHeader = false

    func run() async throws {
        try await runClient {
            guard messages > 0 else { throw ValidationError("--messages must be positive") }
            var cc = ConsumerConfiguration(client: try client.configuration())
            cc.groupId = group
            cc.offsets.autoOffsetReset = fromLatest ? .latest : .earliest
            cc.fetch.allowAutoCreateTopics = false
            if let consumerConfig {
                let props = ClientProperties.parseFile(try String(contentsOfFile: consumerConfig, encoding: .utf8))
                if let servers = try ClientProperties.apply(consumer: props, to: &cc) {
                    cc.client.bootstrapServers = try BrokerAddress.list(servers)
                }
            }
            let consumer = try KafkaConsumer(configuration: cc, logger: client.logger)
            try consumer.subscribe(topics: [topic])
            let test = ConsumerLoadTest(topic: topic, messages: messages, idleTimeout: .milliseconds(timeout),
                                        detailedInterval: showDetailedStats ? .milliseconds(reportingInterval) : nil)
            if !hideHeader { print(ConsumerPerfReport.header(detailed: showDetailedStats)) }
            let result = try await test.run(consumer: consumer) { print($0) }
            if !showDetailedStats { print(ConsumerPerfReport.row(result.summary)) }
            if result.timedOut {
                FileHandle.standardError.write(Data("WARNING: Exiting before consuming the expected number of messages: timeout (\(timeout) ms) exceeded. \(result.records) of \(messages) read.\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}
