import BrookProtocol
import NIOCore

/// What one compaction pass did.
public struct CompactionResult: Sendable, Equatable {
    public var segmentsRewritten = 0
    public var recordsRemoved = 0
    public var bytesBefore = 0
    public var bytesAfter = 0
    public init() {}
}

/// Log compaction for topics with `cleanup.policy=compact`, as Kafka does it: in sealed
/// segments only the latest record of each key is kept; offsets never change (batches keep
/// their base offset and offset span, so consumers see gaps, and the next segment still
/// continues the previous one); tombstones are dropped once older than `delete.retention.ms`.
///
/// Crash safety: a rewritten segment is written to `<base>.log.cleaned` and fsynced; the old
/// indexes are then removed, and the cleaned file renamed over the log (atomic). A crash leaves
/// either the old or the new log, a `.cleaned` leftover (deleted on load) and at worst missing
/// indexes (rebuilt on load).
enum LogCleaner {
    static let cleanedSuffix = ".cleaned"

    struct SegmentRef {
        var base: Int64
        var file: FileRef
        var size: Int
        var path: String
    }

    /// Reads a whole sealed segment (its size does not change any more).
    static func readAll(_ seg: SegmentRef) throws -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: seg.size)
        var done = 0
        try buf.writeWithUnsafeMutableBytes(minimumWritableBytes: seg.size) { raw in
            while done < seg.size {
                let n = try seg.file.read(into: raw.baseAddress! + done, count: seg.size - done, at: done)
                if n == 0 { break }
                done += n
            }
            return done
        }
        return buf
    }

    /// The latest offset of every key in `segments`.
    static func latestOffsets(_ segments: [SegmentRef]) throws -> [[UInt8]: Int64] {
        var latest: [[UInt8]: Int64] = [:]
        for seg in segments {
            var batches = RecordBatchIterator(try readAll(seg))
            while let batch = try batches.next() {
                if batch.header.isControl { continue }
                try batch.forEachRecord { r in
                    if let key = r.key { latest[Array(key)] = batch.header.baseOffset &+ Int64(r.offsetDelta) }
                }
            }
        }
        return latest
    }

    /// The segment's bytes without superseded records and expired tombstones, or nil if nothing
    /// would change. The segment's last batch is always kept (possibly empty) so the segment
    /// still ends where it did.
    static func rewrite(_ seg: SegmentRef, latest: [[UInt8]: Int64], tombstoneHorizon: Int64, result: inout CompactionResult) throws -> ByteBuffer? {
        let data = try readAll(seg)
        let batches = try RecordBatch.batches(in: data)
        var out = ByteBufferAllocator().buffer(capacity: data.readableBytes)
        var removed = 0
        for (i, batch) in batches.enumerated() {
            let h = batch.header
            if h.isControl || h.isTransactional {
                out.writeImmutableBuffer(batch.bytes)
                continue
            }
            let records = try batch.decodeRecords()
            let keep = records.filter { r in
                guard let key = r.key else { return true }  // keyless records: nothing supersedes them
                let offset = h.baseOffset &+ Int64(r.offsetDelta)
                guard latest[Array(key.readableBytesView)] == offset else { return false }
                if r.value == nil && batch.timestamp(of: r) < tombstoneHorizon { return false }
                return true
            }
            if keep.count == records.count {
                out.writeImmutableBuffer(batch.bytes)
                continue
            }
            removed += records.count - keep.count
            if keep.isEmpty && i != batches.count - 1 { continue }
            var b = RecordBatchBuilder(
                codec: try h.codec, baseOffset: h.baseOffset, partitionLeaderEpoch: h.partitionLeaderEpoch,
                producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence,
                baseTimestamp: h.baseTimestamp, logAppendTime: h.timestampType == .logAppendTime ? h.maxTimestamp : nil)
            b.preservedLastOffsetDelta = h.lastOffsetDelta
            for r in keep { b.append(r) }
            var rebuilt = try b.finish()
            out.writeBuffer(&rebuilt)
        }
        guard removed > 0 else { return nil }
        result.recordsRemoved += removed
        return out
    }
}

extension PartitionLog {
    /// One compaction pass over the sealed, fsynced segments (the active one is never touched).
    /// Cheap when nothing new was sealed since the last pass. Called by `runMaintenance` for
    /// logs whose config says `compact`.
    @discardableResult
    public func compact(now: Int64? = nil) throws -> CompactionResult {
        let now = now ?? clock()
        return try admin.withLock { _ in
            let snapshot: (segments: [LogCleaner.SegmentRef], horizon: Int64, end: Int64)? = try state.withLock { s in
                try s.checkWritable()
                let sealed = s.segments.dropLast().filter { $0.nextOffset <= s.flushedOffset }
                guard let last = sealed.last, last.nextOffset > s.cleanedUpTo else { return nil }
                return (sealed.map { .init(base: $0.baseOffset, file: $0.log, size: $0.size, path: $0.logPath) },
                        now - s.config.deleteRetentionMs, last.nextOffset)
            }
            guard let snapshot else { return CompactionResult() }
            var result = CompactionResult()
            let latest = try LogCleaner.latestOffsets(snapshot.segments)
            for seg in snapshot.segments {
                guard let cleaned = try LogCleaner.rewrite(seg, latest: latest, tombstoneHorizon: snapshot.horizon, result: &result) else { continue }
                let tmp = seg.path + LogCleaner.cleanedSuffix
                do {
                    let file = try FileRef(path: tmp, create: true, truncate: true)
                    try cleaned.withUnsafeReadableBytes { raw in try file.write(raw.baseAddress!, count: raw.count, at: 0) }
                    try file.syncData()
                }
                try state.withLock { s in
                    // Segments only disappear under `admin`, which this pass holds.
                    guard let i = s.segments.firstIndex(where: { $0.baseOffset == seg.base }), i < s.segments.count - 1 else {
                        try Sys.unlink(tmp)
                        return
                    }
                    let old = s.segments[i]
                    // Indexes first: a crash before the rename then just rebuilds them for the old log.
                    old.close()
                    try Sys.unlink(old.indexPath)
                    try Sys.unlink(old.timeIndexPath)
                    try Sys.syncDirectory(directory)
                    try Sys.rename(tmp, old.logPath)
                    try Sys.syncDirectory(directory)
                    // Readers holding the old file descriptor keep reading the old bytes.
                    let (fresh, _) = try LogSegment.open(directory: directory, baseOffset: seg.base, upperBound: old.nextOffset)
                    _ = try fresh.recover(config: s.config, logger: logger)
                    fresh.nextOffset = old.nextOffset
                    try fresh.seal()
                    try fresh.offsetIndex.storage.file.syncData()
                    try fresh.timeIndex.storage.file.syncData()
                    fresh.indexesSynced = true
                    s.segments[i] = fresh
                }
                result.segmentsRewritten += 1
                result.bytesBefore += seg.size
                result.bytesAfter += cleaned.readableBytes
            }
            state.withLock { $0.cleanedUpTo = snapshot.end }
            if result.segmentsRewritten > 0 {
                logger.info("compacted", metadata: [
                    BrookLogKey.segments: "\(result.segmentsRewritten)", BrookLogKey.recordsRemoved: "\(result.recordsRemoved)",
                    BrookLogKey.bytesBefore: "\(result.bytesBefore)", BrookLogKey.bytesAfter: "\(result.bytesAfter)",
                ])
            }
            return result
        }
    }
}
