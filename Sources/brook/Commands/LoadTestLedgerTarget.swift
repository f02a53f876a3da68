import Brook
import BrookLedger
import BrookOps
import BrookPipeline
import Foundation
import Logging
import NIOCore

/// The sweep's ledger target: a ``LedgerWorker`` applying generated trade events to a fresh
/// SQLite database per run (or to the sweep's PostgreSQL database), the consumer and pipeline settings of the point applied to its
/// pipeline. What the original team needed to know: their consumer's throughput into their
/// database under each setting.
struct LedgerSweepTarget: SweepTarget {
    let logger: Logger

    /// Pipeline settings a sweep may vary (the ledger's sink is transactional, so lanes per
    /// partition do not apply: its stored offset moves one contiguous range at a time).
    static func apply(pipeline props: [(String, String)], to pc: inout PipelineConfiguration) throws {
        func int(_ k: String, _ v: String) throws -> Int {
            guard let n = Int(v), n > 0 else { throw LoadTestError.invalid("pipeline.\(k)=\(v): expected a positive integer") }
            return n
        }
        for (k, v) in props {
            switch k {
            case "batch.records": pc.maxBatchRecords = try int(k, v)
            case "sink.call.records": pc.maxSinkCallRecords = try int(k, v)
            case "max.in.flight.records": pc.maxInFlightRecords = try int(k, v)
            case "max.in.flight.bytes": pc.maxInFlightBytes = try int(k, v)
            case "commit.interval.ms": pc.commitInterval = .milliseconds(try int(k, v))
            case "lanes.per.partition":
                throw LoadTestError.invalid("pipeline.lanes.per.partition does not apply to the ledger: its transactional sink orders by partition")
            default:
                throw LoadTestError.invalid("unknown pipeline setting \(k) (batch.records, sink.call.records, max.in.flight.records, max.in.flight.bytes, commit.interval.ms)")
            }
        }
    }

    func start(topic: String, point: SweepPoint, spec: SweepSpec, client: ClientConfiguration) async throws -> any SweepSide {
        let consumerProps = point.settings(.consumer)
        let pipelineProps = point.settings(.pipeline)
        // Validate before the worker exists: its configuration hook cannot throw.
        var probe = PipelineConfiguration(consumer: ConsumerConfiguration(client: client), topics: [topic])
        try ClientProperties.apply(consumer: consumerProps, to: &probe.consumer)
        try Self.apply(pipeline: pipelineProps, to: &probe)

        // A fresh SQLite file per run (deleted after), or the PostgreSQL database the sweep names.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(topic).sqlite").path
        let database = try spec.database.map { try LedgerDatabase(url: $0) } ?? .sqlite(path: path)
        let store = try await database.openStore()
        let histograms = LatencyHistograms()
        var wc = LedgerWorker.Configuration(client: client)
        wc.topic = topic
        wc.group = "\(topic)-ledger"
        // Credits relayed back onto the topic would be records no one produced: the count of
        // applied events must equal the records sent.
        wc.relayOutbox = false
        wc.tunePipeline = { pc in
            _ = try? ClientProperties.apply(consumer: consumerProps, to: &pc.consumer)
            try? Self.apply(pipeline: pipelineProps, to: &pc)
        }
        let worker = LedgerWorker(configuration: wc, store: store, logger: logger, metricsFactory: histograms)
        let events = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: spec.accounts, events: spec.warmupRecords + spec.records)))
        return LedgerSweepSide(worker: worker, store: store, path: path, histograms: histograms, topic: topic, events: events)
    }
}

final class LedgerSweepSide: SweepSide {
    let worker: LedgerWorker
    let store: any LedgerStore
    let path: String
    let histograms: LatencyHistograms
    let topic: String
    let events: [GeneratedRecord]
    let task: Task<Void, any Error>

    init(worker: LedgerWorker, store: any LedgerStore, path: String, histograms: LatencyHistograms, topic: String, events: [GeneratedRecord]) {
        (self.worker, self.store, self.path, self.histograms, self.topic, self.events) = (worker, store, path, histograms, topic, events)
        task = Task { try await worker.run() }
    }

    /// Ledger events carry their own JSON; the record timestamp (milliseconds) is the stamp
    /// the pipeline's record → applied stage measures from.
    func record(index: Int, stampMicros: Int64) -> ProducerRecord {
        let e = events[index % events.count]
        return ProducerRecord(topic: topic, key: Array(e.key.utf8), value: e.value, timestamp: stampMicros / 1000)
    }

    func processed() -> Int { Int(worker.counts().appliedEvents) }
    func startMeasuring() { histograms.reset() }
    func p99Ms() -> Double { histograms.summary(PipelineStage.endToEnd.rawValue)?.p99 ?? 0 }

    func stop() async {
        worker.pipeline.stop()
        _ = try? await task.value
        try? await store.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}
