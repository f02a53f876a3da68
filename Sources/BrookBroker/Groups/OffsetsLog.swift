import NIOCore

/// The group coordinator's view of the internal `__consumer_offsets` partition.
///
/// Kept as a protocol so the coordinator is tested without disk, and so the broker decides how
/// appends become durable (the same group commit as produce).
public protocol OffsetsLog: Sendable {
    /// Appends record batches (magic 2, built with `RecordBatchBuilder`; offsets are assigned by
    /// the log) and returns once they are durable under the broker's flush policy.
    /// Returns the offset of the first record appended.
    @discardableResult
    func appendDurably(_ batches: ByteBuffer) async throws -> Int64
    /// Whole batches starting with the one containing `offset`, at most about `maxBytes`
    /// (at least one batch). Empty when `offset` is the end of the log.
    func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer
    var logStartOffset: Int64 { get }
    var logEndOffset: Int64 { get }
    /// Drops everything before `offset` (used after writing a compacted snapshot).
    func deleteRecords(before offset: Int64) throws
}
