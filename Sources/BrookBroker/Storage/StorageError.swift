#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors raised by the storage engine. Each maps onto one Kafka error code (noted per case) so
/// request handlers can answer without inspecting messages.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed (`KAFKA_STORAGE_ERROR`).
    case io(operation: String, path: String, errno: Int32)
    /// The bytes handed to `append` are not well-formed v2 batches (`CORRUPT_MESSAGE`).
    case invalidBatch(String)
    /// One batch is larger than `LogConfig.maxMessageBytes` (`MESSAGE_TOO_LARGE`).
    case recordBatchTooLarge(size: Int, max: Int)
    /// The requested offset is outside `[logStartOffset, logEndOffset]` (`OFFSET_OUT_OF_RANGE`).
    case offsetOutOfRange(requested: Int64, logStartOffset: Int64, logEndOffset: Int64)
    /// The log was closed or deleted (`NOT_LEADER_OR_FOLLOWER` / `UNKNOWN_TOPIC_OR_PARTITION`).
    case logClosed
    /// An fsync failed earlier: the page cache may have dropped our writes, so the log refuses
    /// further writes until reopened (`KAFKA_STORAGE_ERROR`). See "fsyncgate".
    case logFailed(String)
    /// Data on disk is inconsistent in a way recovery could not repair (`KAFKA_STORAGE_ERROR`).
    case corrupt(String)
    /// Another process holds the data directory.
    case directoryLocked(path: String)

    public var description: String {
        switch self {
        case .io(let op, let path, let e):
            return "\(op)(\(path)) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .invalidBatch(let why): return "invalid record batch: \(why)"
        case .recordBatchTooLarge(let size, let max): return "record batch of \(size) bytes exceeds max.message.bytes \(max)"
        case .offsetOutOfRange(let o, let s, let e): return "offset \(o) out of range [\(s), \(e)]"
        case .logClosed: return "log is closed"
        case .logFailed(let why): return "log is offline after an I/O failure: \(why)"
        case .corrupt(let why): return "corrupt log: \(why)"
        case .directoryLocked(let path): return "data directory \(path) is locked by another process"
        }
    }
}
