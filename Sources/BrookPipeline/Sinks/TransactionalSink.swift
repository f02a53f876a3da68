import Brook
import BrookProtocol

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

    /// In ONE transaction: the batches of several partitions, each as ``apply(_:partition:group:expected:next:)``
    /// would apply it (a database with one writer, like SQLite, then pays one commit for all).
    ///
    /// Returns one result per batch, in order. A batch whose stored offset is not its `expected`
    /// fails with ``SinkFenced``, one with a record that cannot be applied with ``RecordError``;
    /// nothing of a failed batch is applied, and the other batches are. Throwing means nothing
    /// was applied (a transient error: every batch is retried).
    ///
    /// The default applies the batches one after another, each in its own transaction.
    func apply(batches: [SinkBatch<Value>], group: String) async throws -> [Result<Void, any Error>]

    /// How many ``apply(batches:group:)`` calls the pipeline may run at once (default 1: the
    /// next call gathers what became ready while the last one committed).
    var maxConcurrentApplies: Int { get }
}

/// One partition's share of a combined sink call: `records` (ascending offsets, dead-lettered
/// and parked ones left out) and the move of the stored offset from `expected` to `next`.
public struct SinkBatch<Value: Sendable>: Sendable {
    public var partition: TopicPartition
    public var records: [PipelineRecord<Value>]
    public var expected: Int64?
    public var next: Int64

    public init(partition: TopicPartition, records: [PipelineRecord<Value>], expected: Int64?, next: Int64) {
        self.partition = partition
        self.records = records
        self.expected = expected
        self.next = next
    }
}

extension TransactionalSink {
    public func apply(batches: [SinkBatch<Value>], group: String) async throws -> [Result<Void, any Error>] {
        var results: [Result<Void, any Error>] = []
        results.reserveCapacity(batches.count)
        for b in batches {
            do {
                try await apply(b.records, partition: b.partition, group: group, expected: b.expected, next: b.next)
                results.append(.success(()))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }

    public var maxConcurrentApplies: Int { 1 }
}
