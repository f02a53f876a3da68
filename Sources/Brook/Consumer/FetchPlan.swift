import BrookProtocol
import NIOCore

/// One partition of a fetch request, with the epoch it was planned under.
struct FetchPlanEntry: Sendable {
    var tp: TopicPartition
    var epoch: UInt64
    var offset: Int64
}

struct FetchPlan: Sendable {
    var entries: [FetchPlanEntry]
    var maxBytes: Int32
    var partitionMaxBytes: Int32
    var reserved: Int
    /// The decoded/stored size ratio seen so far, to reserve for compressed records.
    var expansion: Double = 1
}

/// What a fetch response said about one partition, read from its batch headers only.
///
/// Decoding the records is the costly part; the next fetch position is known before it for
/// uncompressed batches, so the next fetch goes out while this response is decoded.
enum ScannedPartition: Sendable {
    /// Uncompressed records up to `nextOffset`, decoding to `footprint` bytes (known exactly
    /// from the batch lengths). Control-only windows have no batches.
    case ready(batches: [RecordBatch], nextOffset: Int64, footprint: Int, highWatermark: Int64, logStartOffset: Int64)
    /// Compressed records: how much they decode to, and so where this fetch stops within the
    /// prefetch bound, is known only once decompressed. The partition's next fetch waits for it.
    case compressed(records: ByteBuffer, highWatermark: Int64, logStartOffset: Int64)
    /// Nothing new (or only part of a batch larger than the byte limit).
    case empty(highWatermark: Int64, logStartOffset: Int64)
    case outOfRange
    case leaderChanged(ErrorCode)
    case failed(any Error)
    case retry(ErrorCode)
}

/// A scanned fetch response, on its way to the decoder.
struct FetchScan: Sendable {
    var partitions: [TopicPartition: ScannedPartition] = [:]
    /// Decoded bytes held in reserve for this response until it is decoded: the exact footprint
    /// of the ready partitions, plus the room given to the compressed ones.
    var pending = 0
    /// Room the compressed partitions may decode into: what their stored size should decode to
    /// (by the expansion seen so far, with a margin), within what the ready ones left of the
    /// fetch's reservation. Beyond it, their records are left for the next fetch.
    var room = 0
    /// Whether some batch was accepted already (the first one always is, so that there is progress).
    var decodedAny = false
    /// Stored and decoded bytes of the ready partitions, for the expansion estimate.
    var compressedBytes = 0
    var decodedBytes = 0
}

/// The decoder's result for one partition: a chunk (nil: nothing new) or the decoding error.
typealias DecodedPartition = Result<DecodedChunk?, any Error>

extension ConsumerState {
    /// Partitions led by `node` that can be fetched now, within the prefetch budget.
    mutating func planFetch(node: Int32, config: ConsumerConfiguration.Fetch) -> FetchPlan? {
        guard lifecycle == .running else { return nil }
        guard prefetchHasRoom(bound: config.maxPrefetchBytes) else { return nil }
        let budget = config.maxPrefetchBytes - bufferedBytes - reservedBytes
        var tps = partitions.compactMap { tp, p in p.leader == node && p.isFetchable ? tp : nil }
        guard !tps.isEmpty else { return nil }
        tps.sort()
        // Rotate the order so that partitions take turns being first (the first one always
        // gets at least one batch; the response's byte limit may starve the last ones).
        fetchRotation &+= 1
        let shift = fetchRotation % tps.count
        tps = Array(tps[shift...] + tps[..<shift])
        // Brokers share the room left: each fetch may decode up to its reservation (plus one
        // batch), and asks for what that should compress to.
        let leaders = Set(partitions.values.compactMap { $0.isFetchable || $0.fetching ? $0.leader : nil }).count
        let reserved = max(budget / max(leaders, 1), 1)
        let maxBytes = Int32(clamping: min(Int(config.maxBytes), max(Int(Double(reserved) / expansion), 1)))
        let partitionMax = min(config.maxPartitionBytes, maxBytes)
        var entries: [FetchPlanEntry] = []
        entries.reserveCapacity(tps.count)
        for tp in tps {
            let p = partitions[tp]!
            p.fetching = true
            entries.append(FetchPlanEntry(tp: tp, epoch: p.epoch, offset: p.fetchPosition!))
        }
        reservedBytes += reserved
        return FetchPlan(entries: entries, maxBytes: maxBytes, partitionMaxBytes: partitionMax, reserved: reserved, expansion: expansion)
    }

    /// Applies a scanned response before its records are decoded: partitions whose next
    /// position is known may be fetched again at once; errors take effect. The fetch's
    /// reservation shrinks to what the decoder still needs. Returns (errors for the application,
    /// metadata refresh needed).
    mutating func applyScan(_ plan: FetchPlan, _ scan: FetchScan, policy: AutoOffsetReset) -> (errors: Bool, refresh: Bool) {
        reservedBytes += scan.pending - plan.reserved
        var errorsAdded = false
        var refresh = false
        for e in plan.entries {
            guard let p = partitions[e.tp], p.epoch == e.epoch else { continue }
            guard let scanned = scan.partitions[e.tp] else {
                p.fetching = false
                continue
            }
            switch scanned {
            case .ready(_, let next, _, let hw, let logStart):
                p.fetching = false
                p.fetchPosition = next
                p.note(highWatermark: hw, logStartOffset: logStart)
            case .compressed(_, let hw, let logStart):
                // Still in flight: `applyDecoded` moves the position.
                p.note(highWatermark: hw, logStartOffset: logStart)
            case .empty(let hw, let logStart):
                p.fetching = false
                p.note(highWatermark: hw, logStartOffset: logStart)
            case .outOfRange:
                p.fetching = false
                p.epoch = nextEpoch()
                p.position = nil
                p.fetchPosition = nil
                p.need = .reset(policy)
                if inFlight?.tp == e.tp { inFlight = nil }
                dropChunks { $0.tp == e.tp }
                refresh = true
            case .leaderChanged:
                p.fetching = false
                p.leader = nil
                refresh = true
            case .failed(let error):
                p.fetching = false
                p.failed = true
                errors.append(error)
                errorsAdded = true
            case .retry:
                p.fetching = false
            }
        }
        return (errorsAdded, refresh)
    }

    /// Queues a scanned response's decoded records, in response order, and releases its
    /// reservation. Returns whether records or errors arrived for the application.
    mutating func applyDecoded(
        _ plan: FetchPlan, _ scan: FetchScan, _ decoded: [TopicPartition: DecodedPartition], compressed: Int, decompressed: Int
    ) -> Bool {
        reservedBytes -= scan.pending
        if compressed > 0 {
            let ratio = max(Double(decompressed) / Double(compressed), 1)
            expansion = expansion * 0.7 + ratio * 0.3
        }
        var data = false
        for e in plan.entries {
            guard let p = partitions[e.tp], p.epoch == e.epoch, let result = decoded[e.tp] else { continue }
            let wasCompressed: Bool
            if case .compressed? = scan.partitions[e.tp] { wasCompressed = true } else { wasCompressed = false }
            if wasCompressed { p.fetching = false }
            // After a decoding error nothing more of this partition is handed out (later
            // responses may already be scanned) until the application seeks.
            guard !p.failed else { continue }
            switch result {
            case .success(let chunk?):
                if wasCompressed { p.fetchPosition = chunk.nextOffset }
                chunks.append(FetchedChunk(chunk, partition: p))
                bufferedBytes += chunk.bytes
                data = true
            case .success(nil):
                break
            case .failure(let error):
                p.failed = true
                errors.append(error)
                data = true
            }
        }
        return data
    }

    /// Clears the in-flight marks of a fetch that failed as a whole.
    mutating func abandonFetch(_ plan: FetchPlan, leaderUnknown: Bool) {
        reservedBytes -= plan.reserved
        for e in plan.entries {
            guard let p = partitions[e.tp], p.epoch == e.epoch else { continue }
            p.fetching = false
            if leaderUnknown { p.leader = nil }
        }
    }
}

extension ConsumerPartitionState {
    /// Records a response's high watermark and log start offset (-1: not given).
    func note(highWatermark: Int64, logStartOffset: Int64) {
        if highWatermark >= 0 { self.highWatermark = highWatermark }
        if logStartOffset >= 0 { self.logStartOffset = logStartOffset }
    }
}
