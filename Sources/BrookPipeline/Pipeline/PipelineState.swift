import Brook
import BrookProtocol
import NIOCore

/// One accepted record, decoded (or not), waiting in a lane or being processed.
struct PipelineItem<Value: Sendable>: Sendable {
    var record: ConsumerRecord
    var decoded: Result<Value, RecordError>
    var bytes: Int
    /// When its fetch response reached the pipeline (for the stage timers).
    var fetchedAt: ContinuousClock.Instant

    var offset: Int64 { record.offset }

    var pipelineRecord: PipelineRecord<Value>? {
        guard case .success(let v) = decoded else { return nil }
        return PipelineRecord(
            topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key,
            headers: record.headers, value: v)
    }
}

/// A lane: records that must be handled in order (a partition, or one key-hash slice of it).
/// Lanes belong to one epoch of their partition, so that a worker still finishing the work of
/// a revoked or fenced epoch never touches the next one's.
struct LaneID: Hashable, Sendable {
    var tp: TopicPartition
    var index: Int
    var epoch: UInt64
}

struct LaneQueue<Value: Sendable> {
    var items: [PipelineItem<Value>] = []
    var head = 0
    /// A worker task owns the lane.
    var running = false

    var isEmpty: Bool { head >= items.count }

    mutating func take(max: Int) -> [PipelineItem<Value>] {
        let end = min(items.count, head + max)
        let out = Array(items[head..<end])
        head = end
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        return out
    }

    mutating func drain() -> [PipelineItem<Value>] { take(max: Int.max - head) }
}

/// What the pipeline knows about one assigned partition.
struct PartitionContext: Sendable {
    /// Changes on every (re)assignment: work of an older epoch is dropped.
    var epoch: UInt64
    var tracker = OffsetTracker()
    /// Sink mode: the offset stored with the effects (the `expected` of the next apply).
    var stored: Int64?
    /// The sink reported another owner: nothing more is processed until reassigned.
    var fenced = false
    var revoking = false
    /// Being set up (quarantine loading, sink positions): fetched records are not taken yet;
    /// `rewind` remembers where to seek back to if some arrived meanwhile.
    var loading = true
    var rewind: Int64?
    var lastCommitted: Int64?
    var lastFinishedTimestamp: Int64?
    /// When the oldest record finished since the last commit to Kafka finished.
    var finishedSinceCommit: ContinuousClock.Instant?
}

/// The pipeline's mutable state, behind one lock (no I/O under it).
struct PipelineState<Value: Sendable> {
    var partitions: [TopicPartition: PartitionContext] = [:]
    var lanes: [LaneID: LaneQueue<Value>] = [:]
    var epochCounter: UInt64 = 0
    var inFlightRecords = 0
    var inFlightBytes = 0
    /// Partitions this pipeline paused for backpressure.
    var pausedForBackpressure: Set<TopicPartition> = []
    var stopping = false
    var workers = 0
    var processed: Int64 = 0
    /// Log end offsets from ListOffsets, refreshed by the metrics loop: a paused partition does
    /// not fetch, so the high watermark of its last fetch goes stale while lag grows.
    var listedEnds: [TopicPartition: Int64] = [:]
    var deadLettered: Int64 = 0
    var parked: Int64 = 0
    /// (when, processed) samples of the last five seconds, for ``PipelineSnapshot/recordsPerSecond``.
    var rateSamples: [(at: ContinuousClock.Instant, processed: Int64)] = []

    mutating func sampleRate(now: ContinuousClock.Instant) {
        rateSamples.append((now, processed))
        while let first = rateSamples.first, now - first.at > .seconds(5), rateSamples.count > 2 { rateSamples.removeFirst() }
    }

    var recordsPerSecond: Double {
        guard let first = rateSamples.first, let last = rateSamples.last else { return 0 }
        let dt = Double((last.at - first.at).components.attoseconds) / 1e18 + Double((last.at - first.at).components.seconds)
        return dt > 0 ? Double(last.processed - first.processed) / dt : 0
    }

    mutating func nextEpoch() -> UInt64 {
        epochCounter &+= 1
        return epochCounter
    }

    func isActive(_ tp: TopicPartition, _ epoch: UInt64) -> Bool {
        guard !stopping, let c = partitions[tp] else { return false }
        return c.epoch == epoch && !c.fenced && !c.revoking
    }

    func lanesRunning(of tps: Set<TopicPartition>) -> Bool {
        lanes.contains { tps.contains($0.key.tp) && $0.value.running }
    }

    /// Forgets queued records of `tps` (not started, so not committed: they are fetched again).
    mutating func dropQueued(of tps: Set<TopicPartition>) {
        for (id, lane) in lanes where tps.contains(id.tp) {
            var l = lane
            release(l.drain())
            lanes[id] = l
        }
    }

    mutating func release(_ items: [PipelineItem<Value>]) {
        inFlightRecords -= items.count
        inFlightBytes -= items.reduce(0) { $0 + $1.bytes }
    }
}
