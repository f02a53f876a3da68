#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import BrookProtocol
import Dispatch
import Foundation
import Logging
import Synchronization

/// The partition logs of one data directory, laid out as `DATA/<topic>-<partition>/`.
///
/// Topic metadata lives with the broker; this only maps partitions to logs, creates and deletes
/// their directories, loads them (in parallel, since recovery is CPU-bound CRC work), and runs
/// the periodic roll/retention/checkpoint pass. The directory is locked (`flock` on `.lock`) so a
/// second broker cannot open the same logs.
public final class LogManager: Sendable {
    public let directory: String
    private let logger: Logger
    private let defaultConfig: LogConfig
    private let logs = Mutex<[TopicPartition: PartitionLog]>([:])
    /// Serializes opening, creating and deleting, so a directory is never opened twice.
    private let lifecycle = Mutex<Void>(())
    private let lockFile: FileRef

    static let lockFileName = ".lock"
    static let deleteSuffix = "-delete"

    /// Locks `directory` (creating it) and lists nothing yet: logs are opened by `openOrCreate`
    /// or `loadAll`.
    public init(directory: String, defaultConfig: LogConfig = LogConfig(), logger: Logger = Logger(label: "brook.storage")) throws {
        self.directory = directory
        self.logger = logger
        self.defaultConfig = defaultConfig
        try Sys.makeDirectories(directory)
        let lockPath = Sys.join(directory, Self.lockFileName)
        let file = try FileRef(path: lockPath, create: true)
        guard flock(file.fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK { throw StorageError.directoryLocked(path: directory) }
            throw Sys.error("flock", lockPath)
        }
        lockFile = file
        // Finish deletions a crash interrupted.
        for name in try Sys.listDirectory(directory) where name.hasSuffix(Self.deleteSuffix) {
            try Sys.removeTree(Sys.join(directory, name))
        }
    }

    public convenience init(directory: URL, defaultConfig: LogConfig = LogConfig(), logger: Logger = Logger(label: "brook.storage")) throws {
        try self.init(directory: directory.path, defaultConfig: defaultConfig, logger: logger)
    }

    // MARK: names

    /// `<topic>-<partition>`.
    public static func directoryName(for tp: TopicPartition) -> String {
        "\(tp.topic)-\(tp.partition)"
    }

    /// Parses `<topic>-<partition>`; the partition follows the last '-', since topic names may
    /// contain '-' themselves. Nil for anything else (hidden files, pending deletions).
    public static func parseDirectoryName(_ name: String) -> TopicPartition? {
        guard !name.hasPrefix("."), !name.hasSuffix(deleteSuffix), let dash = name.lastIndex(of: "-") else { return nil }
        let topic = name[..<dash]
        let digits = name[name.index(after: dash)...]
        guard !topic.isEmpty, !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let partition = Int32(digits) else { return nil }
        return TopicPartition(topic: String(topic), partition: partition)
    }

    /// Partitions that have a directory on disk, opened or not.
    public func partitionsOnDisk() throws -> [TopicPartition] {
        try Sys.listDirectory(directory)
            .filter { Sys.isDirectory(Sys.join(directory, $0)) }
            .compactMap(Self.parseDirectoryName)
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    // MARK: access

    public func log(for tp: TopicPartition) -> PartitionLog? {
        logs.withLock { $0[tp] }
    }

    public func log(topic: String, partition: Int32) -> PartitionLog? {
        log(for: TopicPartition(topic: topic, partition: partition))
    }

    /// Every open log.
    public var allLogs: [TopicPartition: PartitionLog] {
        logs.withLock { $0 }
    }

    /// The open log of the partition, or opens (recovering) / creates it. When the log is already
    /// open and `config` is given, the config is applied.
    public func openOrCreate(topic: String, partition: Int32, config: LogConfig? = nil) throws -> PartitionLog {
        let tp = TopicPartition(topic: topic, partition: partition)
        return try lifecycle.withLock { _ in
            if let existing = logs.withLock({ $0[tp] }) {
                if let config { existing.updateConfig(config) }
                return existing
            }
            let log = try open(tp, config: config ?? defaultConfig)
            logs.withLock { $0[tp] = log }
            return log
        }
    }

    /// Opens every partition directory not yet open, `parallelism` at a time. A partition that
    /// fails to open is reported in the result and left closed; the others still load.
    @discardableResult
    public func loadAll(
        parallelism: Int = 2,
        config configFor: @Sendable (TopicPartition) -> LogConfig? = { _ in nil }
    ) throws -> [TopicPartition: any Error] {
        try lifecycle.withLock { _ in
            let open = logs.withLock { Set($0.keys) }
            let todo = try partitionsOnDisk().filter { !open.contains($0) }
            let failures = Mutex<[TopicPartition: any Error]>([:])
            let next = Atomic<Int>(0)
            let workers = max(1, min(parallelism, todo.count))
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard i < todo.count else { return }
                    let tp = todo[i]
                    do {
                        let log = try self.open(tp, config: configFor(tp) ?? defaultConfig)
                        logs.withLock { $0[tp] = log }
                    } catch {
                        logger.error("could not open partition log", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(error)"])
                        failures.withLock { $0[tp] = error }
                    }
                }
            }
            return failures.withLock { $0 }
        }
    }

    private func open(_ tp: TopicPartition, config: LogConfig) throws -> PartitionLog {
        var logger = logger
        logger[metadataKey: BrookLogKey.topic] = "\(tp.topic)"
        logger[metadataKey: BrookLogKey.partition] = "\(tp.partition)"
        return try PartitionLog(directory: Sys.join(directory, Self.directoryName(for: tp)), config: config, logger: logger)
    }

    /// Closes the partition's log and removes its directory. The directory is first renamed to
    /// `…-delete` so that a crash midway leaves nothing that looks like a partition.
    public func deleteLog(topic: String, partition: Int32) throws {
        let tp = TopicPartition(topic: topic, partition: partition)
        try lifecycle.withLock { _ in
            let log = logs.withLock { $0.removeValue(forKey: tp) }
            log?.detachForDeletion()
            let path = Sys.join(directory, Self.directoryName(for: tp))
            guard Sys.isDirectory(path) else { return }
            let doomed = Sys.join(directory, "\(Self.directoryName(for: tp)).\(currentTimeMillis())\(Self.deleteSuffix)")
            try Sys.rename(path, doomed)
            try Sys.syncDirectory(directory)
            try Sys.removeTree(doomed)
        }
    }

    // MARK: maintenance

    /// One pass of the periodic check over every open log: roll idle segments past `segment.ms`,
    /// apply retention, fsync sealed segments (for `.os` logs), checkpoint. Errors are logged and
    /// reported per partition; one failing log does not stop the others.
    @discardableResult
    public func runMaintenance(now: Int64? = nil) -> (result: MaintenanceResult, failures: [TopicPartition: any Error]) {
        var total = MaintenanceResult()
        var failures: [TopicPartition: any Error] = [:]
        for (tp, log) in allLogs {
            do {
                let r = try log.runMaintenance(now: now)
                total.rolled = total.rolled || r.rolled
                total.deletedSegments += r.deletedSegments
                total.deletedBytes += r.deletedBytes
            } catch StorageError.logClosed {
                continue
            } catch {
                logger.error("log maintenance failed", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(error)"])
                failures[tp] = error
            }
        }
        return (total, failures)
    }

    /// Clean shutdown of every log (so the next start skips recovery), then releases the
    /// directory lock. Throws the first error after trying all logs.
    public func close() throws {
        try lifecycle.withLock { _ in
            let all = logs.withLock { l -> [TopicPartition: PartitionLog] in
                defer { l.removeAll() }
                return l
            }
            var firstError: (any Error)?
            for (tp, log) in all {
                do {
                    try log.close()
                } catch {
                    logger.error("could not close partition log", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(error)"])
                    firstError = firstError ?? error
                }
            }
            _ = flock(lockFile.fd, LOCK_UN)
            if let firstError { throw firstError }
        }
    }
}
