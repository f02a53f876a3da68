import ArgumentParser
import Brook
import BrookProtocol
import Foundation
import NIOCore

/// `brook perf produce|consume`: load tests in the spirit of kafka-producer-perf-test and
/// kafka-consumer-perf-test. Each prints a human summary on stderr and one machine-readable
/// `RESULT key=value ...` line on stdout (scripts/bench-client.sh parses it).
struct PerfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perf", abstract: "Measure producer and consumer throughput.",
        subcommands: [Produce.self, Consume.self])

    struct Produce: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Produce fixed-size records as fast as possible and report msgs/s and MB/s.")

        @OptionGroup var client: ClientOptions
        @Option(help: "Topic to produce to (it must exist, or the broker must auto-create it).") var topic: String
        @Option(help: "Number of records to send.") var records: Int = 1_000_000
        @Option(name: .customLong("record-size"), help: "Value size of each record in bytes.") var recordSize: Int = 100
        @Option(name: .customLong("key-size"), help: "Key size in bytes (0: no key).") var keySize: Int = 0
        @Option(help: "all, 1 or 0.") var acks: String = "all"
        @Option(name: .customLong("linger-ms")) var lingerMs: Int = 5
        @Option(name: .customLong("batch-size"), help: "batch.size in bytes (default: the producer's).") var batchSize: Int?
        @Option(name: .customLong("buffer-memory"), help: "buffer.memory in bytes (default: the producer's).") var bufferMemory: Int?
        @Option(help: "none, gzip, snappy, lz4 or zstd.") var compression: String = "none"
        @Option(help: "enable.idempotence (true or false; forced off unless --acks all).") var idempotence: Bool = true
        @Option(help: "Write every record to this partition.") var partition: Int32?
        @Option(name: .customLong("delivery-reports"), help: "Read a delivery report per record (true) or only check the log end offsets after the flush (false).") var deliveryReports: Bool = true

        func run() async throws {
            try await runClient {
                guard records > 0, recordSize >= 0, keySize >= 0 else {
                    throw ValidationError("--records must be positive, sizes non-negative")
                }
                var pc = ProducerConfiguration(client: try client.configuration())
                pc.acks = try parseAcks(acks)
                pc.compression = try parseCodec(compression)
                pc.linger = .milliseconds(lingerMs)
                if let batchSize { pc.batchSize = batchSize }
                if let bufferMemory { pc.bufferMemory = bufferMemory }
                pc.enableIdempotence = idempotence && pc.acks == .all
                let producer = try KafkaProducer(configuration: pc, logger: client.logger)

                // One payload shared by every record: ByteBuffer is copy-on-write, so records
                // reference it and the producer copies it once, into the batch.
                var value = ByteBufferAllocator().buffer(capacity: recordSize)
                for i in 0..<recordSize { value.writeInteger(UInt8(ascii: "a") + UInt8(i % 26)) }
                var key: ByteBuffer?
                if keySize > 0 {
                    var k = ByteBufferAllocator().buffer(capacity: keySize)
                    for i in 0..<keySize { k.writeInteger(UInt8(ascii: "A") + UInt8(i % 26)) }
                    key = k
                }
                let record = ProducerRecord(topic: topic, partition: partition, key: key, value: value)

                // Warm-up: metadata, connection and producer id, before the clock starts.
                _ = try await producer.send(record)

                let admin = KafkaAdmin(config: pc.client, logger: client.logger)
                let endsBefore = try await admin.listOffsets(topic: topic, spec: .latest)
                let reader: Task<DeliveryTally, Never>?
                if deliveryReports {
                    let reports = producer.deliveryReports
                    // Counted in the reading task and handed over at the end (a lock per report
                    // would be the benchmark's cost, not the producer's).
                    reader = Task {
                        var tally = DeliveryTally()
                        for await report in reports {
                            if case .failure(let e) = report.result { tally.fail(e) } else { tally.delivered += 1 }
                        }
                        return tally
                    }
                } else {
                    reader = nil
                }
                let clock = ContinuousClock()
                let cpu0 = processCPUSeconds()
                let start = clock.now
                for _ in 0..<records {
                    try await producer.sendAsync(record)
                }
                await producer.flush()
                let elapsed = clock.now - start
                let cpu = processCPUSeconds() - cpu0
                await producer.close()
                let tally = await reader?.value ?? DeliveryTally()
                // The log end offsets must have moved by exactly the records sent (idempotence:
                // no loss, no duplicates).
                let endsAfter = try await admin.listOffsets(topic: topic, spec: .latest)
                await admin.close()
                let written = endsAfter.reduce(0) { $0 + Int($1.value - (endsBefore[$1.key] ?? 0)) }
                var (delivered, failed, firstError) = (tally.delivered, tally.failed, tally.firstError)
                if !deliveryReports { delivered = written }
                if written != records {
                    FileHandle.standardError.write(Data("error: the log end offsets moved by \(written), not \(records)\n".utf8))
                }
                let seconds = elapsed.seconds
                let bytes = Double(delivered) * Double(recordSize)
                let msgs = seconds > 0 ? Double(delivered) / seconds : 0
                let mb = seconds > 0 ? bytes / seconds / 1e6 : 0
                printSummary(
                    "\(delivered) records sent, \(fmt(msgs, 1)) records/sec (\(fmt(mb, 2)) MB/sec), \(failed) failed, peak RSS \(peakRSSKiB() / 1024) MiB",
                    result: "records=\(delivered) bytes=\(Int(bytes)) seconds=\(fmt(seconds, 3)) msgs_per_s=\(fmt(msgs, 0)) mb_per_s=\(fmt(mb, 1)) failed=\(failed) log_delta=\(written) client_cpu_s=\(fmt(cpu, 3)) peak_rss_kib=\(peakRSSKiB()) size=\(recordSize) acks=\(acks) linger_ms=\(lingerMs) compression=\(compression) idempotence=\(pc.enableIdempotence) delivery_reports=\(deliveryReports)")
                if let firstError { FileHandle.standardError.write(Data("first failure: \(firstError)\n".utf8)) }
                if failed > 0 || delivered != records || written != records { throw ExitCode(1) }
            }
        }
    }

    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read a topic from the beginning as fast as possible and report msgs/s and MB/s.")

        @OptionGroup var client: ClientOptions
        @Option(help: "Topic to read.") var topic: String
        @Option(help: "Stop after this many records.") var records: Int
        @Option(name: .customLong("max-prefetch-bytes"), help: "Bound of fetched, not yet consumed data (default: the consumer's).") var maxPrefetchBytes: Int?
        @Option(name: .customLong("max-partition-bytes"), help: "Per-partition bytes one fetch asks for (default: the consumer's).") var maxPartitionBytes: Int32?
        @Flag(help: "Iterate per-partition batches instead of single records.") var batches = false
        @Option(name: .customLong("timeout-s"), help: "Give up after this many seconds without reaching --records.") var timeoutS: Int = 120

        func run() async throws {
            try await runClient {
                guard records > 0 else { throw ValidationError("--records must be positive") }
                let cfg = try client.configuration()
                let admin = KafkaAdmin(config: cfg, logger: client.logger)
                let meta = try await admin.describeTopic(topic)
                await admin.close()
                var cc = ConsumerConfiguration(client: cfg)
                cc.offsets.autoOffsetReset = .earliest
                cc.fetch.allowAutoCreateTopics = false
                if let maxPrefetchBytes { cc.fetch.maxPrefetchBytes = maxPrefetchBytes }
                if let maxPartitionBytes { cc.fetch.maxPartitionBytes = maxPartitionBytes }
                let consumer = try KafkaConsumer(configuration: cc, logger: client.logger)
                let parts = meta.partitions.map { TopicPartition(topic: topic, partition: $0.id) }
                try consumer.assign(parts)
                try consumer.seekToBeginning(parts)

                let target = records
                let clock = ContinuousClock()
                let watchdog = Task {
                    try await Task.sleep(for: .seconds(timeoutS))
                    await consumer.close()
                }
                var seen = 0
                var bytes = 0
                // Not an Optional<Instant>: checking one per record goes through the resilient
                // type's value witnesses, a few percent of the loop.
                var start = clock.now
                var started = false
                var cpu0 = 0.0
                if batches {
                    for try await batch in consumer.batches {
                        if !started { started = true; start = clock.now; cpu0 = processCPUSeconds() }
                        for r in batch.records {
                            bytes &+= r.value?.readableBytes ?? 0
                        }
                        seen += batch.records.count
                        if seen >= target { break }
                    }
                } else {
                    for try await r in consumer.messages {
                        if !started { started = true; start = clock.now; cpu0 = processCPUSeconds() }
                        bytes &+= r.value?.readableBytes ?? 0
                        seen += 1
                        if seen >= target { break }
                    }
                }
                let end = clock.now
                let cpu = processCPUSeconds() - cpu0
                watchdog.cancel()
                await consumer.close()
                let seconds = started ? (end - start).seconds : 0
                let msgs = seconds > 0 ? Double(seen) / seconds : 0
                let mb = seconds > 0 ? Double(bytes) / seconds / 1e6 : 0
                printSummary(
                    "\(seen) records read, \(fmt(msgs, 1)) records/sec (\(fmt(mb, 2)) MB/sec), peak RSS \(peakRSSKiB() / 1024) MiB",
                    result: "records=\(seen) bytes=\(bytes) seconds=\(fmt(seconds, 3)) msgs_per_s=\(fmt(msgs, 0)) mb_per_s=\(fmt(mb, 1)) client_cpu_s=\(fmt(cpu, 3)) peak_rss_kib=\(peakRSSKiB())")
                if seen < target {
                    FileHandle.standardError.write(Data("error: only \(seen) of \(target) records within \(timeoutS) s\n".utf8))
                    throw ExitCode(1)
                }
            }
        }
    }
}

// MARK: - helpers

private func parseAcks(_ s: String) throws -> ProducerConfiguration.Acks {
    switch s {
    case "all", "-1": return .all
    case "1": return .leader
    case "0": return .none
    default: throw ValidationError("--acks must be all, 1 or 0")
    }
}

private func parseCodec(_ s: String) throws -> CompressionCodec {
    if s.lowercased() == "none" { return .none }
    guard let codec = CompressionCodec.allCases.first(where: { "\($0)" == s.lowercased() }) else {
        throw ValidationError("--compression must be none, gzip, snappy, lz4 or zstd")
    }
    return codec
}

private func printSummary(_ human: String, result: String) {
    FileHandle.standardError.write(Data((human + "\n").utf8))
    print("RESULT " + result)
}

private func fmt(_ x: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", x) }

#if canImport(Glibc)
private let RUSAGE_SELF_WHO = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
private let RUSAGE_SELF_WHO = RUSAGE_SELF
#endif

/// utime + stime of this process.
private func processCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF_WHO, &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
        + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

/// Peak resident set (VmHWM) of this process in KiB, 0 where /proc is unavailable.
private func peakRSSKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
    return 0
}

/// Delivery outcomes counted by the task reading `deliveryReports`.
private struct DeliveryTally: Sendable {
    var delivered = 0
    var failed = 0
    var firstError: KafkaClientError?

    mutating func fail(_ e: KafkaClientError) {
        failed += 1
        if firstError == nil { firstError = e }
    }
}
