import BrookPipeline
import BrookProtocol
import Logging
import Synchronization
import Testing

/// Keeps every log entry it is given (level, message, metadata).
final class CapturedLog: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }
    private let entries = Mutex<[Entry]>([])
    var all: [Entry] { entries.withLock { $0 } }
    func add(_ e: Entry) { entries.withLock { $0.append(e) } }

    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.add(Entry(level: event.level, message: event.message.description, metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}

@Suite(.serialized) struct DeadLetterLogTests {
    /// A dead-lettered record is handled, not an error: `brook up`'s demo makes poison records on
    /// purpose, and an error line per record drowned the real ones.
    @Test func deadLetteredRecordIsLoggedAtWarningWithItsMetadata() async throws {
        try await withPipelineBroker { broker in
            try await broker.createTopic("pay-log", partitions: 1)
            try await broker.send("pay-log", [("k1", "a"), ("k2", "fatal"), ("k3", "b")])
            let log = CapturedLog()
            let h = FailingHandler()
            let pipeline = Pipeline(configuration: broker.pipelineConfig(group: "g-dlt-log", topics: ["pay-log"]), decoder: stringDecoder,
                                    logger: log.logger("p")) { try h.handle($0) }
            let running = Running(pipeline)
            try await eventually("b handled") { h.seen.values.contains("b") }
            try await eventually("dead-lettered") { pipeline.snapshot().deadLettered == 1 }
            try await running.stop()
            let entries = log.all.filter { $0.message == "record dead-lettered" }
            #expect(entries.map(\.level) == [.warning])
            #expect(entries.first?.metadata[BrookLogKey.offset] == "1")
            #expect(entries.first?.metadata[BrookLogKey.key] == "k2")
            #expect(!log.all.contains { $0.level >= .error })
        }
    }
}
