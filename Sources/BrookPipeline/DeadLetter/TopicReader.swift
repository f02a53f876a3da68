import Brook
import BrookProtocol
import Logging
import Synchronization

/// Reads a topic from where it starts (or from a group's committed offsets) up to the end
/// offsets seen when reading began: the bounded scans that quarantine loading, DLT listing and
/// replay need.
public struct TopicReader: Sendable {
    public var client: ClientConfiguration
    public var logger: Logger

    public init(client: ClientConfiguration, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// End offsets of every partition of `topic`.
    func endOffsets(_ topic: String, admin: KafkaAdmin) async throws -> [Int32: Int64] {
        try await admin.listOffsets(topic: topic, spec: .latest)
    }

    /// Calls `body` with each fetched batch in partition-offset order until every partition has
    /// reached its end offset. With `group`, reading starts at the group's committed offsets
    /// (earliest without), and `body` may commit through the consumer it is given.
    public func read(
        _ topic: String, group: String? = nil,
        _ body: (ConsumerRecordBatch, KafkaConsumer) async throws -> Void
    ) async throws {
        let admin = KafkaAdmin(config: client, logger: logger)
        defer { Task { await admin.close() } }
        let ends = try await endOffsets(topic, admin: admin).filter { $0.value > 0 }
        guard !ends.isEmpty else { return }
        var config = ConsumerConfiguration(client: client, groupId: group)
        config.offsets.autoOffsetReset = .earliest
        config.offsets.enableAutoCommit = false
        config.fetch.maxWait = .milliseconds(50)
        config.fetch.allowAutoCreateTopics = false
        config.metrics.enabled = false
        let consumer = try KafkaConsumer(configuration: config, logger: logger)
        let tps = ends.keys.sorted().map { TopicPartition(topic: topic, partition: $0) }
        if group != nil {
            let committed = try await consumer.committed(tps)
            let todo = tps.filter { (committed[$0] ?? 0) < ends[$0.partition]! }
            guard !todo.isEmpty else {
                await consumer.close()
                return
            }
            try consumer.assign(todo)
        } else {
            try consumer.assign(tps)
        }
        // Positions can pass the end without a batch (control records, compaction gaps): a
        // watchdog closes the consumer once every position has stayed at its end for two checks
        // while no batch is being handled, which ends the loop below.
        let inBody = Mutex(false)
        let watchdog = Task {
            var seen = 0
            while !Task.isCancelled {
                let assigned = consumer.assignment()
                let atEnd = !assigned.isEmpty && assigned.allSatisfy { tp in (consumer.position(tp) ?? -1) >= ends[tp.partition]! }
                seen = atEnd && !inBody.withLock({ $0 }) ? seen + 1 : 0
                if seen >= 2 { break }
                try? await Task.sleep(for: .milliseconds(20))
            }
            if !Task.isCancelled { await consumer.close() }
        }
        var remaining = Set(consumer.assignment().map(\.partition))
        do {
            for try await batch in consumer.batches {
                let end = ends[batch.partition]!
                let records = batch.records.filter { $0.offset < end }
                if !records.isEmpty {
                    inBody.withLock { $0 = true }
                    defer { inBody.withLock { $0 = false } }
                    try await body(
                        ConsumerRecordBatch(
                            topicPartition: batch.topicPartition, records: records, highWatermark: batch.highWatermark,
                            nextOffset: min(batch.nextOffset, end)),
                        consumer)
                }
                if batch.nextOffset >= end { remaining.remove(batch.partition) }
                if remaining.isEmpty { break }
            }
        } catch {
            watchdog.cancel()
            await consumer.close()
            throw error
        }
        watchdog.cancel()
        await consumer.close()
    }
}
