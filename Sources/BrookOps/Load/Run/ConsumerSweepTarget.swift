import Brook
import Foundation
import Histogram
import Logging
import NIOCore
import Synchronization

/// The sweep's plain target: one consumer group member reading every record, doing nothing
/// with it but measuring its end-to-end latency (the value's first 8 bytes are the producer's
/// wall-clock microseconds).
public struct ConsumerSweepTarget: SweepTarget {
    /// The consumers' logger.
    public var logger: Logger

    /// A target whose consumers log to `logger`.
    public init(logger: Logger) { self.logger = logger }

    /// Subscribes a fresh group member with the point's consumer settings.
    public func start(topic: String, point: SweepPoint, spec: SweepSpec, client: ClientConfiguration) async throws -> any SweepSide {
        var cc = ConsumerConfiguration(client: client)
        cc.groupId = "\(topic)-group"
        cc.offsets.autoOffsetReset = .earliest
        cc.fetch.allowAutoCreateTopics = false
        try ClientProperties.apply(consumer: point.settings(.consumer), to: &cc)
        let consumer = try KafkaConsumer(configuration: cc, logger: logger)
        try consumer.subscribe(topics: [topic])
        return ConsumerSweepSide(consumer: consumer, topic: topic, recordSize: spec.recordSize)
    }
}

/// Latencies and the count a consuming side shares with the runner.
public final class SweepSideState: Sendable {
    struct State {
        var processed = 0
        var measuring = false
        var histogram = Histogram<UInt64>(highestTrackableValue: ProducerPerfStats.highestMicros, numberOfSignificantValueDigits: .three)
    }

    private let state = Mutex(State())

    /// Nothing processed, not measuring yet.
    public init() {}

    /// `n` records processed, with these end-to-end latencies (microseconds).
    public func processed(_ n: Int, latenciesMicros: [Int64]) {
        state.withLock { s in
            s.processed += n
            if s.measuring { for l in latenciesMicros { _ = s.histogram.record(min(UInt64(max(l, 0)), ProducerPerfStats.highestMicros)) } }
        }
    }

    /// Records processed so far.
    public var count: Int { state.withLock { $0.processed } }
    /// Latencies count from now on.
    public func startMeasuring() { state.withLock { $0.measuring = true } }
    /// p99 of the measured latencies, milliseconds.
    public var p99Ms: Double { state.withLock { $0.histogram.totalCount > 0 ? Double($0.histogram.valueAtPercentile(99)) / 1000 : 0 } }
}

final class ConsumerSweepSide: SweepSide {
    let consumer: KafkaConsumer
    let state = SweepSideState()
    let task: Task<Void, any Error>
    let topic: String
    let recordSize: Int

    init(consumer: KafkaConsumer, topic: String, recordSize: Int) {
        self.consumer = consumer
        self.topic = topic
        self.recordSize = recordSize
        let state = self.state
        task = Task {
            var lat: [Int64] = []
            for try await batch in consumer.batches {
                let now = ProcessStats.wallMicros()
                lat.removeAll(keepingCapacity: true)
                for r in batch.records {
                    if let v = r.value, let stamp = v.getInteger(at: v.readerIndex, as: Int64.self) { lat.append(now - stamp) }
                }
                state.processed(batch.records.count, latenciesMicros: lat)
            }
        }
    }

    func record(index: Int, stampMicros: Int64) -> ProducerRecord {
        var v = ByteBufferAllocator().buffer(capacity: recordSize)
        v.writeInteger(stampMicros)
        v.writeRepeatingByte(UInt8(ascii: "x"), count: max(recordSize - 8, 0))
        return ProducerRecord(topic: topic, value: v)
    }

    func processed() -> Int { state.count }
    func startMeasuring() { state.startMeasuring() }
    func p99Ms() -> Double { state.p99Ms }
    func stop() async {
        await consumer.close()
        _ = try? await task.value
    }
}
