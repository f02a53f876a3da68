import BrookProtocol
import Logging
import NIOCore

/// Turns fetch responses into records in two steps: a scan of the batch headers (cheap, done by
/// the fetcher so that the next fetch can go out) and the decoding proper (done by a decoder
/// task meanwhile). No I/O and no consumer state here.
struct FetchDecoding: Sendable {
    var checkCRCs: Bool
    var logger: Logger

    /// The decoded cost of a record beyond its bytes, counted against the prefetch bound so that
    /// it holds for small records as well (the expansion estimate includes it, so fetches ask for
    /// what fits once decoded).
    static let recordOverhead = MemoryLayout<ConsumerRecord>.stride

    /// Headroom on the expansion estimate when reserving for compressed records: too little
    /// leaves records to be fetched again, too much holds back prefetch room while decoding.
    static let expansionMargin = 1.25

    /// Reads each partition's error code and batch headers. Uncompressed batches are accepted
    /// while the fetch's reservation has room (the first one always), so their partition's next
    /// position is known now.
    func scan(_ resp: FetchResponse, plan: FetchPlan) -> FetchScan {
        var offsets: [TopicPartition: Int64] = [:]
        for e in plan.entries { offsets[e.tp] = e.offset }
        var scan = FetchScan()
        var room = plan.reserved
        var compressedStored = 0
        for t in resp.responses {
            for pd in t.partitions {
                let tp = TopicPartition(topic: t.topic, partition: pd.partitionIndex)
                guard let fetchOffset = offsets[tp] else { continue }
                let code = ErrorCode(rawValue: pd.errorCode) ?? .unknownServerError
                switch code {
                case .none:
                    break
                case .offsetOutOfRange:
                    logger.info("fetch offset out of range; resetting", metadata: Self.metadata(tp, fetchOffset))
                    scan.partitions[tp] = .outOfRange
                    continue
                case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch, .unknownLeaderEpoch,
                    .kafkaStorageError, .replicaNotAvailable, .unknownTopicId, .offsetNotAvailable:
                    scan.partitions[tp] = .leaderChanged(code)
                    continue
                default:
                    scan.partitions[tp] = code.isRetriable ? .retry(code) : .failed(KafkaClientError.broker(code, resource: "\(tp)", message: nil))
                    continue
                }
                guard let records = pd.records, records.readableBytes > 0 else {
                    scan.partitions[tp] = .empty(highWatermark: pd.highWatermark, logStartOffset: pd.logStartOffset)
                    continue
                }
                do {
                    let s = try scanPartition(records, fetchOffset: fetchOffset, room: &room, decodedAny: &scan.decodedAny)
                    switch s {
                    case .compressed:
                        compressedStored += records.readableBytes
                        scan.partitions[tp] = .compressed(records: records, highWatermark: pd.highWatermark, logStartOffset: pd.logStartOffset)
                    case .ready(let batches, let next, let footprint, let stored):
                        scan.pending += footprint
                        scan.compressedBytes += stored
                        scan.decodedBytes += footprint + batches.count * RecordBatchHeader.size
                        scan.partitions[tp] = .ready(
                            batches: batches, nextOffset: next, footprint: footprint, highWatermark: pd.highWatermark,
                            logStartOffset: pd.logStartOffset)
                    case .nothing:
                        scan.partitions[tp] = .empty(highWatermark: pd.highWatermark, logStartOffset: pd.logStartOffset)
                    }
                } catch {
                    logger.error("undecodable record batch", metadata: Self.metadata(tp, fetchOffset, error))
                    scan.partitions[tp] = .failed(error)
                }
            }
        }
        if compressedStored > 0 {
            scan.room = min(max(room, 0), Int(Double(compressedStored) * plan.expansion * Self.expansionMargin))
            scan.pending += scan.room
        }
        return scan
    }

    private enum PartitionScan {
        case ready([RecordBatch], next: Int64, footprint: Int, stored: Int)
        case compressed
        case nothing
    }

    /// The uncompressed window of one partition, or `.compressed` if a compressed batch comes
    /// before the cut (then the decoder decides the whole window, and this partition takes none
    /// of the room here).
    private func scanPartition(_ records: ByteBuffer, fetchOffset: Int64, room: inout Int, decodedAny: inout Bool) throws -> PartitionScan {
        var batches: [RecordBatch] = []
        var stored = 0
        var windowRoom = room
        var windowAny = decodedAny
        let w = try walkWindow(records, from: fetchOffset, room: &windowRoom, decodedAny: &windowAny) { batch in
            guard !batch.header.isCompressed else { return nil }
            batches.append(batch)
            stored += batch.bytes.readableBytes
            return batch.bytes.readableBytes - RecordBatchHeader.size + Int(max(batch.header.recordCount, 0)) * Self.recordOverhead
        }
        if w.stopped { return .compressed }
        room = windowRoom
        decodedAny = windowAny
        return w.sawBatch ? .ready(batches, next: w.next, footprint: w.footprint, stored: stored) : .nothing
    }

    private struct Window {
        var next: Int64
        var footprint = 0
        /// Some batch (control batches included) was passed: `next` moved.
        var sawBatch = false
        /// `take` refused a batch.
        var stopped = false
    }

    /// Walks one partition's batches from `fetchOffset`, the one rule for where a fetch's
    /// records stop: control batches only move the position; the others go to `take` (which
    /// returns their decoded size, or nil to stop the walk) while the room lasts, the first one
    /// of the fetch always, so that there is progress.
    private func walkWindow(
        _ records: ByteBuffer, from fetchOffset: Int64, room: inout Int, decodedAny: inout Bool, _ take: (RecordBatch) throws -> Int?
    ) throws -> Window {
        var iterator = RecordBatchIterator(records)
        var w = Window(next: fetchOffset)
        while let batch = try iterator.next() {
            let h = batch.header
            guard h.nextOffset > fetchOffset else { continue }
            if h.isControl {
                w.sawBatch = true
                w.next = max(w.next, h.nextOffset)
                continue
            }
            if room <= 0 && decodedAny { break }
            guard let size = try take(batch) else {
                w.stopped = true
                break
            }
            w.sawBatch = true
            w.next = max(w.next, h.nextOffset)
            w.footprint += size
            room -= size
            decodedAny = true
        }
        return w
    }

    /// Decodes every partition of a scanned response. Returns the per-partition results and the
    /// stored and decoded sizes of the compressed partitions (the ready ones are in the scan).
    func decode(_ scan: FetchScan, plan: FetchPlan) -> ([TopicPartition: DecodedPartition], compressed: Int, decompressed: Int) {
        var out: [TopicPartition: DecodedPartition] = [:]
        var room = scan.room
        var decodedAny = scan.decodedAny
        var compressed = scan.compressedBytes
        var decompressed = scan.decodedBytes
        for e in plan.entries {
            guard let scanned = scan.partitions[e.tp] else { continue }
            switch scanned {
            case .ready(let batches, let next, let footprint, let hw, _):
                out[e.tp] = Result {
                    let records = RecordRun(capacity: batches.reduce(0) { $0 + Int(max($1.header.recordCount, 0)) })
                    for batch in batches {
                        _ = try appendRecords(of: batch, tp: e.tp, from: e.offset, to: records)
                    }
                    return DecodedChunk(tp: e.tp, epoch: e.epoch, records: records, nextOffset: next, bytes: footprint, highWatermark: hw)
                }
            case .compressed(let records, let hw, _):
                do {
                    let (chunk, c, d) = try decodeCompressed(
                        e, records: records, highWatermark: hw, room: &room, decodedAny: &decodedAny)
                    compressed += c
                    decompressed += d
                    out[e.tp] = .success(chunk)
                } catch {
                    out[e.tp] = .failure(error)
                }
            default:
                continue
            }
            if case .failure(let error) = out[e.tp] {
                logger.error("undecodable records", metadata: Self.metadata(e.tp, e.offset, error))
            }
        }
        return (out, compressed, decompressed)
    }

    /// The records at or after `fetchOffset` in compressed `records` (skipping control batches),
    /// while the room lasts.
    private func decodeCompressed(
        _ e: FetchPlanEntry, records: ByteBuffer, highWatermark: Int64, room: inout Int, decodedAny: inout Bool
    ) throws -> (DecodedChunk?, compressed: Int, decompressed: Int) {
        let out = RecordRun(capacity: 64)
        var compressed = 0
        var decompressed = 0
        let w = try walkWindow(records, from: e.offset, room: &room, decodedAny: &decodedAny) { batch in
            let footprint = try appendRecords(of: batch, tp: e.tp, from: e.offset, to: out)
            compressed += batch.bytes.readableBytes
            decompressed += footprint + RecordBatchHeader.size
            return footprint
        }
        guard w.sawBatch else { return (nil, 0, 0) }
        let chunk = DecodedChunk(tp: e.tp, epoch: e.epoch, records: out, nextOffset: w.next, bytes: w.footprint, highWatermark: highWatermark)
        return (chunk, compressed, decompressed)
    }

    /// Appends the batch's records at or after `fetchOffset`; returns its decoded footprint.
    private func appendRecords(of batch: RecordBatch, tp: TopicPartition, from fetchOffset: Int64, to out: RecordRun) throws -> Int {
        let h = batch.header
        if checkCRCs { try batch.verifyCRC() }
        var payload = try batch.uncompressedPayload()
        let n = Int(max(h.recordCount, 0))
        let footprint = payload.readableBytes + n * Self.recordOverhead
        let type = h.timestampType
        let topic = tp.topic
        let partition = tp.partition
        for _ in 0..<n {
            // Built from the parsed layout with no closure in between: the optimizer copied key,
            // value and headers out of a decoding closure's parameters (a retain and a release
            // each, per record) instead of moving them.
            let base = payload.readerIndex
            let (layout, length) = try Record.layout(of: payload)
            let offset = h.baseOffset &+ Int64(layout.offsetDelta)
            if offset >= fetchOffset {
                out.append(
                    ConsumerRecord(
                        topic: topic, partition: partition, offset: offset, timestamp: h.timestamp(delta: layout.timestampDelta),
                        timestampType: type,
                        key: layout.keyLength < 0 ? nil : payload.getSlice(at: base &+ layout.keyStart, length: layout.keyLength),
                        value: layout.valueLength < 0 ? nil : payload.getSlice(at: base &+ layout.valueStart, length: layout.valueLength),
                        headers: Record.headers(of: layout, in: payload), leaderEpoch: h.partitionLeaderEpoch))
            }
            payload.moveReaderIndex(forwardBy: length)
        }
        return footprint
    }

    static func metadata(_ tp: TopicPartition, _ offset: Int64, _ error: (any Error)? = nil) -> Logger.Metadata {
        var m: Logger.Metadata = [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.offset: "\(offset)"]
        if let error { m[BrookLogKey.error] = "\(error)" }
        return m
    }
}
