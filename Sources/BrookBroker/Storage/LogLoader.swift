import BrookProtocol
import Logging

/// Opening a partition directory: cleanup of leftovers, index checks, recovery of unflushed
/// segments, and the invariants the rest of the log relies on (contiguous segments, at least
/// one segment, log start <= log end).
enum LogLoader {
    static func load(directory: String, config: LogConfig, logger: Logger, now: Int64) throws -> LogState {
        let started = Sys.monotonicNanos()
        try Sys.makeDirectories(directory)
        let names = try Sys.listDirectory(directory)
        let clean = names.contains(PartitionLog.cleanShutdownFileName)
        let checkpointPath = Sys.join(directory, PartitionLog.checkpointFileName)
        var checkpoint: Checkpoint?
        do {
            checkpoint = try Checkpoint.read(from: checkpointPath)
        } catch {
            logger.warning("ignoring unreadable checkpoint; recovering every segment", metadata: [BrookLogKey.error: "\(error)"])
            checkpoint = nil
        }

        // Leftovers of interrupted operations: temp files, and indexes whose log was deleted.
        // Whether files were created, removed or cut, so the directory needs an fsync.
        var changed = false
        var logBases = Set<Int64>()
        var indexFiles: [(name: String, base: Int64)] = []
        for name in names {
            if name.hasSuffix(".tmp") || name.hasSuffix(".deleted") || name.hasSuffix(LogCleaner.cleanedSuffix) {
                try Sys.unlink(Sys.join(directory, name))
                changed = true
            } else if let b = LogSegment.baseOffset(fromFileName: name, suffix: LogSegment.logSuffix) {
                logBases.insert(b)
            } else if let b = LogSegment.baseOffset(fromFileName: name, suffix: LogSegment.indexSuffix)
                        ?? LogSegment.baseOffset(fromFileName: name, suffix: LogSegment.timeIndexSuffix) {
                indexFiles.append((name, b))
            }
        }
        for file in indexFiles where !logBases.contains(file.base) {
            try Sys.unlink(Sys.join(directory, file.name))
            changed = true
        }
        var bases = logBases.sorted()

        // Segments wholly below the checkpointed log start were being deleted.
        if let logStart = checkpoint?.logStartOffset {
            while bases.count > 1 && bases[1] <= logStart {
                try deleteSegmentFiles(directory: directory, base: bases.removeFirst())
                changed = true
            }
        }

        // Everything below the recovery point was fsynced; without a checkpoint, trust nothing.
        let recoveryPoint: Int64 = clean ? Int64.max : (checkpoint?.recoveryPoint ?? Int64.min)
        var segments: [LogSegment] = []
        var recovered: [ObjectIdentifier] = []
        var recoveredBytes = 0
        var truncatedBytes = 0
        var dropFrom: Int? = nil
        for (i, base) in bases.enumerated() {
            let isLast = i == bases.count - 1
            let upper: Int64? = isLast ? nil : bases[i + 1]
            let (seg, indexBad) = try LogSegment.open(directory: directory, baseOffset: base, upperBound: upper)
            segments.append(seg)
            let unflushed = isLast || upper! > recoveryPoint
            if indexBad || (!clean && unflushed) {
                if indexBad && !unflushed {
                    logger.warning("rebuilding missing or corrupt index", metadata: [BrookLogKey.segment: "\(seg.logPath)"])
                }
                recoveredBytes += seg.size
                let cut = try seg.recover(config: config, logger: logger)
                truncatedBytes += cut
                recovered.append(ObjectIdentifier(seg))
                if let upper, cut > 0 || seg.nextOffset > upper {
                    // Later segments no longer continue this one: the log ends here.
                    dropFrom = i + 1
                    break
                } else if let upper, seg.nextOffset < upper {
                    logger.warning("offset gap between segments", metadata: [BrookLogKey.segment: "\(seg.logPath)", BrookLogKey.segmentEnd: "\(seg.nextOffset)", BrookLogKey.nextSegmentBase: "\(upper)"])
                }
            } else if isLast {
                if try !seg.loadTail() {
                    logger.warning("active segment tail is not clean despite a clean shutdown; recovering", metadata: [BrookLogKey.segment: "\(seg.logPath)"])
                    recoveredBytes += seg.size
                    truncatedBytes += try seg.recover(config: config, logger: logger)
                    recovered.append(ObjectIdentifier(seg))
                }
            }
        }
        if let dropFrom {
            for base in bases[dropFrom...] {
                logger.error("deleting segment after a truncated one", metadata: [BrookLogKey.baseOffset: "\(base)"])
                try deleteSegmentFiles(directory: directory, base: base)
            }
            changed = true
        }

        // Recovered segments have writable indexes: seal all but the last, activate the last.
        for seg in segments.dropLast() where seg.offsetIndex.storage.writable { try seg.seal() }
        if let last = segments.last { try last.makeActive(config: config) }

        let firstBase = segments.first?.baseOffset ?? max(checkpoint?.logStartOffset ?? 0, 0)
        var logStart = max(checkpoint?.logStartOffset ?? firstBase, firstBase)
        let logEnd = segments.last?.nextOffset ?? firstBase
        if segments.isEmpty || logStart > logEnd {
            // Either a new log, or records below the log start were deleted but the tail after
            // them was lost in a crash: restart empty at the log start, as Kafka does.
            if !segments.isEmpty {
                logger.warning("log start offset beyond recovered end; restarting empty", metadata: [BrookLogKey.logStartOffset: "\(logStart)", BrookLogKey.logEndOffset: "\(logEnd)"])
            }
            for seg in segments { try seg.deleteFiles() }
            recovered.removeAll()
            logStart = max(logStart, firstBase)
            segments = [try LogSegment.create(directory: directory, baseOffset: logStart, config: config, now: now)]
            changed = true
        }

        // Recovered bytes may exist only in the page cache (after a process crash): make them
        // durable so the recovery point can be the log end.
        for (i, seg) in segments.enumerated() where recovered.contains(ObjectIdentifier(seg)) {
            try seg.log.syncData()
            if i < segments.count - 1 {
                try seg.offsetIndex.storage.file.syncData()
                try seg.timeIndex.storage.file.syncData()
                seg.indexesSynced = true
            }
        }
        // Rebuilt indexes are new files too.
        if changed || !recovered.isEmpty { try Sys.syncDirectory(directory) }

        let state = LogState(
            config: config, directory: directory, segments: segments,
            logStartOffset: logStart, flushedOffset: segments.last!.nextOffset)
        // An unchanged checkpoint is not rewritten (a clean open then costs one fsync: the
        // directory's, after removing the shutdown marker).
        if let checkpoint {
            state.checkpointedLogStart = checkpoint.logStartOffset
            state.checkpointedRecoveryPoint = checkpoint.recoveryPoint
        }
        let millis = Double(Sys.monotonicNanos() - started) / 1e6
        logger.log(
            level: recovered.isEmpty ? .debug : .info,
            "log loaded",
            metadata: [
                BrookLogKey.clean: "\(clean)", BrookLogKey.segments: "\(segments.count)", BrookLogKey.logStartOffset: "\(logStart)",
                BrookLogKey.logEndOffset: "\(state.logEndOffset)", BrookLogKey.recoveredBytes: "\(recoveredBytes)",
                BrookLogKey.truncatedBytes: "\(truncatedBytes)", BrookLogKey.durationMs: "\(Int(millis))",
            ])
        return state
    }

    static func deleteSegmentFiles(directory: String, base: Int64) throws {
        try Sys.unlink(Sys.join(directory, LogSegment.fileName(base, LogSegment.logSuffix)))
        try Sys.unlink(Sys.join(directory, LogSegment.fileName(base, LogSegment.indexSuffix)))
        try Sys.unlink(Sys.join(directory, LogSegment.fileName(base, LogSegment.timeIndexSuffix)))
    }
}
