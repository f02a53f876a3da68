import Brook
import Foundation
import NIOCore

/// `brook loadtest produce`: kafka-producer-perf-test on Brook's producer. Sends
/// `numRecords` records of `recordSize` bytes (keys from a ``KeyDistribution``), paced by a
/// ``ThroughputThrottle``, and measures every record's send → acknowledgement latency.
///
/// The sending loop is `brook perf produce`'s plus a clock read and a store per record, so its
/// throughput stays within a few percent of it (scripts/bench-loadtest.sh measures that).
public struct ProducerLoadTest: Sendable {
    /// The topic records go to.
    public var topic: String
    /// Records to send (`--num-records`).
    public var numRecords: Int
    /// Value bytes per record (`--record-size`).
    public var recordSize: Int
    /// The pace (`--throughput`).
    public var throttle: ThroughputThrottle
    /// How keys are chosen (`--key-distribution`, `--keys`).
    public var keys: KeyDistribution
    /// A fixed partition for every record; nil lets the partitioner choose.
    public var partition: Int32?
    /// Progress-line period; kafka-producer-perf-test's 5 s.
    public var reportingIntervalNanos: Int64 = 5_000_000_000

    /// A test of `numRecords` records of `recordSize` bytes to `topic`.
    public init(topic: String, numRecords: Int, recordSize: Int, throttle: ThroughputThrottle = .init(recordsPerSecond: nil),
                keys: KeyDistribution = .none, partition: Int32? = nil) {
        self.topic = topic
        self.numRecords = numRecords
        self.recordSize = recordSize
        self.throttle = throttle
        self.keys = keys
        self.partition = partition
    }

    /// What a run measured.
    public struct Result: Sendable {
        /// Counts and latencies of the acknowledged records.
        public var stats: ProducerPerfStats
        /// kafka-producer-perf-test's final line.
        public var totalLine: String
        /// First send → last acknowledgement.
        public var elapsedSeconds: Double
        /// CPU seconds of this process meanwhile.
        public var cpuSeconds: Double
        /// The first failed record's error, nil when all were delivered.
        public var firstError: KafkaClientError?
    }

    /// Runs the test on `producer` (which it flushes but does not close; it must not be used by
    /// other tasks meanwhile); `onLine` gets the 5-second progress lines as they happen.
    public func run(producer: KafkaProducer, onLine: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Result {
        guard numRecords > 0, recordSize >= 0 else { throw LoadTestError.invalid("--num-records must be positive, --record-size non-negative") }
        // kafka-producer-perf-test's payload: random uppercase letters, one payload for all.
        var rng = SplitMix64(seed: 1)
        var value = ByteBufferAllocator().buffer(capacity: recordSize)
        for _ in 0..<recordSize { value.writeInteger(UInt8(65 + rng.next() % 26)) }
        var keySeq = KeySequence(keys)
        let keyBuffers: [ByteBuffer] = {
            switch keys {
            case .none: return []
            case .roundRobin(let n), .random(let n), .zipf(let n, _):
                return (0..<n).map { ByteBuffer(bytes: KeySequence.keyBytes($0)) }
            }
        }()
        var record = ProducerRecord(topic: topic, partition: partition, key: nil, value: value)

        let cfg = producer.configuration
        let times = SendTimes(inFlight: 2 * (cfg.bufferMemory / max(recordSize, 16) + cfg.maxBufferedDeliveryReports) + 1024)
        let reports = producer.deliveryReports
        let size = recordSize
        let interval = reportingIntervalNanos

        // No warm-up: every one of the N records counts, the first one paying for metadata and
        // the connection, as in kafka-producer-perf-test.
        let start = ProcessStats.monotonicNanos()
        let reader = Task { () -> (ProducerPerfStats, KafkaClientError?) in
            var stats = ProducerPerfStats(startNanos: start, reportingIntervalNanos: interval)
            var firstError: KafkaClientError?
            var seen = 0
            var firstId: UInt64?
            for await batch in reports.batches {
                let now = ProcessStats.monotonicNanos()
                if firstId == nil { firstId = await times.firstId() }
                for r in batch where r.id >= firstId! {
                    seen += 1
                    switch r.result {
                    case .success: stats.record(latencyNanos: now - times.get(r.id), bytes: size)
                    case .failure(let e):
                        stats.recordFailure()
                        if firstError == nil { firstError = e }
                    }
                }
                if let line = stats.windowLine(nowNanos: now) { onLine(line) }
                if seen >= numRecords { break }
            }
            return (stats, firstError)
        }
        let cpu0 = ProcessStats.cpuSeconds()
        if let k = keySeq.next() { record.key = keyBuffers[k] }
        let firstId = try await producer.sendAsync(record)
        times.start(firstId: firstId, at: start)
        var expected = firstId &+ 1
        let throttled = throttle.recordsPerSecond != nil
        var now = start
        for i in 1..<numRecords {
            // Unthrottled, the clock is read every 8th record: a send takes well under a
            // microsecond, so a record's send time is at most a few microseconds early, while a
            // clock read per record was a tenth of the loop's cost.
            if throttled || i & 7 == 0 { now = ProcessStats.monotonicNanos() }
            if throttled, let wait = throttle.delay(beforeRecord: i, elapsed: .nanoseconds(now - start)) {
                try await Task.sleep(for: wait)
                now = ProcessStats.monotonicNanos()
            }
            if let k = keySeq.next() { record.key = keyBuffers[k] }
            times.set(expected, now)
            let id = try await producer.sendAsync(record)
            guard id == expected else {
                reader.cancel()
                throw LoadTestError.invalid("the producer numbered a record \(id), expected \(expected): another task sends on it")
            }
            expected &+= 1
        }
        await producer.flush()
        let (stats, firstError) = await reader.value
        let end = ProcessStats.monotonicNanos()
        return Result(stats: stats, totalLine: stats.totalLine(nowNanos: end), elapsedSeconds: Double(end - start) / 1e9,
                      cpuSeconds: ProcessStats.cpuSeconds() - cpu0, firstError: firstError)
    }
}
