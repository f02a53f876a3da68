import Brook
import BrookPipeline
import Synchronization
import Testing

struct Boom: Error {}

/// A handler that fails records by value: `flaky` (retryable), `fatal` (non-retryable),
/// `boom` (an unnamed error) — unless `fixed`. It records a batch only when all of it succeeds.
final class FailingHandler: Sendable {
    let seen = Seen()
    let calls = Mutex<[String: Int]>([:])
    let fixed = Mutex(false)

    /// Counts a call for each record up to (and including) the first one that fails.
    func handle(_ batch: [PipelineRecord<String>]) throws {
        let fixed = self.fixed.withLock { $0 }
        for r in batch {
            calls.withLock { $0[r.value, default: 0] += 1 }
            if fixed { continue }
            if r.value.hasPrefix("flaky") { throw RecordError(offset: r.offset, kind: .retryable, type: "Timeout", message: "timed out on \(r.value)") }
            if r.value.hasPrefix("fatal") { throw RecordError(offset: r.offset, kind: .nonRetryable, type: "InvalidEvent", message: "invalid \(r.value)") }
            if r.value.hasPrefix("boom") { throw Boom() }
        }
        seen.add(batch)
    }
}

@Suite(.serialized) struct DeadLetterTests {
    @Test func retriesThenDeadLettersWithProvenanceHeaders() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("pay", partitions: 1)
            try await broker.send("pay", [("k1", "a"), ("k2", "flaky"), ("k3", "fatal"), ("k4", "boom"), ("k5", "undecodable-1"), ("k6", "b")])
            let config = broker.pipelineConfig(group: "g-dlt", topics: ["pay"])
            let h = FailingHandler()
            let pipeline = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { try h.handle($0) }
            let running = Running(pipeline)
            try await eventually("b handled") { h.seen.values.contains("b") }
            try await eventually("commit") { try await broker.committed("g-dlt", "pay") == [0: 6] }
            #expect(pipeline.snapshot().deadLettered == 4)
            try await running.stop()
            #expect(h.seen.values == ["a", "b"])
            #expect(h.calls.withLock { $0["flaky"] } == 3)
            #expect(h.calls.withLock { $0["fatal"] } == 1)

            let entries = try await DeadLetterReplayer(client: broker.client, logger: quietLogger("r")).list("pay.dlt")
            #expect(entries.map { $0.value.map { String(buffer: $0) } } == ["flaky", "fatal", "boom", "undecodable-1"])
            let byValue = Dictionary(uniqueKeysWithValues: entries.map { (String(buffer: $0.value!), $0) })
            let flaky = try #require(byValue["flaky"])
            #expect(header(flaky, "brook.dlt.original.topic") == "pay")
            #expect(header(flaky, "brook.dlt.original.partition") == "0")
            #expect(header(flaky, "brook.dlt.original.offset") == "1")
            #expect(header(flaky, "brook.dlt.original.timestamp").flatMap { Int64($0) } ?? 0 > 0)
            #expect(header(flaky, "brook.dlt.group") == "g-dlt")
            #expect(header(flaky, "brook.dlt.error.type") == "Timeout")
            #expect(header(flaky, "brook.dlt.error.message") == "timed out on flaky")
            #expect(header(flaky, "brook.dlt.attempts") == "3")
            #expect(header(flaky, "brook.dlt.reason") == "failed")
            #expect(flaky.keyString == "k2")
            #expect(byValue["fatal"]?.provenance.attempts == 1)
            #expect(byValue["fatal"]?.provenance.errorType == "InvalidEvent")
            #expect(byValue["boom"]?.provenance.errorType == "Boom")
            #expect(byValue["boom"]?.provenance.attempts == 3)
            #expect(byValue["undecodable-1"]?.provenance.errorType == "DecodeError")
            #expect(byValue["undecodable-1"]?.provenance.attempts == 1)
        }
    }

    @Test func quarantineParksTheKeyWhileOthersFlowAndSurvivesRestart() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("acct", partitions: 1)
            try await broker.send("acct", [("acct1", "fatal-1"), ("acct2", "x1"), ("acct1", "after1"), ("acct2", "x2")])
            let config = broker.pipelineConfig(group: "g-q", topics: ["acct"])
            let h = FailingHandler()
            let first = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { try h.handle($0) }
            var running = Running(first)
            try await eventually("other key flows") { h.seen.valuesOf(key: "acct2") == ["x1", "x2"] }
            try await eventually("parked") { first.snapshot().parked == 1 }
            #expect(first.snapshot().quarantinedKeys == 1)
            try await running.stop()
            #expect(h.seen.valuesOf(key: "acct1").isEmpty)

            // A new pipeline instance: the quarantine comes back from the compacted topic.
            let second = Pipeline(configuration: config, decoder: stringDecoder, logger: quietLogger("p")) { try h.handle($0) }
            running = Running(second)
            try await broker.send("acct", [("acct1", "after2"), ("acct2", "x3")])
            try await eventually("other key flows after restart") { h.seen.valuesOf(key: "acct2") == ["x1", "x2", "x3"] }
            try await eventually("parked after restart") { second.snapshot().parked == 1 }
            try await running.stop()
            #expect(h.seen.valuesOf(key: "acct1").isEmpty)

            let entries = try await DeadLetterReplayer(client: broker.client, logger: quietLogger("r")).list("acct.dlt")
            #expect(entries.map { String(buffer: $0.value!) } == ["fatal-1", "after1", "after2"])
            #expect(entries.map(\.provenance.reason) == [.failed, .parked, .parked])
            // Parked records carry the error type they wait behind, so a replay filtered by it takes them.
            #expect(entries.map(\.provenance.errorType) == ["InvalidEvent", "InvalidEvent", "InvalidEvent"])
            #expect(header(entries[1], "brook.dlt.attempts") == "0")
        }
    }
}
