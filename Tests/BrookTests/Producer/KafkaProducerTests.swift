@testable import Brook
import BrookProtocol
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Testing

/// The producer against Brook's broker, in-process over TCP.
@Suite("KafkaProducer", .serialized, .timeLimit(.minutes(5)))
struct KafkaProducerTests {
    static func value(_ i: Int) -> String { "value-\(i)-" + String(repeating: "x", count: i % 50) }

    @Test("10k keyed records with headers, every codec: all read back, in order, once, on murmur2's partition",
          arguments: CompressionCodec.allCases)
    func keyedRecordsEveryCodec(_ codec: CompressionCodec) async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        let topic = "keyed-\(codec)"
        let partitions: Int32 = 4
        try await broker.createTopic(topic, partitions: partitions)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.compression = codec }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        let n = 10_000
        var ids: [UInt64: Int] = [:]
        for i in 0..<n {
            let record = ProducerRecord(
                topic: topic, key: "key-\(i % 977)", value: Self.value(i),
                headers: [RecordHeader(key: "index", value: ByteBuffer(string: "\(i)")), RecordHeader(key: "empty", value: nil)],
                timestamp: 1_700_000_000_000 + Int64(i))
            ids[try await producer.sendAsync(record)] = i
        }
        await producer.flush()
        let delivered = await reports.wait(for: n)
        #expect(delivered.count == n)
        var reported: [Int: RecordMetadata] = [:]
        for r in delivered {
            switch r.result {
            case .success(let md): reported[ids[r.id]!] = md
            case .failure(let e): Issue.record("record \(r.id) failed: \(e)")
            }
        }
        await producer.close()

        let read = try await broker.consumeAll(topic: topic, partitions: partitions)
        var seen = Set<Int>()
        for p in 0..<partitions {
            var last = -1
            for rec in read[p] ?? [] {
                let i = Int(rec.headers.first { $0.key == "index" }!.value!)!
                #expect(i > last, "partition \(p) out of order: \(i) after \(last)")
                last = i
                #expect(seen.insert(i).inserted, "duplicate record \(i)")
                #expect(rec.key == "key-\(i % 977)")
                #expect(rec.value == Self.value(i))
                #expect(rec.headers == [ReadBackHeader(key: "index", value: "\(i)"), ReadBackHeader(key: "empty", value: nil)])
                #expect(rec.timestamp == 1_700_000_000_000 + Int64(i))
                #expect(rec.codec == codec)
                #expect(rec.producerId >= 0, "idempotent batches carry the producer id")
                #expect(p == Murmur2.partition(key: Array("key-\(i % 977)".utf8), partitions: partitions))
                #expect(reported[i] == RecordMetadata(topic: topic, partition: p, offset: rec.offset, timestamp: rec.timestamp))
            }
        }
        #expect(seen.count == n)
    }

    @Test("send waits for the acknowledgement and returns partition, offset and timestamp")
    func sendReturnsMetadata() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("acked", partitions: 2)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker), logger: producerTestLogger)
        var offsets: [Int64] = []
        for i in 0..<20 {
            let md = try await producer.send(ProducerRecord(topic: "acked", partition: 1, key: [1, 2, 3], value: Array("v\(i)".utf8), timestamp: 42 + Int64(i)))
            #expect(md.topic == "acked")
            #expect(md.partition == 1)
            #expect(md.timestamp == 42 + Int64(i))
            offsets.append(md.offset)
        }
        #expect(offsets == Array(0..<20))
        // Concurrent sends, each waiting for its own acknowledgement.
        let results = try await withThrowingTaskGroup(of: RecordMetadata.self) { group in
            for i in 0..<200 {
                group.addTask { try await producer.send(ProducerRecord(topic: "acked", partition: 0, value: "c\(i)")) }
            }
            return try await group.reduce(into: [RecordMetadata]()) { $0.append($1) }
        }
        #expect(Set(results.map(\.offset)) == Set(0..<200))
        #expect(producer.producerIdentity != nil)
        // Unknown topics are auto-created by this broker (3 partitions by default).
        let md = try await producer.send(ProducerRecord(topic: "auto-created", key: "k", value: "v"))
        #expect(md.partition == Murmur2.partition(key: Array("k".utf8), partitions: 3))
        #expect(md.offset == 0)
        // An explicit partition outside the topic fails without reaching the broker.
        await #expect(throws: KafkaClientError.self) {
            try await producer.send(ProducerRecord(topic: "acked", partition: 7, value: "nope"))
        }
        await producer.close()
        await #expect(throws: KafkaClientError.self) {
            try await producer.send(ProducerRecord(topic: "acked", value: "after close"))
        }
    }

    @Test("keyless records stick to a partition for about a batch, then move on")
    func stickyPartitioning() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("sticky", partitions: 6)
        // Small batches: stickiness switches every ~4 KiB.
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.batchSize = 4096 }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        let n = 2000
        var order: [UInt64] = []
        for i in 0..<n {
            order.append(try await producer.sendAsync(ProducerRecord(topic: "sticky", value: String(repeating: "s", count: 100) + "\(i)")))
        }
        await producer.flush()
        let byId = Dictionary(uniqueKeysWithValues: await reports.wait(for: n).map { ($0.id, $0.partition) })
        let sequence = order.map { byId[$0]! }
        // Runs of the same partition: about 4096 / ~110 bytes = ~37 records each.
        var runs: [Int] = []
        var current = 1
        for k in 1..<sequence.count {
            if sequence[k] == sequence[k - 1] { current += 1 } else {
                runs.append(current)
                current = 1
            }
        }
        runs.append(current)
        #expect(Set(sequence).count > 1, "keyless records spread over partitions")
        #expect(runs.count < n / 10, "records stick to a partition: \(runs.count) runs")
        #expect(runs.dropLast().allSatisfy { $0 >= 20 }, "runs: \(runs.prefix(20))")
        await producer.close()

        // A large batch keeps a handful of small keyless records together.
        let p2 = try KafkaProducer(configuration: makeProducerConfig(broker), logger: producerTestLogger)
        var parts = Set<Int32>()
        for i in 0..<50 {
            parts.insert(try await p2.send(ProducerRecord(topic: "sticky", value: "small-\(i)")).partition)
        }
        #expect(parts.count == 1)
        await p2.close()
    }

    @Test("round-robin and custom partitioners")
    func otherPartitioners() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("rr", partitions: 3)
        let rr = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.partitioner = .roundRobin }, logger: producerTestLogger)
        var counts: [Int32: Int] = [:]
        for i in 0..<30 {
            counts[try await rr.send(ProducerRecord(topic: "rr", key: "same", value: "\(i)")).partition, default: 0] += 1
        }
        #expect(counts == [0: 10, 1: 10, 2: 10])
        await rr.close()

        let custom = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.partitioner = .custom { record, count in
                Int32(record.value!.readableBytes) % count
            }
        }, logger: producerTestLogger)
        #expect(try await custom.send(ProducerRecord(topic: "rr", value: "ab")).partition == 2)
        #expect(try await custom.send(ProducerRecord(topic: "rr", value: "abc")).partition == 0)
        await custom.close()
    }

    @Test("acks=0 and acks=1")
    func acksZeroAndOne() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("acks", partitions: 1)
        let zero = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.acks = .none }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(zero.deliveryReports)
        let md = try await zero.send(ProducerRecord(topic: "acks", value: "first"))
        #expect(md.offset == -1)
        for i in 0..<999 { try await zero.sendAsync(ProducerRecord(topic: "acks", key: "k", value: "r\(i)")) }
        await zero.flush()
        let got = await reports.wait(for: 999)
        #expect(got.count == 999)
        #expect(got.allSatisfy { (try? $0.result.get().offset) == -1 })
        await zero.close()
        // Without responses, wait for the broker to have them all.
        var read: [ReadBackRecord] = []
        for _ in 0..<100 {
            read = try await broker.consumeAll(topic: "acks", partitions: 1)[0] ?? []
            if read.count >= 1000 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(read.count == 1000)
        #expect(read.first?.value == "first")
        #expect(read.last?.value == "r998")
        #expect(read.allSatisfy { $0.producerId == -1 }, "acks=0 is not idempotent")

        let one = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.acks = .leader }, logger: producerTestLogger)
        let md1 = try await one.send(ProducerRecord(topic: "acks", value: "acks=1"))
        #expect(md1.offset == 1000)
        await one.close()
    }

    @Test("linger holds a batch back; flush sends it at once; close flushes")
    func flushAndClose() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("flush", partitions: 2)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.linger = .seconds(30) }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        for i in 0..<10 { try await producer.sendAsync(ProducerRecord(topic: "flush", key: "k\(i)", value: "v\(i)")) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(reports.count == 0, "linger.ms 30 s: nothing sent yet")
        let started = ContinuousClock.now
        await producer.flush()
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(await reports.wait(for: 10, timeout: .seconds(5)).count == 10, "flush returns after the records were acknowledged")
        for i in 0..<5 { try await producer.sendAsync(ProducerRecord(topic: "flush", value: "late\(i)")) }
        await producer.close()
        #expect(await reports.wait(for: 15, timeout: .seconds(5)).count == 15)
        #expect(reports.all.allSatisfy { (try? $0.result.get()) != nil })
        #expect(producer.isClosed)
        let read = try await broker.consumeAll(topic: "flush", partitions: 2)
        #expect(read.values.map(\.count).reduce(0, +) == 15)
        await producer.close()  // twice is fine
    }

    @Test("as a Service: runs until graceful shutdown, then flushes and closes")
    func serviceLifecycle() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) { $0.linger = .seconds(30) }, logger: producerTestLogger)
        let group = ServiceGroup(services: [producer], gracefulShutdownSignals: [], logger: producerTestLogger)
        let running = Task { try await group.run() }
        let reports = DeliveryReportCollector(producer.deliveryReports)
        for i in 0..<100 { try await producer.sendAsync(ProducerRecord(topic: "service", value: "s\(i)")) }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(producer.isClosed)
        #expect(await reports.wait(for: 100, timeout: .seconds(5)).count == 100)
        let read = try await broker.consumeAll(topic: "service", partitions: 3)
        #expect(read.values.map(\.count).reduce(0, +) == 100)
    }

    @Test("buffer.memory bounds un-acknowledged data: send suspends while the broker is down")
    func memoryBound() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("memory", partitions: 2)
        let limit = 64 * 1024
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.bufferMemory = limit
            $0.batchSize = 8 * 1024
        }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        _ = try await producer.send(ProducerRecord(topic: "memory", partition: 0, value: "warm-up"))
        await broker.stop()

        let n = 400
        let payload = String(repeating: "m", count: 1000)
        let appended = ManagedCounter()
        let sender = Task {
            for i in 0..<n {
                try await producer.sendAsync(ProducerRecord(topic: "memory", key: "k\(i % 10)", value: "\(i):" + payload))
                appended.increment()
            }
        }
        var peak = 0
        for _ in 0..<100 {
            peak = max(peak, producer.bufferedBytes)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(appended.value < n, "sendAsync suspends once buffer.memory is full (appended \(appended.value))")
        #expect(appended.value > 20)
        #expect(peak <= limit)
        #expect(peak > limit / 2)

        try await broker.start()
        while !sender.isCancelled, appended.value < n {
            peak = max(peak, producer.bufferedBytes)
            try await Task.sleep(for: .milliseconds(5))
        }
        try await sender.value
        await producer.flush()
        #expect(peak <= limit, "peak \(peak) > buffer.memory \(limit)")
        #expect(producer.bufferedBytes == 0)
        let got = await reports.wait(for: n)
        #expect(got.count == n)
        #expect(got.allSatisfy { (try? $0.result.get()) != nil })
        await producer.close()
        let read = try await broker.consumeAll(topic: "memory", partitions: 2)
        let values = read.values.flatMap { $0 }.compactMap { $0.value.flatMap { Int($0.split(separator: ":").first ?? "") } }
        #expect(values.count == n)
        #expect(Set(values).count == n, "no duplicates")
        for (_, recs) in read {
            let idx = recs.compactMap { $0.value.flatMap { Int($0.split(separator: ":").first ?? "") } }
            #expect(idx == idx.sorted(), "order per partition")
        }
    }

    @Test("an open batch holds the memory it uses, not batch.size: 64 open batches of 1 MiB fit in 2 MiB, and shrink back after a burst")
    func openBatchesReserveOnUse() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("reserve", partitions: 64)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.bufferMemory = 2 * 1024 * 1024
            $0.batchSize = 1024 * 1024
            $0.linger = .seconds(30)
        }, logger: producerTestLogger)
        // One small record per partition: each opens a batch that lingers. Had each reserved
        // batch.size, the third would wait for memory until the linger ended.
        let opened = Task {
            for p in Int32(0)..<64 {
                _ = try await producer.sendAsync(ProducerRecord(topic: "reserve", partition: p, value: "r\(p)"))
            }
        }
        let all = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await opened.value; return true }
            group.addTask { try await Task.sleep(for: .seconds(10)); return false }
            defer { group.cancelAll() }
            return try await group.next()!
        }
        #expect(all, "64 open batches were accepted without waiting for memory")
        #expect(producer.bufferedBytes <= 64 * ProducerEngineState.firstReservation)
        // One partition's batch grows while records come, up to batch.size.
        let payload = String(repeating: "g", count: 1000)
        for i in 0..<300 {
            _ = try await producer.sendAsync(ProducerRecord(topic: "reserve", partition: 0, value: "\(i):" + payload))
        }
        let buffered = producer.bufferedBytes
        #expect(buffered > 300 * 1000 && buffered <= 63 * ProducerEngineState.firstReservation + 1024 * 1024)
        await producer.flush()
        #expect(producer.bufferedBytes == 0)
        // The next batch starts at the size the last one reached; after a small one, small again.
        _ = try await producer.sendAsync(ProducerRecord(topic: "reserve", partition: 0, value: "after"))
        #expect(producer.bufferedBytes >= 256 * 1024)
        await producer.flush()
        _ = try await producer.sendAsync(ProducerRecord(topic: "reserve", partition: 0, value: "quiet"))
        #expect(producer.bufferedBytes <= ProducerEngineState.firstReservation)
        await producer.flush()
        await producer.close()
        let read = try await broker.consumeAll(topic: "reserve", partitions: 64)
        #expect(read.values.map(\.count).reduce(0, +) == 366)
    }

    @Test("broker restart mid-stream: idempotent retries lose and duplicate nothing, order kept")
    func brokerRestart() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        let partitions: Int32 = 3
        try await broker.createTopic("restart", partitions: partitions)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.batchSize = 4096
            $0.linger = .milliseconds(1)
        }, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        let n = 30_000
        let appended = ManagedCounter()
        let stops = [n / 3, 2 * n / 3]
        let brokerDown = ManagedCounter()
        let sender = Task {
            for i in 0..<n {
                // At each stop point the sender parks until the broker is down, so records are
                // sent while it is away whatever the machine's speed.
                if let k = stops.firstIndex(of: i) {
                    while brokerDown.value <= k { try await Task.sleep(for: .milliseconds(1)) }
                }
                try await producer.sendAsync(ProducerRecord(topic: "restart", key: "key-\(i % 101)", value: "\(i)"))
                appended.increment()
                if i % 100 == 99 { try await Task.sleep(for: .milliseconds(1)) }
            }
        }
        func interruptions() -> Int {
            let s = producer.engine.stats
            return s.transportFailures + s.retries + s.connectFailures
        }
        // Stop the broker twice mid-stream; it comes back only after the producer has seen it gone
        // (a failed request, a retry or a refused connection), so each stop interrupts the stream.
        for stopAt in stops {
            while appended.value < stopAt { try await Task.sleep(for: .milliseconds(1)) }
            let before = interruptions()
            await broker.stop()
            brokerDown.increment()
            let deadline = ContinuousClock.now + .seconds(60)
            while interruptions() == before && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(interruptions() > before, "the producer noticed the broker was down")
            try await broker.start()
        }
        try await sender.value
        await producer.flush()
        let got = await reports.wait(for: n)
        #expect(got.count == n)
        let failures = got.filter { (try? $0.result.get()) == nil }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        let stats = producer.engine.stats
        #expect(stats.identities == 1, "the producer id survives a broker restart")
        await producer.close()

        let read = try await broker.consumeAll(topic: "restart", partitions: partitions)
        var seen = Set<Int>()
        for p in 0..<partitions {
            var last = -1
            for rec in read[p] ?? [] {
                let i = Int(rec.value!)!
                #expect(i > last, "partition \(p): \(i) after \(last)")
                last = i
                #expect(seen.insert(i).inserted, "duplicate \(i)")
                #expect(p == Murmur2.partition(key: Array("key-\(i % 101)".utf8), partitions: partitions))
            }
        }
        #expect(seen.count == n, "lost \(n - seen.count) records")
        // Reported offsets are where the records are.
        var offsets: [Int32: Set<Int64>] = [:]
        for r in got { if case .success(let md) = r.result { offsets[md.partition, default: []].insert(md.offset) } }
        for p in 0..<partitions {
            #expect(offsets[p] ?? [] == Set((read[p] ?? []).map(\.offset)))
        }
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// Throughput probe (not a timed test): `BROOK_PRODUCER_BENCH=1 swift test --filter ProducerThroughput`.
@Suite("ProducerThroughput", .serialized, .enabled(if: ProcessInfo.processInfo.environment["BROOK_PRODUCER_BENCH"] != nil))
struct ProducerThroughput {
    @Test("100-byte records, acks=all, idempotent", arguments: [CompressionCodec.none, .lz4])
    func throughput(_ codec: CompressionCodec) async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("bench", partitions: 6)
        let env = ProcessInfo.processInfo.environment
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.compression = codec
            if let m = env["BROOK_PRODUCER_BENCH_MEMORY"].flatMap(Int.init) { $0.bufferMemory = m }
            if let b = env["BROOK_PRODUCER_BENCH_BATCH"].flatMap(Int.init) { $0.batchSize = b }
        }, logger: producerTestLogger)
        let n = Int(env["BROOK_PRODUCER_BENCH_N"] ?? "") ?? 500_000
        let value = ByteBuffer(repeating: 0x61, count: 100)
        _ = try await producer.send(ProducerRecord(topic: "bench", value: value))
        let start = ContinuousClock.now
        for _ in 0..<n {
            try await producer.sendAsync(ProducerRecord(topic: "bench", value: value))
        }
        let appended = ContinuousClock.now - start
        await producer.flush()
        let total = ContinuousClock.now - start
        let secs = Double(total.components.seconds) + Double(total.components.attoseconds) / 1e18
        print("producer \(codec): \(n) records in \(total) (append \(appended)): \(Int(Double(n) / secs)) records/s, \(Int(Double(n * 100) / secs / 1e6)) MB/s")
        await producer.close()
    }
}

extension ProducerThroughput {
    @Test("append path alone (broker stopped, nothing sent)")
    func appendOnly() async throws {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("bench", partitions: 6)
        let producer = try KafkaProducer(configuration: makeProducerConfig(broker) {
            $0.bufferMemory = 1 << 30
            $0.linger = .seconds(3600)
        }, logger: producerTestLogger)
        try await producer.sendAsync(ProducerRecord(topic: "bench", value: "warm-up"))
        await producer.flush()
        await broker.stop()
        let n = 1_000_000
        let value = ByteBuffer(repeating: 0x61, count: 100)
        func cpuNanos() -> Int64 {
            var ts = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        }
        let clock = ContinuousClock()
        var cpu = cpuNanos()
        let elapsed = try await clock.measure {
            for _ in 0..<n { try await producer.sendAsync(ProducerRecord(topic: "bench", value: value)) }
        }
        let keylessCPU = cpuNanos() - cpu
        let key = ByteBuffer(string: "some-key-123")
        cpu = cpuNanos()
        let keyed = try await clock.measure {
            for _ in 0..<n { try await producer.sendAsync(ProducerRecord(topic: "bench", key: key, value: value)) }
        }
        let keyedCPU = cpuNanos() - cpu
        print("append only: keyless \(elapsed / n) per record (CPU \(keylessCPU / Int64(n)) ns), keyed \(keyed / n) per record (CPU \(keyedCPU / Int64(n)) ns)")
        await producer.engine.stop(error: .shutdown)
    }
}
