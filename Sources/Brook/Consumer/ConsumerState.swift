import BrookProtocol
import NIOCore

/// How a partition's position is to be found.
enum PositionNeed: Equatable {
    /// The group's committed offset, else the reset policy.
    case committed
    /// ListOffsets with this policy.
    case reset(AutoOffsetReset)
}

/// Everything the consumer knows about one assigned partition. A class so that the delivery
/// path reaches it from the queued records without hashing; only touched under the consumer's lock.
final class ConsumerPartitionState {
    /// Bumped by every seek, reset and (re)assignment: fetches and buffered records of an older
    /// epoch are discarded.
    var epoch: UInt64
    /// The next offset handed to the application (Kafka's "position").
    var position: Int64?
    /// The next offset to fetch (ahead of `position` by what is buffered).
    var fetchPosition: Int64?
    /// The offset after the records the application has finished with: what auto-commit and
    /// commit-on-revoke commit.
    var processed: Int64?
    var need: PositionNeed?
    var paused = false
    /// Being revoked or lost: nothing more is handed out.
    var revoking = false
    /// No longer assigned.
    var removed = false
    /// A fetch including this partition is in flight.
    var fetching = false
    /// Fetching stopped after an error reported to the application, until a seek.
    var failed = false
    var leader: Int32?
    var highWatermark: Int64?
    var logStartOffset: Int64?
    var lastTimestamp: Int64?
    /// The last committed offset known (read at assignment or committed by this consumer).
    var committed: Int64?

    init(epoch: UInt64, need: PositionNeed?) {
        self.epoch = epoch
        self.need = need
    }

    var isFetchable: Bool {
        fetchPosition != nil && need == nil && !paused && !revoking && !fetching && !failed
    }

    /// Whether records of `epoch` may be handed out now.
    @inline(__always)
    func delivers(_ epoch: UInt64) -> Bool {
        self.epoch == epoch && !removed
    }
}

/// The records of one partition decoded from one fetch response.
struct DecodedChunk: Sendable {
    let tp: TopicPartition
    let epoch: UInt64
    let records: RecordRun
    /// The partition's position once these records are consumed.
    let nextOffset: Int64
    /// Decompressed bytes, counted against the prefetch bound.
    let bytes: Int
    let highWatermark: Int64
}

/// The records of one partition from one fetch response, in the delivery queue.
struct FetchedChunk {
    let tp: TopicPartition
    let epoch: UInt64
    /// The records not handed out yet (taken records are moved out of it).
    let records: RecordRun
    /// The partition's position once the chunk is consumed.
    let nextOffset: Int64
    /// Decompressed bytes, counted against the prefetch bound.
    let bytes: Int
    let highWatermark: Int64
    /// The partition's state, attached when the chunk is queued.
    var partition: ConsumerPartitionState? = nil

    init(
        tp: TopicPartition, epoch: UInt64, records: RecordRun, nextOffset: Int64, bytes: Int, highWatermark: Int64,
        partition: ConsumerPartitionState? = nil
    ) {
        self.tp = tp
        self.epoch = epoch
        self.records = records
        self.nextOffset = nextOffset
        self.bytes = bytes
        self.highWatermark = highWatermark
        self.partition = partition
    }

    init(_ d: DecodedChunk, partition: ConsumerPartitionState) {
        self.init(
            tp: d.tp, epoch: d.epoch, records: d.records, nextOffset: d.nextOffset, bytes: d.bytes, highWatermark: d.highWatermark,
            partition: partition)
    }
}

/// The record (or batch) the application received last and has not finished yet: finished when
/// it asks for the next one.
struct InFlight {
    var tp: TopicPartition
    var epoch: UInt64
    var next: Int64
    var partition: ConsumerPartitionState
}

enum ConsumerLifecycle: Equatable {
    case idle, running, closing, closed
}

/// The consumer's mutable state, behind one `Mutex` of ``KafkaConsumer``. No I/O here.
struct ConsumerState {
    var lifecycle: ConsumerLifecycle = .idle
    var engine: Task<Void, Never>?
    /// Whether shutdown waits for the application to finish its current record.
    var waitForInFlightOnClose = false

    /// Subscribed topics (group mode), or nil.
    var subscription: Set<String>?
    /// Partitions were assigned manually with `assign`.
    var manual = false
    var partitions: [TopicPartition: ConsumerPartitionState] = [:]
    private var epochCounter: UInt64 = 0

    // Prefetch queue.
    var chunks: [FetchedChunk] = []
    var bufferedBytes = 0
    var reservedBytes = 0
    /// Observed decompressed/compressed ratio of fetched data, to size requests to the budget.
    var expansion: Double = 1
    var inFlight: InFlight?
    /// Errors for the application, thrown by the record sequences in order.
    var errors: [any Error] = []
    var fatal: KafkaConsumerError?
    var fetchRotation = 0

    /// Group membership (member id, generation, rejoins); the coordinator connection is kept
    /// by the consumer, not here.
    var group = GroupMembershipStateMachine()

    mutating func nextEpoch() -> UInt64 {
        epochCounter &+= 1
        return epochCounter
    }

    var isDelivering: Bool { lifecycle == .idle || lifecycle == .running }

    // MARK: - assignment

    mutating func add(_ tps: some Sequence<TopicPartition>, need: PositionNeed) {
        for tp in tps where partitions[tp] == nil {
            partitions[tp] = ConsumerPartitionState(epoch: nextEpoch(), need: need)
        }
    }

    mutating func remove(_ tps: Set<TopicPartition>) {
        guard !tps.isEmpty else { return }
        for tp in tps {
            partitions[tp]?.removed = true
            partitions[tp] = nil
        }
        if let f = inFlight, tps.contains(f.tp) { inFlight = nil }
        dropChunks { tps.contains($0.tp) }
    }

    mutating func dropChunks(where predicate: (FetchedChunk) -> Bool) {
        chunks.removeAll { c in
            if predicate(c) {
                bufferedBytes -= c.bytes
                return true
            }
            return false
        }
    }

    // MARK: - positions

    mutating func seek(_ tp: TopicPartition, to offset: Int64) throws {
        guard let p = partitions[tp] else { throw KafkaConsumerError.notAssigned(tp) }
        p.epoch = nextEpoch()
        p.position = offset
        p.fetchPosition = offset
        p.processed = offset
        p.need = nil
        p.fetching = false
        p.failed = false
        if inFlight?.tp == tp { inFlight = nil }
        dropChunks { $0.tp == tp }
    }

    mutating func reset(_ tp: TopicPartition, _ policy: AutoOffsetReset) throws {
        guard let p = partitions[tp] else { throw KafkaConsumerError.notAssigned(tp) }
        p.epoch = nextEpoch()
        p.position = nil
        p.fetchPosition = nil
        p.need = .reset(policy)
        p.fetching = false
        p.failed = false
        if inFlight?.tp == tp { inFlight = nil }
        dropChunks { $0.tp == tp }
    }

    /// Sets a resolved position unless the partition moved on meanwhile.
    mutating func resolve(_ tp: TopicPartition, epoch: UInt64, offset: Int64, committed: Int64? = nil) {
        guard let p = partitions[tp], p.epoch == epoch, p.need != nil else { return }
        p.position = offset
        p.fetchPosition = offset
        p.processed = offset
        p.need = nil
        if let committed { p.committed = committed }
    }

    // MARK: - delivery

    /// The application finished its previous record. Returns whether that record's partition is
    /// being revoked (someone waits for it).
    mutating func completeInFlight() -> Bool {
        guard let f = inFlight else { return false }
        inFlight = nil
        let p = f.partition
        guard p.delivers(f.epoch) else { return false }
        p.processed = f.next
        return p.revoking
    }

    private mutating func removeChunk(at i: Int) -> Bool {
        let before = prefetchHasRoom(bound: maxPrefetchHint)
        bufferedBytes -= chunks[i].bytes
        chunks.remove(at: i)
        return !before && prefetchHasRoom(bound: maxPrefetchHint)
    }

    /// Whether a fetch may start: a quarter of the prefetch bound is free, or nothing is buffered.
    /// Fetching each sliver as it frees up would mean many small responses, each costing a round
    /// trip and per-fetch work.
    func prefetchHasRoom(bound: Int) -> Bool {
        let used = bufferedBytes + reservedBytes  // (the bound may be Int.max: no subtraction from it)
        return used < bound && (used <= bound - bound / 4 || bufferedBytes == 0)
    }

    /// Set by the consumer: the prefetch bound, to tell when freeing bytes should wake fetchers.
    var maxPrefetchHint = Int.max

    /// The partition of the queued chunk at `i`, if its records may still be handed out.
    @inline(__always)
    private func owner(at i: Int) -> ConsumerPartitionState? {
        guard let p = chunks[i].partition ?? partitions[chunks[i].tp], p.delivers(chunks[i].epoch) else { return nil }
        return p
    }

    /// The next record for the application, and whether fetchers should be woken (prefetch room
    /// appeared).
    mutating func takeRecord() -> (ConsumerRecord?, wake: Bool) {
        var wake = false
        var i = 0
        while i < chunks.count {
            guard let p = owner(at: i) else {
                wake = removeChunk(at: i) || wake
                continue
            }
            if p.paused || p.revoking {
                i += 1
                continue
            }
            let run = chunks[i].records
            if run.isEmpty {
                // Only control records (or nothing left): move the position past them.
                finishEmpty(p, chunks[i])
                wake = removeChunk(at: i) || wake
                continue
            }
            let r = run.takeFirst()
            let tp = chunks[i].tp
            var next = r.offset &+ 1
            if run.isEmpty {
                next = max(next, chunks[i].nextOffset)
                wake = removeChunk(at: i) || wake
            }
            p.position = next
            p.lastTimestamp = r.timestamp
            inFlight = InFlight(tp: tp, epoch: p.epoch, next: next, partition: p)
            return (r, wake)
        }
        return (nil, wake)
    }

    /// The rest of the next deliverable chunk, as one batch.
    mutating func takeBatch() -> (ConsumerRecordBatch?, wake: Bool) {
        var wake = false
        var i = 0
        while i < chunks.count {
            guard let p = owner(at: i) else {
                wake = removeChunk(at: i) || wake
                continue
            }
            if p.paused || p.revoking {
                i += 1
                continue
            }
            let chunk = chunks[i]
            wake = removeChunk(at: i) || wake
            if chunk.records.isEmpty {
                finishEmpty(p, chunk)
                continue
            }
            let records = chunk.records.takeAll()
            let next = max(records.last!.offset + 1, chunk.nextOffset)
            p.position = next
            p.lastTimestamp = records.last!.timestamp
            inFlight = InFlight(tp: chunk.tp, epoch: p.epoch, next: next, partition: p)
            return (ConsumerRecordBatch(topicPartition: chunk.tp, records: records, highWatermark: chunk.highWatermark, nextOffset: next), wake)
        }
        return (nil, wake)
    }

    private mutating func finishEmpty(_ p: ConsumerPartitionState, _ chunk: FetchedChunk) {
        let next = max(p.position ?? chunk.nextOffset, chunk.nextOffset)
        p.position = next
        if var f = inFlight, f.partition === p, f.epoch == p.epoch {
            f.next = next
            inFlight = f
        } else {
            p.processed = next
        }
    }

    // MARK: - lag

    func lag() -> [TopicPartition: PartitionLag] {
        var out: [TopicPartition: PartitionLag] = [:]
        for (tp, p) in partitions {
            out[tp] = PartitionLag(position: p.position, committed: p.committed, highWatermark: p.highWatermark, lastConsumedTimestamp: p.lastTimestamp)
        }
        return out
    }
}
