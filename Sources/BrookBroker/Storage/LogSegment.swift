#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import BrookProtocol
import Logging

/// One segment of a partition log: `<base>.log` holding batches back to back, plus its sparse
/// `<base>.index` and `<base>.timeindex`.
///
/// Mutable and not thread-safe: only `PartitionLog` touches it, under its lock. Readers outside
/// the lock use the `log` `FileRef` and a size captured under the lock.
final class LogSegment {
    let baseOffset: Int64
    let directory: String
    let log: FileRef
    private(set) var offsetIndex: OffsetIndex
    private(set) var timeIndex: TimeIndex
    /// Bytes of valid batches; appends go here.
    var size: Int
    /// Offset after the last batch (== baseOffset when empty).
    var nextOffset: Int64
    var maxTimestamp: Int64 = -1
    var offsetOfMaxTimestamp: Int64
    private var bytesSinceLastIndexEntry = 0
    /// When the segment started receiving data, for `segment.ms` rolls: the wall clock at the
    /// first append, or after a restart the first batch's timestamp (the file's mtime if none).
    var rollStartMs: Int64
    /// Whether the indexes of this (sealed) segment have been fsynced.
    var indexesSynced = false

    static let logSuffix = ".log"
    static let indexSuffix = ".index"
    static let timeIndexSuffix = ".timeindex"

    /// Kafka's file naming: the base offset as 20 zero-padded digits, so names sort by offset.
    static func fileName(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The base offset encoded in a segment file name, if `name` is `<20 digits><suffix>`.
    static func baseOffset(fromFileName name: String, suffix: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.dropLast(suffix.count)
        guard stem.count == 20, stem.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(stem)
    }

    var logPath: String { Sys.join(directory, Self.fileName(baseOffset, Self.logSuffix)) }
    var indexPath: String { Sys.join(directory, Self.fileName(baseOffset, Self.indexSuffix)) }
    var timeIndexPath: String { Sys.join(directory, Self.fileName(baseOffset, Self.timeIndexSuffix)) }

    private init(baseOffset: Int64, directory: String, log: FileRef, offsetIndex: OffsetIndex, timeIndex: TimeIndex, size: Int, rollStartMs: Int64) {
        self.baseOffset = baseOffset
        self.directory = directory
        self.log = log
        self.offsetIndex = offsetIndex
        self.timeIndex = timeIndex
        self.size = size
        self.nextOffset = baseOffset
        self.offsetOfMaxTimestamp = baseOffset
        self.rollStartMs = rollStartMs
    }

    /// Capacity to preallocate for an active segment's indexes (sparse, so cheap), grown on demand.
    static func indexCapacity(segmentBytes: Int, indexIntervalBytes: Int) -> Int {
        min(segmentBytes / max(indexIntervalBytes, 1) + 2, 1 << 20)
    }

    /// Creates an empty active segment, replacing stale files of the same name.
    static func create(directory: String, baseOffset: Int64, config: LogConfig, now: Int64) throws -> LogSegment {
        let logFile = try FileRef(path: Sys.join(directory, fileName(baseOffset, logSuffix)), create: true, truncate: true)
        let capacity = indexCapacity(segmentBytes: config.segmentBytes, indexIntervalBytes: config.indexIntervalBytes)
        let oi = try MappedIndex(creating: Sys.join(directory, fileName(baseOffset, indexSuffix)), entrySize: OffsetIndex.entrySize, capacityEntries: capacity)
        let ti = try MappedIndex(creating: Sys.join(directory, fileName(baseOffset, timeIndexSuffix)), entrySize: TimeIndex.entrySize, capacityEntries: capacity)
        return LogSegment(
            baseOffset: baseOffset, directory: directory, log: logFile,
            offsetIndex: OffsetIndex(baseOffset: baseOffset, storage: oi),
            timeIndex: TimeIndex(baseOffset: baseOffset, storage: ti), size: 0, rollStartMs: now)
    }

    /// Opens an existing segment. Loads its indexes if present and sane (`upperBound` is the next
    /// segment's base offset, or nil for the last segment); otherwise `needsRecovery` is set and
    /// the caller must `recover` before use.
    static func open(directory: String, baseOffset: Int64, upperBound: Int64?) throws -> (segment: LogSegment, needsRecovery: Bool) {
        let logFile = try FileRef(path: Sys.join(directory, fileName(baseOffset, logSuffix)))
        let size = try logFile.size()
        let maxOffset = (upperBound ?? Int64.max) - 1
        var sane = true
        var oi: MappedIndex? = nil
        var ti: MappedIndex? = nil
        do {
            oi = try MappedIndex(existing: Sys.join(directory, fileName(baseOffset, indexSuffix)), entrySize: OffsetIndex.entrySize)
            ti = try MappedIndex(existing: Sys.join(directory, fileName(baseOffset, timeIndexSuffix)), entrySize: TimeIndex.entrySize)
        } catch {
            sane = false
        }
        let offsetIndex: OffsetIndex
        let timeIndex: TimeIndex
        if sane, let oi, let ti {
            offsetIndex = OffsetIndex(baseOffset: baseOffset, storage: oi)
            timeIndex = TimeIndex(baseOffset: baseOffset, storage: ti)
            sane = offsetIndex.isSane(logSize: size, maxOffset: maxOffset) && timeIndex.isSane(maxOffset: maxOffset)
                && (size > 0 || offsetIndex.count == 0)
        } else {
            // Placeholders replaced by `recover`, which rebuilds both files.
            let empty = try MappedIndex(creating: Sys.join(directory, fileName(baseOffset, indexSuffix)), entrySize: OffsetIndex.entrySize, capacityEntries: 0)
            let emptyTime = try MappedIndex(creating: Sys.join(directory, fileName(baseOffset, timeIndexSuffix)), entrySize: TimeIndex.entrySize, capacityEntries: 0)
            offsetIndex = OffsetIndex(baseOffset: baseOffset, storage: empty)
            timeIndex = TimeIndex(baseOffset: baseOffset, storage: emptyTime)
            sane = false
        }
        let segment = LogSegment(
            baseOffset: baseOffset, directory: directory, log: logFile, offsetIndex: offsetIndex,
            timeIndex: timeIndex, size: size, rollStartMs: logFile.modificationTimeMs())
        if let upperBound { segment.nextOffset = upperBound }
        if let last = timeIndex.lastEntry {
            segment.maxTimestamp = last.timestamp
            segment.offsetOfMaxTimestamp = last.offset
        }
        segment.indexesSynced = true
        return (segment, !sane)
    }

    // MARK: appending

    /// Updates the in-memory stats and indexes for a batch just written at `position`.
    /// Mirrors Kafka: an index entry for the batch's last offset once more than
    /// `indexIntervalBytes` were written since the previous entry.
    @inline(__always)
    func didAppendBatch(lastOffset: Int64, maxTimestamp ts: Int64, position: Int, size batchSize: Int, indexIntervalBytes: Int) throws {
        if ts > maxTimestamp {
            maxTimestamp = ts
            offsetOfMaxTimestamp = lastOffset
        }
        if bytesSinceLastIndexEntry > indexIntervalBytes {
            try offsetIndex.append(offset: lastOffset, position: position)
            try timeIndex.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
            bytesSinceLastIndexEntry = 0
        }
        bytesSinceLastIndexEntry += batchSize
    }

    /// Makes this segment read-only: the final time-index entry records the segment's max
    /// timestamp (retention and time lookups rely on it), then both indexes are trimmed.
    func seal() throws {
        try timeIndex.maybeAppend(timestamp: maxTimestamp, offset: offsetOfMaxTimestamp)
        try offsetIndex.storage.seal()
        try timeIndex.storage.seal()
        indexesSynced = false
    }

    /// Reopens sealed indexes for appending (after truncation made this segment active again).
    func makeActive(config: LogConfig) throws {
        let capacity = Self.indexCapacity(segmentBytes: config.segmentBytes, indexIntervalBytes: config.indexIntervalBytes)
        if !offsetIndex.storage.writable { try offsetIndex.storage.makeWritable(capacityEntries: capacity) }
        if !timeIndex.storage.writable { try timeIndex.storage.makeWritable(capacityEntries: capacity) }
    }

    /// Unmaps the indexes. File descriptors close when the last `FileRef` reference goes.
    func close() {
        offsetIndex.storage.close()
        timeIndex.storage.close()
    }

    /// Removes the files; the log first, so a crash in between leaves only an orphan index
    /// (deleted on load) rather than a log without an index (which would be rebuilt and revived).
    func deleteFiles() throws {
        close()
        try Sys.unlink(logPath)
        try Sys.unlink(indexPath)
        try Sys.unlink(timeIndexPath)
    }

    /// Timestamp used by time retention: the max batch timestamp, or the file's mtime when no
    /// batch carried one (as Kafka does).
    var largestTimestamp: Int64 {
        maxTimestamp >= 0 ? maxTimestamp : log.modificationTimeMs()
    }

    // MARK: recovery

    struct ScanResult {
        /// End of the last valid batch.
        var validEnd: Int
        /// Offset after the last valid batch, nil when none was found.
        var nextOffset: Int64?
        /// Why scanning stopped before the end of the file, if it did.
        var problem: String?
    }

    /// Walks the batches in `[start, fileSize)` through a read-only mapping, checking framing,
    /// offset continuity and CRC; stops at the first bad batch. `expectedBaseOffset` is the base
    /// offset the first batch must have (nil to accept any at or after the segment base).
    /// The mapping keeps recovery free of copies: CRC-32C runs over page-cache pages directly.
    func scan(from start: Int, fileSize: Int, expectedBaseOffset: Int64?, body: (BatchHeader, Int) throws -> Void) throws -> ScanResult {
        var result = ScanResult(validEnd: start, nextOffset: nil, problem: nil)
        guard fileSize > start else { return result }
        guard let map = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, log.fd, 0), map != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw Sys.error("mmap", log.path)
        }
        defer { munmap(map, fileSize) }
        #if os(Linux)
        _ = madvise(map, fileSize, MADV_SEQUENTIAL)
        #endif
        let base = UnsafeRawPointer(map)
        var pos = start
        var expected = expectedBaseOffset
        while pos < fileSize {
            guard fileSize - pos >= RecordBatchHeader.size else {
                result.problem = "\(fileSize - pos) trailing bytes, less than a batch header"
                break
            }
            let h = BatchHeader(base + pos)
            guard h.isWellFramed else {
                result.problem = "bad framing at position \(pos) (length \(h.batchLength), magic \(h.magic))"
                break
            }
            guard h.totalSize <= fileSize - pos else {
                result.problem = "batch at position \(pos) of \(h.totalSize) bytes runs past the end of the file"
                break
            }
            // Offsets only grow; gaps are legal (compaction drops whole batches), overlaps are not.
            if let e = expected, h.baseOffset < e {
                result.problem = "batch at position \(pos) has base offset \(h.baseOffset), expected at least \(e)"
                break
            }
            guard h.baseOffset >= baseOffset, h.lastOffset - baseOffset <= Int64(UInt32.max) else {
                result.problem = "batch at position \(pos) has offset \(h.baseOffset) outside segment \(baseOffset)"
                break
            }
            guard BatchHeader.computeCRC(base + pos, totalSize: h.totalSize) == h.crc else {
                result.problem = "CRC mismatch in batch at offset \(h.baseOffset), position \(pos)"
                break
            }
            try body(h, pos)
            pos += h.totalSize
            expected = h.lastOffset + 1
            result.nextOffset = expected
        }
        result.validEnd = pos
        return result
    }

    /// Validates every batch, truncates the file at the first bad one and rebuilds both indexes
    /// from scratch. Returns the number of bytes cut off.
    @discardableResult
    func recover(config: LogConfig, logger: Logger) throws -> Int {
        let fileSize = try log.size()
        let capacity = max(fileSize / max(config.indexIntervalBytes, 1) + 2, 16)
        offsetIndex.storage.close()
        timeIndex.storage.close()
        offsetIndex = OffsetIndex(baseOffset: baseOffset, storage: try MappedIndex(creating: indexPath, entrySize: OffsetIndex.entrySize, capacityEntries: capacity))
        timeIndex = TimeIndex(baseOffset: baseOffset, storage: try MappedIndex(creating: timeIndexPath, entrySize: TimeIndex.entrySize, capacityEntries: capacity))
        maxTimestamp = -1
        offsetOfMaxTimestamp = baseOffset
        bytesSinceLastIndexEntry = 0
        var firstTimestamp: Int64? = nil
        let interval = config.indexIntervalBytes
        let result = try scan(from: 0, fileSize: fileSize, expectedBaseOffset: baseOffset) { h, pos in
            if firstTimestamp == nil { firstTimestamp = h.maxTimestamp }
            try didAppendBatch(lastOffset: h.lastOffset, maxTimestamp: h.maxTimestamp, position: pos, size: h.totalSize, indexIntervalBytes: interval)
        }
        size = result.validEnd
        nextOffset = result.nextOffset ?? baseOffset
        if let firstTimestamp, firstTimestamp >= 0 { rollStartMs = firstTimestamp }
        let cut = fileSize - result.validEnd
        if cut > 0 {
            logger.warning(
                "truncating corrupt or torn tail of segment",
                metadata: [BrookLogKey.segment: "\(logPath)", BrookLogKey.bytes: "\(cut)", BrookLogKey.validEnd: "\(result.validEnd)", BrookLogKey.reason: "\(result.problem ?? "")"])
            try log.truncate(to: result.validEnd)
            try log.syncData()
        }
        indexesSynced = false
        return cut
    }

    /// Restores the append state of a cleanly closed active segment without a full scan: resume
    /// from the last offset-index entry and walk (and validate) only the batches after it.
    /// Returns false if that tail is not clean, in which case the caller runs `recover`.
    func loadTail() throws -> Bool {
        let fileSize = try log.size()
        let start = offsetIndex.lastEntry?.position ?? 0
        let expectedLast = offsetIndex.lastEntry?.offset
        var first = true
        var consistent = true
        let result = try scan(from: start, fileSize: fileSize, expectedBaseOffset: start == 0 ? baseOffset : nil) { h, _ in
            if first, let expectedLast, h.lastOffset != expectedLast { consistent = false }
            first = false
            if h.maxTimestamp > maxTimestamp {
                maxTimestamp = h.maxTimestamp
                offsetOfMaxTimestamp = h.lastOffset
            }
        }
        guard consistent, result.problem == nil, result.validEnd == fileSize else { return false }
        // Like Kafka, `segment.ms` counts from the first batch's timestamp (the mtime otherwise).
        if fileSize >= RecordBatchHeader.size {
            var header = [UInt8](repeating: 0, count: RecordBatchHeader.size)
            let got = try header.withUnsafeMutableBytes { try log.read(into: $0.baseAddress!, count: RecordBatchHeader.size, at: 0) }
            let first = header.withUnsafeBytes { BatchHeader($0.baseAddress!) }
            if got == RecordBatchHeader.size && first.maxTimestamp >= 0 { rollStartMs = first.maxTimestamp }
        }
        size = fileSize
        nextOffset = result.nextOffset ?? baseOffset
        bytesSinceLastIndexEntry = fileSize - start
        return true
    }

    // MARK: reading outside the lock

    /// Finds the first batch at or after `start` (a batch boundary) for which `predicate` holds,
    /// reading headers with `pread` in chunks and never past `end`.
    static func findBatch(in file: FileRef, from start: Int, end: Int, where predicate: (BatchHeader) -> Bool) throws -> (position: Int, header: BatchHeader)? {
        let chunkSize = 16 * 1024
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: chunkSize, alignment: 8)
        defer { chunk.deallocate() }
        var pos = start
        while pos + RecordBatchHeader.size <= end {
            let want = min(chunkSize, end - pos)
            let got = try file.read(into: chunk, count: want, at: pos)
            var off = 0
            while off + RecordBatchHeader.size <= got {
                let h = BatchHeader(chunk + off)
                guard h.isWellFramed else {
                    throw StorageError.corrupt("bad batch header at position \(pos + off) of \(file.path)")
                }
                if predicate(h) { return (pos + off, h) }
                off += h.totalSize
            }
            if got < RecordBatchHeader.size { break }
            pos += off
        }
        return nil
    }
}
