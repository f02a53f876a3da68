import ArgumentParser
import Brook
import BrookProtocol
import Foundation
import NIOCore

/// `brook produce`: one record per stdin line, optionally `KEY<sep>VALUE`.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "produce", abstract: "Produce one record per line of standard input.")

    @OptionGroup var client: ClientOptions
    @Option(help: "Topic to produce to.") var topic: String
    @Option(name: .customLong("key-separator"), help: "Split each line into key and value at the first SEP.") var keySeparator: String?
    @Option(help: "all, 1 or 0.") var acks: String = "all"
    @Option(help: "none, gzip, snappy, lz4 or zstd.") var compression: String = "none"
    @Option(help: "Write every record to this partition.") var partition: Int32?
    @Option(name: .customLong("linger-ms")) var lingerMs: Int = 5
    @Option(name: .customLong("max-in-flight"), help: "Produce requests in flight per broker (1-5).") var maxInFlight: Int = 5

    func run() async throws {
        try await runClient {
            var pc = ProducerConfiguration(client: try client.configuration())
            switch acks {
            case "all", "-1": pc.acks = .all
            case "1": pc.acks = .leader
            case "0": pc.acks = .none
            default: throw ValidationError("--acks must be all, 1 or 0")
            }
            guard let codec = CompressionCodec.allCases.first(where: { "\($0)" == compression.lowercased() }) ??
                    (compression.lowercased() == "none" ? CompressionCodec.none : nil) else {
                throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
            }
            pc.compression = codec
            pc.linger = .milliseconds(lingerMs)
            pc.maxInFlightRequestsPerConnection = maxInFlight
            if pc.acks != .all { pc.enableIdempotence = false }
            let producer = try KafkaProducer(configuration: pc, logger: client.logger)
            // Fail fast with one line when the cluster is unreachable or the topic is missing and
            // the broker will not create it. Ask for auto-creation in that Metadata request, as
            // Java's and librdkafka's producers (and Brook's) do.
            let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
            do {
                _ = try await admin.cluster.metadata(for: topic, allowAutoCreate: true)
            } catch let error as KafkaClientError where error.errorCode == .leaderNotAvailable {
                // Being created (Kafka answers so right after auto-creating): the producer waits for it.
            }
            await admin.close()
            let failures = Counter()
            let reports = Task {
                for await report in producer.deliveryReports {
                    if case .failure(let e) = report.result {
                        failures.increment()
                        FileHandle.standardError.write(Data("error: record \(report.id) to \(report.topic): \(e)\n".utf8))
                    }
                }
            }
            var count = 0
            while let line = readLine(strippingNewline: true) {
                var key: String?
                var value = line
                if let sep = keySeparator, let r = line.range(of: sep) {
                    key = String(line[..<r.lowerBound])
                    value = String(line[r.upperBound...])
                }
                _ = try await producer.sendAsync(ProducerRecord(topic: topic, partition: partition, key: key, value: value))
                count += 1
            }
            await producer.close()
            reports.cancel()
            if failures.value > 0 { throw ExitCode(1) }
            FileHandle.standardError.write(Data("produced \(count) records to \(topic)\n".utf8))
        }
    }
}

/// A tiny thread-safe counter for delivery failures.
final class Counter: @unchecked Sendable {
    // Safe: every access goes through `lock`.
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
