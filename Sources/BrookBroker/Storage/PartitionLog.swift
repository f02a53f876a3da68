#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import BrookProtocol
import NIOCore
import Synchronization

/// The durable log of one partition: a directory of segments named by base offset, as Kafka lays
/// them out, plus a checkpoint of the log start offset and recovery point.
///
/// Thread-safe. One mutex guards the in-memory state; appends (a `pwritev` into the page cache)
/// run under it, while reads and fsyncs only snapshot file references and sizes under it and do
/// their I/O outside, so a slow fsync or a large fetch never stalls producers. Structural changes
/// (retention, deleteRecords, truncate, close) are also serialized by a second lock, taken first,
/// so their file deletions cannot race one another.
///
/// Appends are not durable by themselves: call `flush()` or, with many producers, wait on a
/// `GroupCommitter`, which batches concurrent waiters into one fsync per round.
public final class PartitionLog: Sendable {
    /// The partition directory.
    public let directory: String
    let state: Mutex<LogState>
    /// Serializes structural operations and checkpoint writes. Lock order: admin, then state.
    let admin = Mutex<Void>(())
    let logger: Logger
    let clock: @Sendable () -> Int64

    static let checkpointFileName = "partition.checkpoint"
    static let cleanShutdownFileName = "clean_shutdown"

    /// Opens the log in `directory`, creating it if needed, and recovers it: after an unclean
    /// shutdown every segment from the one holding the recovery point on is rescanned, the torn
    /// or corrupt tail is cut off, and indexes are rebuilt; missing or corrupt indexes are rebuilt
    /// in any case.
    ///
    /// - Parameter clock: wall-clock milliseconds, injectable for tests.
    public init(
        directory: String,
        config: LogConfig = LogConfig(),
        logger: Logger = Logger(label: "brook.storage"),
        clock: (@Sendable () -> Int64)? = nil
    ) throws {
        let clock = clock ?? { currentTimeMillis() }
        var logger = logger
        logger[metadataKey: BrookLogKey.logDirectory] = "\(directory)"
        self.directory = directory
        self.logger = logger
        self.clock = clock
        let loaded = try LogLoader.load(directory: directory, config: config, logger: logger, now: clock())
        self.state = Mutex(loaded)
        try admin.withLock { _ in try writeCheckpointLocked(force: false) }
        // Only now is the on-disk state consistent without the marker: remove it durably, or a
        // crash after new appends would wrongly skip recovery.
        let marker = Sys.join(directory, Self.cleanShutdownFileName)
        if Sys.exists(marker) {
            try Sys.unlink(marker)
            try Sys.syncDirectory(directory)
        }
    }

    // MARK: state

    /// First offset still readable.
    public var logStartOffset: Int64 { state.withLock { $0.logStartOffset } }
    /// Offset the next appended record will get.
    public var logEndOffset: Int64 { state.withLock { $0.logEndOffset } }
    /// Every offset below this is fsynced (the recovery point).
    public var flushedOffset: Int64 { state.withLock { $0.flushedOffset } }
    /// Total bytes of all segments.
    public var size: Int { state.withLock { s in s.segments.reduce(0) { $0 + $1.size } } }
    public var segmentCount: Int { state.withLock { $0.segments.count } }
    /// Base offsets of the segments, oldest first.
    public var segmentBaseOffsets: [Int64] { state.withLock { s in s.segments.map(\.baseOffset) } }
    /// Number of fdatasync calls on segment and index files, for tests and metrics.
    public var fsyncCount: Int { state.withLock { $0.fsyncCount } }
    public var config: LogConfig { state.withLock { $0.config } }
    /// Whether an I/O failure took the log offline.
    public var isFailed: Bool { state.withLock { $0.failure != nil } }

    /// Runs `body` on the segments under the lock (tests inspect indexes this way).
    func withSegmentsForTesting<T: Sendable>(_ body: ([LogSegment]) throws -> T) rethrows -> T {
        try state.withLock { s in try body(s.segments) }
    }

    /// Applies new settings; they take effect on the next append, roll or retention pass.
    public func updateConfig(_ config: LogConfig) {
        state.withLock { $0.config = config }
    }

    // MARK: append

    /// Appends one or more complete v2 batches and assigns their offsets.
    ///
    /// Each batch's baseOffset is rewritten to the next offset (it is outside the CRC, so the
    /// rest of the bytes stay as received); the log advances by `lastOffsetDelta + 1` per batch.
    /// With `logAppendTime`, attribute bit 3 and maxTimestamp are set and the CRC recomputed.
    /// Only framing, magic and size are checked here: CRC and record validation are the caller's.
    /// Nothing is written if any batch is malformed.
    public func append(_ batches: ByteBuffer, logAppendTime: Int64? = nil) throws -> AppendInfo {
        let now = clock()
        return try batches.withUnsafeReadableBytes { raw in
            try state.withLock { s in
                try s.append(raw, logAppendTime: logAppendTime, now: now, logger: logger)
            }
        }
    }

    // MARK: read

    /// Whole batches starting with the one that contains `offset`.
    ///
    /// Reads up to `maxBytes`, but at least one whole batch when `minOneBatch` (Fetch v3+
    /// semantics, so a batch larger than the limit cannot stall a consumer), and only batches
    /// that end before `upperBound` (the high watermark; defaults to the log end). Continues into
    /// following segments while the budget allows. Empty at the log end.
    ///
    /// - Throws: `StorageError.offsetOutOfRange` outside `[logStartOffset, logEndOffset]`.
    public func read(
        from offset: Int64,
        maxBytes: Int,
        minOneBatch: Bool = true,
        upTo upperBound: Int64? = nil,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> ByteBuffer {
        let plan = try state.withLock { s in try s.readPlan(from: offset, maxBytes: maxBytes, upperBound: upperBound) }
        guard let plan else { return allocator.buffer(capacity: 0) }
        return try Self.execute(plan, maxBytes: maxBytes, minOneBatch: minOneBatch, allocator: allocator)
    }

    /// Snapshot of what a read may touch, taken under the lock.
    struct ReadPlan: Sendable {
        struct Part: Sendable {
            var file: FileRef
            var size: Int
        }
        var offset: Int64
        var endOffset: Int64
        var startPosition: Int
        var parts: [Part]
    }

    private static func execute(_ plan: ReadPlan, maxBytes: Int, minOneBatch: Bool, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var out = allocator.buffer(capacity: 0)
        var budget = max(0, maxBytes)
        for (k, part) in plan.parts.enumerated() {
            var pos = k == 0 ? plan.startPosition : 0
            var firstSize = 0
            if out.readableBytes == 0 {
                // Skip to the batch that holds `offset`; an index entry that does not land on a
                // batch boundary (corrupt index) falls back to a scan from the segment start.
                let target = plan.offset
                let located: (position: Int, header: BatchHeader)?
                do {
                    located = try LogSegment.findBatch(in: part.file, from: pos, end: part.size) { $0.lastOffset >= target }
                } catch StorageError.corrupt(_) where pos != 0 {
                    located = try LogSegment.findBatch(in: part.file, from: 0, end: part.size) { $0.lastOffset >= target }
                }
                guard let located else { continue }
                if located.header.lastOffset >= plan.endOffset { return out }
                pos = located.position
                firstSize = located.header.totalSize
            }
            let available = part.size - pos
            guard available > 0 else { continue }
            var want = min(available, budget)
            if out.readableBytes == 0 && minOneBatch { want = max(want, min(firstSize, available)) }
            guard want >= RecordBatchHeader.size else { break }
            let startIndex = out.writerIndex
            let got = try out.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { ptr in
                try part.file.read(into: ptr.baseAddress!, count: want, at: pos)
            }
            // Keep only complete batches below the upper bound.
            let kept = out.withUnsafeReadableBytes { raw -> (bytes: Int, stop: Bool) in
                let base = raw.baseAddress! + (startIndex - out.readerIndex)
                var walked = 0
                while got - walked >= RecordBatchHeader.size {
                    let h = BatchHeader(base + walked)
                    if !h.isWellFramed || h.totalSize > got - walked || h.lastOffset >= plan.endOffset {
                        return (walked, true)
                    }
                    walked += h.totalSize
                }
                return (walked, walked < got)
            }
            out.moveWriterIndex(to: startIndex + kept.bytes)
            budget -= kept.bytes
            if kept.stop || got < want || budget < RecordBatchHeader.size { break }
        }
        return out
    }

    // MARK: time lookups

    /// The first offset whose timestamp is >= `timestamp` (ListOffsets by time), with that
    /// record's timestamp; nil if every record is older.
    ///
    /// Record-exact for uncompressed and LogAppendTime batches. For a compressed CreateTime batch
    /// storage cannot see inside, so it answers the batch's first offset and max timestamp: an
    /// earlier offset, never a later one, so a consumer seeking there misses nothing.
    public func offset(forTimestamp timestamp: Int64) throws -> TimestampAndOffset? {
        let plan = try state.withLock { s in try s.timeLookupPlan(timestamp) }
        guard let plan else { return nil }
        let minOffset = plan.minOffset
        for (k, part) in plan.parts.enumerated() {
            let start = k == 0 ? plan.startPosition : 0
            let found: (position: Int, header: BatchHeader)?
            do {
                found = try LogSegment.findBatch(in: part.file, from: start, end: part.size) {
                    $0.maxTimestamp >= timestamp && $0.lastOffset >= minOffset
                }
            } catch StorageError.corrupt(_) where start != 0 {
                found = try LogSegment.findBatch(in: part.file, from: 0, end: part.size) {
                    $0.maxTimestamp >= timestamp && $0.lastOffset >= minOffset
                }
            }
            guard let (position, h) = found else { continue }
            let batchFirst = max(h.baseOffset, minOffset)
            if h.isLogAppendTime || h.isCompressed {
                return TimestampAndOffset(timestamp: h.maxTimestamp, offset: batchFirst)
            }
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: h.totalSize, alignment: 8)
            defer { bytes.deallocate() }
            let got = try part.file.read(into: bytes.baseAddress!, count: h.totalSize, at: position)
            if let r = BatchHeader.firstRecord(in: UnsafeRawBufferPointer(rebasing: bytes[0..<got]), atOrAfter: timestamp, minOffset: minOffset) {
                return TimestampAndOffset(timestamp: r.timestamp, offset: r.offset)
            }
            return TimestampAndOffset(timestamp: h.maxTimestamp, offset: batchFirst)
        }
        return nil
    }

    /// The largest timestamp in the log and the last offset of the batch carrying it
    /// (ListOffsets MAX_TIMESTAMP); nil when no batch has a timestamp.
    public func maxTimestampOffset() throws -> TimestampAndOffset? {
        try state.withLock { s in
            try s.checkOpen()
            var best: TimestampAndOffset? = nil
            for seg in s.segments where seg.maxTimestamp >= 0 && seg.offsetOfMaxTimestamp >= s.logStartOffset {
                if best == nil || seg.maxTimestamp > best!.timestamp {
                    best = TimestampAndOffset(timestamp: seg.maxTimestamp, offset: seg.offsetOfMaxTimestamp)
                }
            }
            return best
        }
    }

    // MARK: durability

    /// Fsyncs everything appended so far (or up to `offset`): the segment data, the indexes of
    /// sealed segments (active indexes are rebuilt by recovery instead), and the directory when
    /// segments were created. Advances `flushedOffset`. Concurrent appends continue meanwhile.
    ///
    /// An fsync failure takes the log offline (`StorageError.logFailed`): after a failed fsync the
    /// kernel may have dropped the dirty pages, so retrying could report success for lost data.
    public func flush(upTo offset: Int64? = nil) throws {
        let job = try state.withLock { s in try s.flushJob(upTo: offset) }
        guard let job else { return }
        do {
            for file in job.files { try file.syncData() }
            if job.syncDirectory { try Sys.syncDirectory(directory) }
        } catch {
            logger.critical("fsync failed; taking the log offline", metadata: [BrookLogKey.error: "\(error)"])
            state.withLock { s in
                s.failure = "\(error)"
                if job.syncDirectory { s.dirDirty = true }
            }
            throw StorageError.logFailed("\(error)")
        }
        state.withLock { s in s.completeFlush(job) }
    }

    /// Persists the log start offset and recovery point (atomically: temp file, fsync, rename).
    /// Cheap to call often: it only writes when either changed.
    public func checkpoint() throws {
        try admin.withLock { _ in try writeCheckpointLocked(force: false) }
    }

    /// Writes the checkpoint; the caller holds `admin`, which keeps checkpoint writes ordered.
    private func writeCheckpointLocked(force: Bool) throws {
        let snapshot = state.withLock { s -> (logStart: Int64, recoveryPoint: Int64, skip: Bool) in
            let unchanged = s.logStartOffset == s.checkpointedLogStart && s.flushedOffset == s.checkpointedRecoveryPoint
            let gone = s.closed && !s.closing
            return (s.logStartOffset, s.flushedOffset, gone || (unchanged && !force))
        }
        if snapshot.skip { return }
        try Checkpoint(logStartOffset: snapshot.logStart, recoveryPoint: snapshot.recoveryPoint)
            .write(to: Sys.join(directory, Self.checkpointFileName))
        state.withLock { s in
            s.checkpointedLogStart = snapshot.logStart
            s.checkpointedRecoveryPoint = snapshot.recoveryPoint
        }
    }

    // MARK: segments and retention

    /// Starts a new segment now (no-op when the active one is empty).
    public func roll() throws {
        let now = clock()
        try state.withLock { s in
            try s.checkWritable()
            if s.active.size > 0 { try s.roll(now: now) }
        }
    }

    /// One maintenance pass for a periodic timer: rolls an idle active segment older than
    /// `segment.ms`, applies retention, fsyncs sealed segments under `.os` (so recovery only
    /// rescans the active segment), and checkpoints.
    @discardableResult
    public func runMaintenance(now: Int64? = nil) throws -> MaintenanceResult {
        let now = now ?? clock()
        var result = MaintenanceResult()
        result.rolled = try state.withLock { s in
            guard !s.closed, s.failure == nil else { return false }
            if s.active.size > 0 && now - s.active.rollStartMs > s.config.segmentMs {
                try s.roll(now: now)
                return true
            }
            return false
        }
        let retention = try applyRetention(now: now)
        result.deletedSegments = retention.deletedSegments
        result.deletedBytes = retention.deletedBytes
        let activeBase: Int64? = state.withLock { s in
            s.closed || s.failure != nil || s.flushedOffset >= s.active.baseOffset ? nil : s.active.baseOffset
        }
        if let activeBase { try flush(upTo: activeBase) }
        // After the flush: only fsynced segments are compacted.
        if config.compact { result.compaction = try compact(now: now) }
        try checkpoint()
        return result
    }

    /// Deletes whole sealed segments that are past retention: older than `retentionMs` by their
    /// newest timestamp, or the oldest ones while the log exceeds `retentionBytes`, and any that
    /// lie wholly below the log start offset. Never the active segment. Advances the log start.
    @discardableResult
    public func applyRetention(now: Int64? = nil) throws -> MaintenanceResult {
        let now = now ?? clock()
        return try admin.withLock { _ in
            let removed = try state.withLock { s in try s.removeRetainedSegments(now: now) }
            var result = MaintenanceResult()
            guard !removed.paths.isEmpty else { return result }
            // The checkpoint goes first: a crash before the unlinks then drops these segments on
            // load (they are below the log start) instead of reviving them.
            try writeCheckpointLocked(force: false)
            for path in removed.paths { try Sys.unlink(path) }
            result.deletedSegments = removed.segments
            result.deletedBytes = removed.bytes
            logger.info("retention deleted segments", metadata: [BrookLogKey.segments: "\(removed.segments)", BrookLogKey.bytes: "\(removed.bytes)"])
            return result
        }
    }

    /// Advances the log start offset to `offset` (DeleteRecords), durably, and deletes segments
    /// wholly below it. Returns the new log start offset (the low watermark).
    ///
    /// - Throws: `StorageError.offsetOutOfRange` if `offset` is beyond the log end.
    @discardableResult
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let now = clock()
        return try admin.withLock { _ in
            let (newStart, paths) = try state.withLock { s in try s.advanceLogStart(to: offset, now: now) }
            try writeCheckpointLocked(force: false)
            for path in paths { try Sys.unlink(path) }
            return newStart
        }
    }

    /// Removes every batch that holds an offset >= `offset`. Truncation is per batch, so the new
    /// log end is the base offset of the batch that contained `offset` (<= `offset`). Truncating
    /// to or below the first segment empties the log and restarts it at `offset`.
    public func truncate(to offset: Int64) throws {
        let now = clock()
        try admin.withLock { _ in
            try state.withLock { s in try s.truncate(to: offset, now: now, logger: logger) }
            try writeCheckpointLocked(force: false)
        }
    }

    // MARK: lifecycle

    /// Clean shutdown: fsyncs everything, trims the active indexes, checkpoints the recovery
    /// point at the log end and leaves a marker so the next open skips the recovery scan.
    /// Further calls on this instance throw `StorageError.logClosed`.
    public func close() throws {
        try admin.withLock { _ in
            let job = try state.withLock { s -> LogState.CloseJob? in try s.beginClose() }
            guard let job else { return }
            do {
                for file in job.files { try file.syncData() }
                state.withLock { s in
                    s.flushedOffset = job.logEndOffset
                    s.fsyncCount += job.files.count
                }
                try writeCheckpointLocked(force: false)
                // Segment files' directory entries are durable before the marker vouches for them.
                try Sys.syncDirectory(directory)
                try Sys.createEmptyFile(Sys.join(directory, Self.cleanShutdownFileName))
                try Sys.syncDirectory(directory)
            } catch {
                state.withLock { $0.finishClose() }
                throw error
            }
            state.withLock { $0.finishClose() }
        }
    }

    /// Closes the log and removes its directory (topic deletion).
    public func delete() throws {
        try admin.withLock { _ in
            detachLocked()
            try Sys.removeTree(directory)
            try? Sys.syncDirectory(Sys.parentDirectory(directory))
        }
    }

    /// Stops all use of the files without flushing, so the directory can be renamed and removed.
    func detachForDeletion() {
        admin.withLock { _ in detachLocked() }
    }

    private func detachLocked() {
        state.withLock { s in
            s.closed = true
            s.finishClose()
        }
    }
}

// MARK: - mutable state

/// Everything `PartitionLog` guards with its mutex. Methods assume the lock is held.
///
/// `@unchecked Sendable` because it is only ever reached through `PartitionLog.state`'s
/// `Mutex`: the conformance lets `withLock` bodies pass the caller's buffer pointers in without
/// region-isolation merging them into the mutex's region, which the compiler cannot prove safe.
final class LogState: @unchecked Sendable {
    var config: LogConfig
    let directory: String
    /// Oldest first; the last is the active segment. Never empty while open.
    var segments: [LogSegment]
    var logStartOffset: Int64
    var flushedOffset: Int64
    var checkpointedLogStart: Int64 = -1
    /// Sealed data below this was compacted by this process already (in memory: after a restart
    /// the first pass simply cleans again).
    var cleanedUpTo: Int64 = -1
    var checkpointedRecoveryPoint: Int64 = -1
    var fsyncCount = 0
    /// A segment file was created since the last directory fsync.
    var dirDirty = false
    /// Bumped by truncation so a flush that raced it does not advance `flushedOffset`.
    var truncations = 0
    var closed = false
    var closing = false
    var failure: String?

    // Scratch reused by every append, so the append path does not allocate.
    private var headerScratch: UnsafeMutableRawPointer
    private var iovecs: UnsafeMutableBufferPointer<iovec>
    private var scratchBatches: Int
    private var batchMeta: [BatchMeta] = []

    struct BatchMeta {
        var position: Int
        var size: Int
        var lastOffsetDelta: Int32
        var maxTimestamp: Int64
    }

    init(config: LogConfig, directory: String, segments: [LogSegment], logStartOffset: Int64, flushedOffset: Int64) {
        self.config = config
        self.directory = directory
        self.segments = segments
        self.logStartOffset = logStartOffset
        self.flushedOffset = flushedOffset
        scratchBatches = 64
        headerScratch = .allocate(byteCount: 64 * RecordBatchHeader.size, alignment: 8)
        iovecs = .allocate(capacity: 128)
        batchMeta.reserveCapacity(64)
    }

    deinit {
        headerScratch.deallocate()
        iovecs.deallocate()
    }

    var active: LogSegment { segments[segments.count - 1] }
    var logEndOffset: Int64 { active.nextOffset }

    func checkOpen() throws {
        if closed { throw StorageError.logClosed }
    }

    func checkWritable() throws {
        if closed { throw StorageError.logClosed }
        if let failure { throw StorageError.logFailed(failure) }
    }

    /// Index of the segment that would hold `offset`: the last one whose base is <= it.
    func segmentIndex(for offset: Int64) -> Int {
        var lo = 0
        var hi = segments.count - 1
        var found = 0
        while lo <= hi {
            let mid = (lo + hi) / 2
            if segments[mid].baseOffset <= offset {
                found = mid
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return found
    }

    // MARK: append

    func append(_ raw: UnsafeRawBufferPointer, logAppendTime: Int64?, now: Int64, logger: Logger) throws -> AppendInfo {
        try checkWritable()
        guard let base = raw.baseAddress, raw.count > 0 else { throw StorageError.invalidBatch("no batches") }
        guard raw.count <= Int(Int32.max) - RecordBatchHeader.size else {
            throw StorageError.invalidBatch("append of \(raw.count) bytes is too large")
        }
        // Frame every batch before writing anything, so a bad one rejects the whole append.
        batchMeta.removeAll(keepingCapacity: true)
        var pos = 0
        var offsetCount: Int64 = 0
        var records = 0
        while pos < raw.count {
            guard raw.count - pos >= RecordBatchHeader.size else {
                throw StorageError.invalidBatch("\(raw.count - pos) trailing bytes after batch \(batchMeta.count)")
            }
            let h = BatchHeader(base + pos)
            guard h.magic == RecordBatchHeader.currentMagic else { throw StorageError.invalidBatch("magic \(h.magic), expected 2") }
            guard h.isWellFramed, h.totalSize <= raw.count - pos else {
                throw StorageError.invalidBatch("batch \(batchMeta.count) has bad length \(h.batchLength) or lastOffsetDelta \(h.lastOffsetDelta)")
            }
            guard h.totalSize <= config.maxMessageBytes else {
                throw StorageError.recordBatchTooLarge(size: h.totalSize, max: config.maxMessageBytes)
            }
            batchMeta.append(BatchMeta(position: pos, size: h.totalSize, lastOffsetDelta: h.lastOffsetDelta, maxTimestamp: h.maxTimestamp))
            offsetCount += Int64(h.lastOffsetDelta) + 1
            records += Int(max(0, h.recordCount))
            pos += h.totalSize
        }
        guard offsetCount - 1 <= Int64(Int32.max) else {
            // Relative offsets in the indexes are 32-bit; no real producer gets near this.
            throw StorageError.invalidBatch("append spans \(offsetCount) offsets")
        }
        let firstOffset = logEndOffset
        let lastOffset = firstOffset + offsetCount - 1
        try maybeRoll(appendBytes: raw.count, lastOffset: lastOffset, now: now)
        let segment = active
        let position = segment.size
        if segment.size == 0 { segment.rollStartMs = now }

        // Patched headers go to scratch; bodies are written straight from the caller's buffer.
        ensureScratch(batches: batchMeta.count)
        var next = firstOffset
        for (i, m) in batchMeta.enumerated() {
            let header = headerScratch + i * RecordBatchHeader.size
            header.copyMemory(from: base + m.position, byteCount: RecordBatchHeader.size)
            BigEndian.store(header, RecordBatchHeader.baseOffsetOffset, next)
            let body = base + m.position + RecordBatchHeader.size
            let bodySize = m.size - RecordBatchHeader.size
            if let logAppendTime {
                let attributes: Int16 = BigEndian.load(header, RecordBatchHeader.attributesOffset)
                BigEndian.store(header, RecordBatchHeader.attributesOffset, attributes | RecordBatchHeader.timestampTypeBit)
                BigEndian.store(header, RecordBatchHeader.maxTimestampOffset, logAppendTime)
                let headCRC = CRC32CBridge.checksum(UnsafeRawPointer(header) + RecordBatchHeader.attributesOffset, count: RecordBatchHeader.size - RecordBatchHeader.attributesOffset)
                let crc = CRC32CBridge.checksum(body, count: bodySize, continuing: headCRC)
                BigEndian.store(header, RecordBatchHeader.crcOffset, crc)
            }
            iovecs[2 * i] = iovec(iov_base: header, iov_len: RecordBatchHeader.size)
            iovecs[2 * i + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: body), iov_len: bodySize)
            next += Int64(m.lastOffsetDelta) + 1
        }
        do {
            try segment.log.write(UnsafeMutableBufferPointer(rebasing: iovecs[0..<(2 * batchMeta.count)]), totalBytes: raw.count, at: position)
        } catch {
            // Cut off a partial write so the file never holds a torn batch we acknowledged nothing for.
            do {
                try segment.log.truncate(to: position)
            } catch {
                failure = "could not undo a failed write: \(error)"
            }
            throw error
        }

        var batchPosition = position
        next = firstOffset
        do {
            for m in batchMeta {
                let batchLast = next + Int64(m.lastOffsetDelta)
                try segment.didAppendBatch(
                    lastOffset: batchLast, maxTimestamp: logAppendTime ?? m.maxTimestamp,
                    position: batchPosition, size: m.size, indexIntervalBytes: config.indexIntervalBytes)
                batchPosition += m.size
                next = batchLast + 1
            }
        } catch {
            // The data is written but the index could not grow: state is no longer trustworthy.
            failure = "index update failed: \(error)"
            throw StorageError.logFailed(failure!)
        }
        segment.size = position + raw.count
        segment.nextOffset = lastOffset + 1
        return AppendInfo(
            firstOffset: firstOffset, lastOffset: lastOffset, logEndOffset: lastOffset + 1,
            logStartOffset: logStartOffset, logAppendTime: logAppendTime ?? -1,
            batchCount: batchMeta.count, recordCount: records, bytes: raw.count)
    }

    private func ensureScratch(batches: Int) {
        guard batches > scratchBatches else { return }
        var n = scratchBatches
        while n < batches { n *= 2 }
        headerScratch.deallocate()
        iovecs.deallocate()
        headerScratch = .allocate(byteCount: n * RecordBatchHeader.size, alignment: 8)
        iovecs = .allocate(capacity: 2 * n)
        scratchBatches = n
    }

    /// Kafka's roll rules: a non-empty segment rolls when the append would overflow
    /// `segment.bytes`, when it is older than `segment.ms`, or when relative offsets would no
    /// longer fit the 32-bit index fields.
    private func maybeRoll(appendBytes: Int, lastOffset: Int64, now: Int64) throws {
        let segment = active
        guard segment.size > 0 else { return }
        if segment.size + appendBytes > config.effectiveSegmentBytes
            || now - segment.rollStartMs > config.segmentMs
            || lastOffset - segment.baseOffset > Int64(Int32.max) {
            try roll(now: now)
        }
    }

    func roll(now: Int64) throws {
        let old = active
        do {
            try old.seal()
            let segment = try LogSegment.create(directory: directory, baseOffset: old.nextOffset, config: config, now: now)
            segments.append(segment)
            dirDirty = true
        } catch {
            failure = "segment roll failed: \(error)"
            throw StorageError.logFailed(failure!)
        }
    }

    // MARK: read plans

    func readPlan(from offset: Int64, maxBytes: Int, upperBound: Int64?) throws -> PartitionLog.ReadPlan? {
        try checkOpen()
        let end = min(upperBound ?? logEndOffset, logEndOffset)
        guard offset >= logStartOffset && offset <= logEndOffset else {
            throw StorageError.offsetOutOfRange(requested: offset, logStartOffset: logStartOffset, logEndOffset: logEndOffset)
        }
        guard offset < end else { return nil }
        let i = segmentIndex(for: offset)
        let start = segments[i].offsetIndex.lookup(offset).position
        var parts = [PartitionLog.ReadPlan.Part(file: segments[i].log, size: segments[i].size)]
        var covered = segments[i].size - start
        var j = i + 1
        while j < segments.count && covered < maxBytes {
            parts.append(.init(file: segments[j].log, size: segments[j].size))
            covered += segments[j].size
            j += 1
        }
        return PartitionLog.ReadPlan(offset: offset, endOffset: end, startPosition: start, parts: parts)
    }

    struct TimeLookupPlan: Sendable {
        var minOffset: Int64
        var startPosition: Int
        var parts: [PartitionLog.ReadPlan.Part]
    }

    func timeLookupPlan(_ timestamp: Int64) throws -> TimeLookupPlan? {
        try checkOpen()
        let first = segmentIndex(for: logStartOffset)
        for i in first..<segments.count where segments[i].maxTimestamp >= timestamp {
            let seg = segments[i]
            // Time index: largest max-so-far <= target, so every batch before its offset is older.
            var from = seg.timeIndex.lookup(timestamp)?.offset ?? seg.baseOffset
            from = max(from, logStartOffset)
            let start = seg.offsetIndex.lookup(from).position
            let parts = segments[i...].map { PartitionLog.ReadPlan.Part(file: $0.log, size: $0.size) }
            return TimeLookupPlan(minOffset: logStartOffset, startPosition: start, parts: parts)
        }
        return nil
    }

    // MARK: flush

    struct FlushJob: Sendable {
        var target: Int64
        var files: [FileRef]
        var syncDirectory: Bool
        var truncations: Int
        var sealedBases: [Int64]
    }

    func flushJob(upTo offset: Int64?) throws -> FlushJob? {
        try checkOpen()
        if let failure { throw StorageError.logFailed(failure) }
        let target = min(offset ?? logEndOffset, logEndOffset)
        var files: [FileRef] = []
        var sealedBases: [Int64] = []
        for (i, seg) in segments.enumerated() {
            let sealed = i < segments.count - 1
            let hasUnflushedData = seg.nextOffset > flushedOffset && seg.baseOffset < target && seg.size > 0
            let needsIndexSync = sealed && !seg.indexesSynced && seg.nextOffset <= target
            if hasUnflushedData { files.append(seg.log) }
            if needsIndexSync {
                files.append(seg.offsetIndex.storage.file)
                files.append(seg.timeIndex.storage.file)
                sealedBases.append(seg.baseOffset)
            }
        }
        let syncDirectory = dirDirty
        if files.isEmpty && !syncDirectory {
            if target > flushedOffset { flushedOffset = target }
            return nil
        }
        dirDirty = false
        return FlushJob(target: target, files: files, syncDirectory: syncDirectory, truncations: truncations, sealedBases: sealedBases)
    }

    func completeFlush(_ job: FlushJob) {
        fsyncCount += job.files.count
        guard truncations == job.truncations else { return }
        if job.target > flushedOffset { flushedOffset = job.target }
        for seg in segments where job.sealedBases.contains(seg.baseOffset) { seg.indexesSynced = true }
    }

    // MARK: retention

    struct Removal: Sendable {
        var paths: [String] = []
        var segments = 0
        var bytes = 0
    }

    /// Detaches removed segments (unmapping their indexes); the caller unlinks the paths after
    /// checkpointing. Readers holding their `FileRef`s keep reading the unlinked files.
    private func detach(_ seg: LogSegment, into removal: inout Removal) {
        seg.close()
        removal.paths += [seg.logPath, seg.indexPath, seg.timeIndexPath]
        removal.segments += 1
        removal.bytes += seg.size
    }

    func removeRetainedSegments(now: Int64) throws -> Removal {
        try checkOpen()
        var removal = Removal()
        let total = segments.reduce(0) { $0 + $1.size }
        var sizeExcess = config.retentionBytes >= 0 ? Int64(total) - config.retentionBytes : 0
        while segments.count > 1 {
            let seg = segments[0]
            let belowStart = segments[1].baseOffset <= logStartOffset
            let expired = config.retentionMs >= 0 && now - seg.largestTimestamp > config.retentionMs
            let oversize = config.retentionBytes >= 0 && sizeExcess - Int64(seg.size) >= 0
            guard belowStart || expired || oversize else { break }
            segments.removeFirst()
            detach(seg, into: &removal)
            sizeExcess -= Int64(seg.size)
        }
        if segments[0].baseOffset > logStartOffset { logStartOffset = segments[0].baseOffset }
        return removal
    }

    func advanceLogStart(to offset: Int64, now: Int64) throws -> (Int64, [String]) {
        try checkWritable()
        guard offset <= logEndOffset, offset >= 0 else {
            throw StorageError.offsetOutOfRange(requested: offset, logStartOffset: logStartOffset, logEndOffset: logEndOffset)
        }
        guard offset > logStartOffset else { return (logStartOffset, []) }
        logStartOffset = offset
        // Everything is deleted: roll so the old active segment can go too.
        if offset == logEndOffset && active.size > 0 { try roll(now: now) }
        var removal = Removal()
        while segments.count > 1 && segments[1].baseOffset <= logStartOffset {
            let seg = segments.removeFirst()
            detach(seg, into: &removal)
        }
        return (logStartOffset, removal.paths)
    }

    // MARK: truncation

    func truncate(to offset: Int64, now: Int64, logger: Logger) throws {
        try checkWritable()
        guard offset < logEndOffset else { return }
        let target = max(offset, 0)
        do {
            if target <= segments[0].baseOffset {
                // Nothing survives: start over at `target`. Old files go before the new segment,
                // which may reuse a name.
                for seg in segments { try seg.deleteFiles() }
                segments = [try LogSegment.create(directory: directory, baseOffset: target, config: config, now: now)]
                logStartOffset = target
            } else {
                while let last = segments.last, last.baseOffset >= target {
                    segments.removeLast()
                    try last.deleteFiles()
                }
                let seg = active
                let start = seg.offsetIndex.lookup(target).position
                let found = try LogSegment.findBatch(in: seg.log, from: start, end: seg.size) { $0.lastOffset >= target }
                if let found {
                    try seg.log.truncate(to: found.position)
                    try seg.log.syncData()
                    fsyncCount += 1
                }
                try seg.recover(config: config, logger: logger)
                try seg.makeActive(config: config)
                logStartOffset = min(logStartOffset, logEndOffset)
            }
            flushedOffset = min(flushedOffset, logEndOffset)
            truncations += 1
            dirDirty = true
            logger.info("log truncated", metadata: [BrookLogKey.requestedOffset: "\(offset)", BrookLogKey.logEndOffset: "\(logEndOffset)"])
        } catch {
            failure = "truncation failed: \(error)"
            throw StorageError.logFailed(failure!)
        }
    }

    // MARK: close

    struct CloseJob: Sendable {
        var files: [FileRef]
        var logEndOffset: Int64
    }

    /// Stops writes and trims the active indexes; returns what must be fsynced.
    func beginClose() throws -> CloseJob? {
        if closed { return nil }
        closed = true
        if let failure {
            finishClose()
            throw StorageError.logFailed(failure)
        }
        closing = true
        try active.offsetIndex.storage.seal()
        try active.timeIndex.storage.seal()
        var files: [FileRef] = []
        for (i, seg) in segments.enumerated() {
            let isActive = i == segments.count - 1
            if seg.nextOffset > flushedOffset && seg.size > 0 { files.append(seg.log) }
            if isActive || !seg.indexesSynced {
                files.append(seg.offsetIndex.storage.file)
                files.append(seg.timeIndex.storage.file)
            }
        }
        return CloseJob(files: files, logEndOffset: logEndOffset)
    }

    func finishClose() {
        closing = false
        for seg in segments { seg.close() }
    }
}

/// Bridges pointer+count to BrookProtocol's buffer-based CRC API.
enum CRC32CBridge {
    @inline(__always)
    static func checksum(_ p: UnsafeRawPointer, count: Int, continuing crc: UInt32 = 0) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: count), continuing: crc)
    }
}
