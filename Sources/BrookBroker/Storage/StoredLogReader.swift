#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import BrookProtocol
import Foundation
import NIOCore

/// Reads the partition logs of a stopped broker's data directory without a broker and without
/// writing anything: no lock taken, no recovery, no index rebuilt, no leftover removed (tools
/// such as `brook ledger verify --data-dir` use it after `brook up` stopped).
///
/// Batches are read in offset order from the segment files and validated (framing, offset order,
/// CRC-32C); reading a partition stops at the first invalid batch, where the broker's recovery
/// would cut the log after a crash.
public struct StoredLogReader: Sendable {
    /// The directory of partition logs (`<topic>-<partition>/` below it).
    public let directory: String

    /// `dataDirectory` is a broker's data directory (its logs are in `logs/`) or a log directory
    /// itself.
    public init(dataDirectory: String) throws {
        guard Sys.isDirectory(dataDirectory) else {
            throw StorageError.corrupt("\(dataDirectory) is not a directory")
        }
        let logs = Sys.join(dataDirectory, "logs")
        directory = Sys.isDirectory(logs) ? logs : dataDirectory
    }

    /// Whether a broker holds the directory (its `.lock` is locked): its logs may then change
    /// while they are read. Only tries a shared lock, released at once; creates nothing.
    public var isInUse: Bool {
        let path = Sys.join(directory, LogManager.lockFileName)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// The partitions of `topic` that have a directory, ascending.
    public func partitions(of topic: String) throws -> [Int32] {
        try Sys.listDirectory(directory)
            .compactMap(LogManager.parseDirectoryName)
            .filter { $0.topic == topic && Sys.isDirectory(Sys.join(directory, LogManager.directoryName(for: $0))) }
            .map(\.partition)
            .sorted()
    }

    /// Calls `body` with every valid batch of `topic`-`partition` from its log start, in offset
    /// order. Batches wholly below the checkpointed log start are skipped (records deleted by
    /// retention or DeleteRecords); the caller drops single records below ``logStartOffset(topic:partition:)``.
    public func forEachBatch(topic: String, partition: Int32, _ body: (RecordBatch) throws -> Void) throws {
        let dir = Sys.join(directory, LogManager.directoryName(for: TopicPartition(topic: topic, partition: partition)))
        let logStart = try logStartOffset(topic: topic, partition: partition)
        let bases = try Sys.listDirectory(dir)
            .compactMap { LogSegment.baseOffset(fromFileName: $0, suffix: LogSegment.logSuffix) }
            .sorted()
        var expected: Int64?
        for base in bases {
            let path = Sys.join(dir, LogSegment.fileName(base, LogSegment.logSuffix))
            guard let bytes = try Sys.readFile(path) else { continue }
            var buffer = ByteBuffer(bytes: bytes)
            while buffer.readableBytes >= RecordBatchHeader.size {
                guard let batch = try? RecordBatch(bytes: buffer), batch.isCRCValid,
                      batch.header.baseOffset >= (expected ?? base) else { return }
                buffer.moveReaderIndex(forwardBy: batch.bytes.readableBytes)
                expected = batch.header.lastOffset + 1
                if batch.header.lastOffset >= logStart { try body(batch) }
            }
            // Trailing bytes shorter than a header: a torn write, the end of the log.
            if buffer.readableBytes > 0 { return }
        }
    }

    /// The first offset the broker would serve (from the partition's checkpoint; 0 without one).
    public func logStartOffset(topic: String, partition: Int32) throws -> Int64 {
        let dir = Sys.join(directory, LogManager.directoryName(for: TopicPartition(topic: topic, partition: partition)))
        return (try? Checkpoint.read(from: Sys.join(dir, PartitionLog.checkpointFileName)))??.logStartOffset ?? 0
    }
}
