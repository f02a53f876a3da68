import Brook
import BrookPipeline
import BrookProtocol

/// Wraps a sink and sleeps before every call: a slow database, for showing that the worker's
/// memory stays bounded and lag grows instead (`brook ledger run --apply-delay-ms`).
public struct DelaySink: TransactionalSink {
    public typealias Value = LedgerEvent
    let inner: any TransactionalSink<LedgerEvent>
    let delay: Duration

    public init(_ inner: any TransactionalSink<LedgerEvent>, delay: Duration) {
        self.inner = inner
        self.delay = delay
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await inner.storedOffsets(group: group, partitions: partitions)
    }

    public func apply(_ records: [PipelineRecord<Value>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try await Task.sleep(for: delay)
        try await inner.apply(records, partition: partition, group: group, expected: expected, next: next)
    }
}
