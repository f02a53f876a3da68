import Brook
import BrookPipeline
import BrookProtocol
import Synchronization
import Testing

/// An in-memory transactional sink: offsets and effects change together, compare-and-set on
/// the stored offset.
final class MemorySink: TransactionalSink, Sendable {
    typealias Value = String
    struct State {
        var stored: [TopicPartition: Int64] = [:]
        var applied: [String] = []
    }
    let state = Mutex(State())

    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        state.withLock { s in s.stored.filter { partitions.contains($0.key) } }
    }

    func apply(_ records: [PipelineRecord<String>], partition: TopicPartition, group: String, expected: Int64?, next: Int64) async throws {
        try state.withLock { s in
            guard s.stored[partition] == expected else { throw SinkFenced(partition: partition, expected: expected, found: s.stored[partition]) }
            if let bad = records.first(where: { $0.value.hasPrefix("fatal") }) {
                throw RecordError(offset: bad.offset, kind: .nonRetryable, type: "InvalidEvent", message: bad.value)
            }
            s.applied += records.map(\.value)
            s.stored[partition] = next
        }
    }

    var applied: [String] { state.withLock { $0.applied } }
    func stored(_ tp: TopicPartition) -> Int64? { state.withLock { $0.stored[tp] } }
}

@Suite(.serialized) struct SinkTests {
    @Test func seeksToStoredOffsetsAndStoresOffsetsWithTheEffects() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("s1", partitions: 1)
            let tp = TopicPartition(topic: "s1", partition: 0)
            try await broker.send("s1", (0..<10).map { ("k\($0)", "v\($0)") })
            let sink = MemorySink()
            sink.state.withLock { $0.stored[tp] = 4 }
            let config = broker.pipelineConfig(group: "g-s1", topics: ["s1"])
            let running = Running(Pipeline(configuration: config, decoder: stringDecoder, sink: sink, logger: quietLogger("p")))
            try await eventually("applied from the stored offset") { sink.stored(tp) == 10 }
            #expect(sink.applied == (4..<10).map { "v\($0)" })
            try await broker.send("s1", [("x", "undecodable-q"), ("y", "fatal-2"), ("z", "v10")])
            try await eventually("past the dead letters") { sink.stored(tp) == 13 }
            // Key y is quarantined: its next record is parked, left out of apply, covered by `next`.
            try await broker.send("s1", [("y", "v-parked"), ("z", "v11")])
            try await eventually("past the parked record") { sink.stored(tp) == 15 }
            try await eventually("kafka commit follows") { try await broker.committed("g-s1", "s1") == [0: 15] }
            try await running.stop()
            #expect(sink.applied == (4..<12).map { "v\($0)" })
            let dead = try await DeadLetterReplayer(client: broker.client, logger: quietLogger("r")).list("s1.dlt")
            #expect(dead.map { String(buffer: $0.value!) } == ["undecodable-q", "fatal-2", "v-parked"])
            #expect(dead.map(\.provenance.reason) == [.failed, .failed, .parked])
        }
    }

    @Test func fencedPartitionStopsUntilReassigned() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("s2", partitions: 1)
            let tp = TopicPartition(topic: "s2", partition: 0)
            try await broker.send("s2", (0..<3).map { ("k", "v\($0)") })
            let sink = MemorySink()
            let config = broker.pipelineConfig(group: "g-s2", topics: ["s2"])
            let pipeline = Pipeline(configuration: config, decoder: stringDecoder, sink: sink, logger: quietLogger("p"))
            var running = Running(pipeline)
            try await eventually("first records") { sink.stored(tp) == 3 }
            // Another member took the partition and moved the stored offset.
            sink.state.withLock { $0.stored[tp] = 4 }
            try await broker.send("s2", (3..<6).map { ("k", "v\($0)") })
            try await eventually("fenced") { pipeline.snapshot().partitions[tp]?.fenced == true }
            try await Task.sleep(for: .milliseconds(300))
            #expect(sink.applied == ["v0", "v1", "v2"])
            #expect(pipeline.snapshot().partitions[tp]?.paused == true)
            try await running.stop()

            // Reassigned: consumption resumes from what the sink stored.
            running = Running(Pipeline(configuration: config, decoder: stringDecoder, sink: sink, logger: quietLogger("p")))
            try await eventually("resumed") { sink.stored(tp) == 6 }
            try await running.stop()
            #expect(sink.applied == ["v0", "v1", "v2", "v4", "v5"])
        }
    }
}
