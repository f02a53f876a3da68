import Brook
import Foundation
import NIOCore
import Synchronization

/// `brook loadtest e2e`: producers at a target rate and a consumer group reading along;
/// publish latency (send → acknowledgement) and end-to-end latency (the producer's stamp →
/// handed to the application) per interval and aggregated, and the backlog over time.
///
/// Each record's value starts with the wall-clock microseconds it was sent at (8 bytes,
/// big-endian): the record timestamp has only millisecond resolution, too coarse for a broker
/// a few hundred microseconds away. Records stamped before the run started (an earlier run's,
/// when a topic is reused) are skipped.
public struct EndToEndLoadTest: Sendable {
    /// The topic produced to and consumed from.
    public var topic: String
    /// Value bytes per record (at least 8, for the stamp).
    public var recordSize: Int
    /// Records per second over all producers.
    public var rate: Double
    /// How long the producers run.
    public var duration: Duration
    /// Reporting interval.
    public var interval: Duration
    /// How keys are chosen.
    public var keys: KeyDistribution
    /// How long to wait after producing for the consumers to catch up.
    public var drainTimeout: Duration = .seconds(30)
    /// How long to wait for the consumer group to own every partition before producing.
    public var joinTimeout: Duration = .seconds(60)

    /// A run at `rate` records/s for `duration`.
    public init(topic: String, recordSize: Int, rate: Double, duration: Duration, interval: Duration = .seconds(10), keys: KeyDistribution = .none) {
        self.topic = topic
        self.recordSize = max(recordSize, 8)
        self.rate = rate
        self.duration = duration
        self.interval = interval
        self.keys = keys
    }

    /// Runs with these producers (closed at the end) and consumers (subscribed to the topic in
    /// one group, with `auto.offset.reset=earliest`; closed at the end).
    public func run(producers: [KafkaProducer], consumers: [KafkaConsumer], workload: String, partitions: Int,
                    onInterval: @escaping @Sendable (E2EInterval) -> Void = { _ in }) async throws -> BenchmarkResult {
        let shared = E2EShared()
        let acc = shared
        let stop = shared
        let runStart = ProcessStats.wallMicros()

        let consumerTasks = consumers.map { consumer in
            Task {
                var lat: [Int64] = []
                for try await batch in consumer.batches {
                    let now = ProcessStats.wallMicros()
                    lat.removeAll(keepingCapacity: true)
                    for r in batch.records {
                        guard let v = r.value, let stamp = v.getInteger(at: v.readerIndex, as: Int64.self), stamp >= runStart else { continue }
                        lat.append(now - stamp)
                    }
                    if !lat.isEmpty { acc.state.withLock { a in for l in lat { a.consumed(latencyMicros: l) } } }
                }
            }
        }

        // Produce only once the group owns every partition, as OpenMessaging Benchmark waits
        // for its consumers: a join (and the broker's initial rebalance delay) would otherwise
        // read as seconds of end-to-end latency.
        let joinDeadline = ContinuousClock.now + joinTimeout
        while Set(consumers.flatMap { $0.assignment() }).count < partitions {
            if ContinuousClock.now > joinDeadline {
                for c in consumers { await c.close() }
                throw LoadTestError.invalid("the consumer group was not assigned all \(partitions) partitions within \(joinTimeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }

        var result = BenchmarkResult(workload: workload, messageSize: recordSize, partitions: partitions,
                                     producersPerTopic: producers.count, consumersPerTopic: consumers.count)
        let ticker = Task { () -> [E2EInterval] in
            var out: [E2EInterval] = []
            var last = ProcessStats.monotonicNanos()
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let now = ProcessStats.monotonicNanos()
                let i = acc.state.withLock { $0.closeInterval(seconds: Double(now - last) / 1e9) }
                last = now
                // The stretch between the last interval and the end of the run, when idle, is
                // not an interval of the run.
                if Task.isCancelled, i.publishRate == 0, i.consumeRate == 0 { break }
                out.append(i)
                onInterval(i)
            }
            return out
        }

        let perProducer = ThroughputThrottle(recordsPerSecond: rate / Double(max(producers.count, 1)))
        let size = recordSize
        let producerTasks = producers.enumerated().map { (index, producer) in
            Task {
                let times = SendTimes(inFlight: 2 * (producer.configuration.bufferMemory / size + producer.configuration.maxBufferedDeliveryReports))
                let reports = producer.deliveryReports
                // Warm-up record stamped 0 (consumers skip it); its id gives the ids of the
                // measured records, numbered consecutively by the producer, so each send time
                // is stored before its send.
                var zero = ByteBufferAllocator().buffer(capacity: size)
                zero.writeRepeatingByte(0, count: size)
                let warmId = try await producer.sendAsync(ProducerRecord(topic: topic, value: zero))
                var expected = warmId &+ 1
                let reader = Task {
                    var lat: [Int64] = []
                    var failed = 0
                    for await batch in reports.batches {
                        let now = ProcessStats.monotonicNanos()
                        lat.removeAll(keepingCapacity: true)
                        for r in batch where r.id > warmId {
                            if case .success = r.result { lat.append((now - times.get(r.id)) / 1000) } else { failed += 1 }
                        }
                        let f = failed
                        failed = 0
                        acc.state.withLock { a in
                            for l in lat { a.published(latencyMicros: l) }
                            for _ in 0..<f { a.publishFailed() }
                        }
                    }
                }
                var keySeq = KeySequence(keys, seed: UInt64(index + 1))
                let start = ProcessStats.monotonicNanos()
                var sent = 0
                while !stop.stopped.load(ordering: .relaxed) {
                    var now = ProcessStats.monotonicNanos()
                    if let wait = perProducer.delay(beforeRecord: sent, elapsed: .nanoseconds(now - start)) {
                        try await Task.sleep(for: wait)
                        now = ProcessStats.monotonicNanos()
                    }
                    var value = ByteBufferAllocator().buffer(capacity: size)
                    value.writeInteger(ProcessStats.wallMicros())
                    value.writeRepeatingByte(UInt8(ascii: "x"), count: size - 8)
                    let key = keySeq.next().map { ByteBuffer(bytes: KeySequence.keyBytes($0)) }
                    times.set(expected, now)
                    let id = try await producer.sendAsync(ProducerRecord(topic: topic, key: key, value: value))
                    guard id == expected else { throw LoadTestError.invalid("the producer numbered a record \(id), expected \(expected)") }
                    expected &+= 1
                    sent += 1
                }
                await producer.flush()
                await producer.close()
                await reader.value
            }
        }

        try await Task.sleep(for: duration)
        stop.stopped.store(true, ordering: .relaxed)
        for t in producerTasks { try await t.value }
        // Let the consumers catch up, then close them (which ends their iterations).
        let deadline = ContinuousClock.now + drainTimeout
        while acc.state.withLock({ $0.backlog }) > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        for c in consumers { await c.close() }
        for t in consumerTasks { _ = try? await t.value }
        ticker.cancel()
        for i in await ticker.value { result.append(i) }
        let (p, e) = acc.state.withLock { (LatencyPercentiles($0.aggregatedPublish), LatencyPercentiles($0.aggregatedE2E)) }
        result.setAggregated(publish: p, endToEnd: e)
        return result
    }
}

/// The accumulator and stop flag the run's tasks share.
final class E2EShared: Sendable {
    let state = Mutex(E2EAccumulator())
    let stopped = Atomic<Bool>(false)
}
