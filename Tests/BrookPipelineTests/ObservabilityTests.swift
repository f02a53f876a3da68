import Brook
import BrookPipeline
import BrookProtocol
import CoreMetrics
import Foundation
import Synchronization
import Testing

/// A metrics backend keeping counter sums, last gauge values and timer counts by label and dimensions.
final class TestMetrics: MetricsFactory, Sendable {
    final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        let key: String
        let box: Box
        init(_ key: String, _ box: Box) {
            self.key = key
            self.box = box
        }
        func increment(by: Int64) { box.values.withLock { $0[key, default: 0] += Double(by) } }
        func reset() { box.values.withLock { $0[key] = 0 } }
        func record(_ value: Int64) { box.values.withLock { $0[key] = Double(value) } }
        func record(_ value: Double) { box.values.withLock { $0[key] = value } }
        func recordNanoseconds(_ duration: Int64) { box.values.withLock { $0[key, default: 0] += 1 } }
    }

    // One store shared by all handlers: a Mutex is not copyable, so it lives in a box.
    final class Box: Sendable { let values = Mutex<[String: Double]>([:]) }
    let box = Box()

    static func key(_ label: String, _ d: [(String, String)]) -> String { ([label] + d.map { "\($0.0)=\($0.1)" }).joined(separator: ",") }
    func value(_ label: String, _ d: [(String, String)]) -> Double? { box.values.withLock { $0[Self.key(label, d)] } }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { Handler(Self.key(label, dimensions), box) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { Handler(Self.key(label, dimensions), box) }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Handler(Self.key(label, dimensions), box) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

@Suite(.serialized) struct ObservabilityTests {
    @Test func lagInRecordsAndSecondsCountsAndFixedLabels() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("obs", partitions: 1)
            let old = currentTimeMillis() - 10_000
            for i in 0..<5 {
                _ = try await broker.producer.send(ProducerRecord(topic: "obs", partition: 0, key: "k", value: "v\(i)", timestamp: old + Int64(i)))
            }
            let metrics = TestMetrics()
            var config = broker.pipelineConfig(group: "g-obs", topics: ["obs"])
            config.maxBatchRecords = 1
            let gate = Mutex(false)
            let seen = Seen()
            let pipeline = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p"), metricsFactory: metrics) { batch in
                while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                seen.add(batch)
            }
            let running = Running(pipeline)
            let tp = TopicPartition(topic: "obs", partition: 0)
            // Once the records are accepted (the first one in the blocked handler) the lag is known.
            try await eventually("lag seen") {
                let s = pipeline.snapshot()
                return s.partitions[tp]?.lagRecords == 5 && s.inFlightRecords == 5
            }
            let behind = pipeline.snapshot()
            #expect(behind.lagSeconds >= 9 && behind.lagSeconds < 60)
            #expect(behind.lagRecords == 5)
            let d = [("group", "g-obs"), ("topic", "obs"), ("partition", "0")]
            try await eventually("lag gauge") { metrics.value("brook_pipeline_lag_records", d) == 5 }
            // The seconds need a record's timestamp: the gauge catches up at the next metrics tick.
            try await eventually("lag seconds gauge") { (metrics.value("brook_pipeline_lag_seconds", d) ?? 0) >= 9 }
            gate.withLock { $0 = true }
            try await eventually("caught up") { pipeline.snapshot().lagRecords == 0 && seen.count == 5 }
            try await eventually("lag gauge drops") { metrics.value("brook_pipeline_lag_records", d) == 0 }
            try await eventually("throughput") { pipeline.snapshot().recordsPerSecond > 0 }
            let snap = pipeline.snapshot()
            #expect(snap.processed == 5)
            #expect(snap.lagSeconds == 0)
            try await running.stop()
            let t = [("group", "g-obs"), ("topic", "obs")]
            #expect(metrics.value("brook_pipeline_records_total", t) == 5)
            #expect(metrics.value("brook_pipeline_batch_duration_seconds", t) == 5)
        }
    }
}
