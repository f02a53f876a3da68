import BrookProtocol
import Brook
import Foundation
import Synchronization

/// `brook loadtest consume`: kafka-consumer-perf-test on Brook's consumer. Reads `messages`
/// records of `topic` as a member of `group` (several processes with one group id share the
/// partitions), and reports the CSV row of ``ConsumerPerfReport``.
public struct ConsumerLoadTest: Sendable {
    /// The topic to read.
    public var topic: String
    /// Records to read (`--messages`).
    public var messages: Int
    /// Give up after this long without a record (kafka-consumer-perf-test's `--timeout`).
    public var idleTimeout: Duration
    /// With `--show-detailed-stats`: the period of the detailed rows.
    public var detailedInterval: Duration?

    /// A test reading `messages` records of `topic`.
    public init(topic: String, messages: Int, idleTimeout: Duration = .seconds(10), detailedInterval: Duration? = nil) {
        self.topic = topic
        self.messages = messages
        self.idleTimeout = idleTimeout
        self.detailedInterval = detailedInterval
    }

    /// What a run read.
    public struct Result: Sendable {
        /// The whole run, for the summary row.
        public var summary: ConsumerPerfReport.Sample
        /// Records read.
        public var records: Int
        /// Whether it stopped for lack of records before reaching `messages`.
        public var timedOut: Bool
    }

    /// Runs on a consumer already subscribed (or assigned); closes it at the end.
    public func run(consumer: KafkaConsumer, onRow: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Result {
        let startMillis = currentTimeMillis()
        let lastProgress = LastProgress(currentTimeMillis())
        let watchdog = Task {
            // Closing the consumer ends its iteration; the idle check runs 10 times per timeout.
            let step = idleTimeout / 10
            while !Task.isCancelled {
                try await Task.sleep(for: step)
                if currentTimeMillis() - lastProgress.value > idleTimeout.milliseconds {
                    lastProgress.timedOut = true
                    await consumer.close()
                    return
                }
            }
        }
        var records = 0
        var bytes = 0
        var firstRecordMillis: Int64 = 0
        var intervalStart = startMillis
        var intervalRecords = 0
        var intervalBytes = 0
        let detailMs = detailedInterval?.milliseconds
        do {
            outer: for try await batch in consumer.batches {
                let now = currentTimeMillis()
                if firstRecordMillis == 0 { firstRecordMillis = now }
                lastProgress.value = now
                for r in batch.records {
                    let n = (r.value?.readableBytes ?? 0) + (r.key?.readableBytes ?? 0)
                    bytes += n
                    records += 1
                    intervalBytes += n
                    intervalRecords += 1
                    if records >= messages { break outer }
                }
                if let detailMs, now - intervalStart >= detailMs {
                    onRow(ConsumerPerfReport.detailedRow(.init(startMillis: intervalStart, endMillis: now, bytes: intervalBytes,
                                                               records: intervalRecords, rebalanceMillis: 0)))
                    (intervalStart, intervalRecords, intervalBytes) = (now, 0, 0)
                }
            }
        } catch {
            if !lastProgress.timedOut { throw error }
        }
        watchdog.cancel()
        let end = currentTimeMillis()
        await consumer.close()
        // Joining the group and the first fetch: Java's rebalance time is the wait before the
        // first assignment; the first record's arrival is the closest thing seen from outside.
        let rebalance = firstRecordMillis == 0 ? 0 : firstRecordMillis - startMillis
        return Result(summary: .init(startMillis: startMillis, endMillis: end, bytes: bytes, records: records, rebalanceMillis: rebalance),
                      records: records, timedOut: lastProgress.timedOut && records < messages)
    }
}

/// The watchdog's view of the consumer loop: the time of the last record, and whether it
/// gave up.
final class LastProgress: Sendable {
    private let millis: Atomic<Int64>
    private let expired = Atomic<Bool>(false)
    init(_ v: Int64) { millis = Atomic(v) }
    var value: Int64 {
        get { millis.load(ordering: .relaxed) }
        set { millis.store(newValue, ordering: .relaxed) }
    }
    var timedOut: Bool {
        get { expired.load(ordering: .relaxed) }
        set { expired.store(newValue, ordering: .relaxed) }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
