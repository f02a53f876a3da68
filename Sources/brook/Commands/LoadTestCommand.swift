import ArgumentParser
import Brook
import BrookOps
import Foundation

/// `brook loadtest produce|consume|e2e|sweep`: kafka-producer-perf-test and
/// kafka-consumer-perf-test with their flags and output, end-to-end latency with OpenMessaging
/// Benchmark's result JSON, and sweeps over client and pipeline settings. The logic lives in
/// BrookOps/Load; these commands parse flags and print.
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest", abstract: "Load tests: perf-test compatible produce/consume, end-to-end latency, settings sweeps.",
        subcommands: [Produce.self, LoadTestConsume.self, LoadTestE2E.self, LoadTestSweep.self])

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "kafka-producer-perf-test: produce records, print a line every 5 s and percentiles at the end.")

        @OptionGroup var client: ClientOptions
        @Option(help: "Topic to produce to (auto-created when the broker allows it).") var topic: String
        @Option(name: .customLong("num-records"), help: "Number of records to send.") var numRecords: Int
        @Option(name: .customLong("record-size"), help: "Value size in bytes.") var recordSize: Int = 100
        @Option(parsing: .unconditional, help: "Records/s to aim for; -1: as fast as possible.") var throughput: Double = -1
        @Option(name: .customLong("producer-props"), parsing: .upToNextOption, help: "Producer properties k=v (Java names).") var producerProps: [String] = []
        @Option(name: .customLong("producer.config"), help: "Java properties file of producer settings.") var producerConfig: String?
        @Option(name: .customLong("key-distribution"), help: "none, round-robin, random or zipf.") var keyDistribution: String = "none"
        @Option(help: "Number of distinct keys (with --key-distribution).") var keys: Int = 1000
        @Option(name: .customLong("zipf-exponent"), help: "Zipf exponent s (key k drawn ∝ 1/k^s).") var zipfExponent: Double = 1.0
        @Option(help: "Write every record to this partition.") var partition: Int32?

        func run() async throws {
            try await runClient {
                var pc = ProducerConfiguration(client: try client.configuration())
                // perf-test defaults are the Java producer's; Brook's own defaults apply otherwise.
                var props: [(String, String)] = []
                if let producerConfig {
                    props += ClientProperties.parseFile(try String(contentsOfFile: producerConfig, encoding: .utf8))
                }
                props += try ClientProperties.parsePairs(producerProps)
                if let servers = try ClientProperties.apply(producer: props, to: &pc) {
                    pc.client.bootstrapServers = try BrokerAddress.list(servers)
                }
                let test = ProducerLoadTest(
                    topic: topic, numRecords: numRecords, recordSize: recordSize, throttle: ThroughputThrottle(throughputFlag: throughput),
                    keys: try KeyDistribution.parse(keyDistribution, keys: keys, exponent: zipfExponent), partition: partition)
                let producer = try KafkaProducer(configuration: pc, logger: client.logger)
                let result = try await test.run(producer: producer) { print($0) }
                await producer.close()
                print(result.totalLine)
                if let e = result.firstError {
                    FileHandle.standardError.write(Data("error: \(result.stats.failed) records failed; first: \(e)\n".utf8))
                    throw ExitCode(1)
                }
            }
        }
    }
}

extension LoadTestError {
    /// A load-test error as the one-line failure the CLI prints.
    var failure: CommandFailure { CommandFailure(description) }
}
