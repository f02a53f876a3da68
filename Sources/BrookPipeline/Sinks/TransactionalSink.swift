import Brook

/// Thrown by a ``TransactionalSink`` when the stored offset is not the one the member expected:
/// another member owns the partition now, so this member must stop working on it.
public struct SinkFenced: Error, Sendable, CustomStringConvertible {
    public var partition: TopicPartition
    public var expected: Int64?
    public var found: Int64?
    public init(partition: TopicPartition, expected: Int64?, found: Int64?) {
        self.partition = partition
        self.expected = expected
        self.found = found
    }
    public var description: String {
        "fenced on \(partition): expected stored offset \(expected.map(String.init) ?? "none"), found \(found.map(String.init) ?? "none")"
    }
}

/// A database sink with exactly-once effects: consumed offsets live in the same transaction as
/// the effects, so a crash can never apply a record twice or skip one.
///
/// The pipeline calls ``storedOffsets(group:partitions:)`` on assignment and seeks there (the
/// group's committed offsets in Kafka are only informational for such a sink).
public protocol TransactionalSink<Value>: Sendable {
    associatedtype Value: Sendable

    /// The next offset to consume for each partition that has one stored for `group`.
    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64]

    /// In ONE transaction: applies `records` (all from `partition`, ascending offsets; records the
    /// pipeline dead-lettered or parked are left out) and moves the stored offset from `expected`
    /// (nil: none stored yet) to `next`.
    ///
    /// - Throws: ``SinkFenced`` when the stored offset is not `expected` (nothing applied);
    ///   ``RecordError`` naming the record that cannot be applied (nothing applied; the pipeline
    ///   dead-letters that record or retries it, then calls again without it); any other error is
    ///   transient (database busy, connection lost) and the whole call is retried with backoff.
    func apply(_ records: [PipelineRecord<Value>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws
}
