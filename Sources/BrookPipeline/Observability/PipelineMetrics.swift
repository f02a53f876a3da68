import Brook
import BrookProtocol
import CoreMetrics
import Metrics
import Synchronization

/// The pipeline's swift-metrics instruments. Labels are fixed (`group`, `topic`, `partition`)
/// so dashboards and Prometheus rules do not depend on configuration.
///
/// - `brook_pipeline_lag_records{group,topic,partition}` gauge
/// - `brook_pipeline_lag_seconds{group,topic,partition}` gauge (from record timestamps)
/// - `brook_pipeline_records_total{group,topic}` counter: records finished
/// - `brook_pipeline_dead_letters_total{group,topic}` counter: failed records sent to the DLT
/// - `brook_pipeline_parked_total{group,topic}` counter: records parked behind a quarantined key
/// - `brook_pipeline_retries_total{group,topic}` counter
/// - `brook_pipeline_batch_duration_seconds{group,topic}` timer: one handler/sink call
/// - `brook_pipeline_stage_seconds{group,stage}` timers: where each record's time goes (``PipelineStage``)
/// - `brook_pipeline_in_flight_records{group}`, `brook_pipeline_in_flight_bytes{group}`,
///   `brook_pipeline_paused_partitions{group}`, `brook_pipeline_quarantined_keys{group}` gauges
final class PipelineMetrics: Sendable {
    struct TopicInstruments: Sendable {
        let records: Counter
        let deadLetters: Counter
        let parked: Counter
        let retries: Counter
        let duration: Timer
    }

    struct PartitionInstruments: Sendable {
        let lagRecords: Gauge
        let lagSeconds: Gauge
    }

    let group: String
    let factory: any MetricsFactory
    let inFlightRecords: Gauge
    let inFlightBytes: Gauge
    let pausedPartitions: Gauge
    let quarantinedKeys: Gauge
    private let stages: [PipelineStage: Timer]
    private let topics = Mutex<[String: TopicInstruments]>([:])
    private let partitions = Mutex<[TopicPartition: PartitionInstruments]>([:])

    init(group: String, factory: any MetricsFactory) {
        self.group = group
        self.factory = factory
        let d = [("group", group)]
        inFlightRecords = Gauge(label: "brook_pipeline_in_flight_records", dimensions: d, factory: factory)
        inFlightBytes = Gauge(label: "brook_pipeline_in_flight_bytes", dimensions: d, factory: factory)
        pausedPartitions = Gauge(label: "brook_pipeline_paused_partitions", dimensions: d, factory: factory)
        quarantinedKeys = Gauge(label: "brook_pipeline_quarantined_keys", dimensions: d, factory: factory)
        var stages: [PipelineStage: Timer] = [:]
        for stage in PipelineStage.allCases {
            stages[stage] = Timer(label: PipelineStage.metricLabel, dimensions: d + [("stage", stage.rawValue)], preferredDisplayUnit: .milliseconds, factory: factory)
        }
        self.stages = stages
    }

    /// The timer of one stage (made once, with the pipeline).
    func stage(_ s: PipelineStage) -> StageTimer { StageTimer(timer: stages[s]!) }

    func topic(_ t: String) -> TopicInstruments {
        if let x = topics.withLock({ $0[t] }) { return x }
        let d = [("group", group), ("topic", t)]
        let x = TopicInstruments(
            records: Counter(label: "brook_pipeline_records_total", dimensions: d, factory: factory),
            deadLetters: Counter(label: "brook_pipeline_dead_letters_total", dimensions: d, factory: factory),
            parked: Counter(label: "brook_pipeline_parked_total", dimensions: d, factory: factory),
            retries: Counter(label: "brook_pipeline_retries_total", dimensions: d, factory: factory),
            duration: Timer(label: "brook_pipeline_batch_duration_seconds", dimensions: d, preferredDisplayUnit: .seconds, factory: factory))
        return topics.withLock { m in
            if let existing = m[t] { return existing }
            m[t] = x
            return x
        }
    }

    func lag(_ tp: TopicPartition, records: Int64, seconds: Double) {
        let x = partitions.withLock { m -> PartitionInstruments in
            if let x = m[tp] { return x }
            let d = [("group", group), ("topic", tp.topic), ("partition", String(tp.partition))]
            let x = PartitionInstruments(
                lagRecords: Gauge(label: "brook_pipeline_lag_records", dimensions: d, factory: factory),
                lagSeconds: Gauge(label: "brook_pipeline_lag_seconds", dimensions: d, factory: factory))
            m[tp] = x
            return x
        }
        x.lagRecords.record(records)
        x.lagSeconds.record(seconds)
    }

    /// Drops the gauges of partitions no longer assigned.
    func retain(_ owned: Set<TopicPartition>) {
        let stale = partitions.withLock { m -> [PartitionInstruments] in
            let gone = m.keys.filter { !owned.contains($0) }
            return gone.compactMap { m.removeValue(forKey: $0) }
        }
        for x in stale {
            x.lagRecords.destroy()
            x.lagSeconds.destroy()
        }
    }
}

/// The stages of a record's way through a pipeline, each a timer
/// `brook_pipeline_stage_seconds{group,stage=<raw value>}` with one value per record, so their
/// percentiles add up to the end-to-end figure as records see it.
public enum PipelineStage: String, CaseIterable, Sendable {
    /// The record's timestamp → its fetch response reached the pipeline. With
    /// `message.timestamp.type=LogAppendTime` this is append → fetched; with CreateTime it
    /// includes the producer's linger and the broker's append (wall clock, millisecond timestamps).
    case fetched = "record_to_fetched"
    /// Fetched → taken from its lane's queue (waiting behind earlier batches of the lane).
    case queued = "fetched_to_lane"
    /// Taken → the handler or sink call began (a sink call may gather several partitions' batches).
    case sinkWait = "lane_to_sink"
    /// The handler or sink call itself (for a sink, its whole transaction).
    case sinkCall = "sink_transaction"
    /// Finished → its offset committed to Kafka (the commit interval; with a sink the stored
    /// offset is already committed with the effects, this is only the group's informational copy).
    case committed = "applied_to_committed"
    /// The record's timestamp → its call returned: produce → commit when timestamps are CreateTime.
    case endToEnd = "record_to_applied"

    public static let metricLabel = "brook_pipeline_stage_seconds"
}

/// A stage timer that records a duration once per record it covers.
struct StageTimer {
    let timer: Timer

    func record(_ d: Duration, count: Int = 1) {
        let ns = max(d.nanoseconds, 0)
        for _ in 0..<max(count, 0) { timer.recordNanoseconds(ns) }
    }

    /// From a record timestamp (ms since the epoch) to `nowMs`.
    func record(sinceTimestampMs ts: Int64, nowMs: Int64) {
        timer.recordNanoseconds(max(nowMs - ts, 0) * 1_000_000)
    }
}

