import Brook
import BrookBroker
import BrookPipeline
import BrookProtocol
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

/// The embedded broker on a free port, with a producer and admin client for the test.
final class PipelineTestBroker: Sendable {
    let embedded: EmbeddedBroker
    let producer: KafkaProducer
    let admin: KafkaAdmin
    var port: Int { embedded.port }

    private init(embedded: EmbeddedBroker) throws {
        self.embedded = embedded
        let client = ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: embedded.port)])
        var pc = ProducerConfiguration(client: client)
        pc.linger = .milliseconds(1)
        producer = try KafkaProducer(configuration: pc, logger: quietLogger("test.producer"))
        admin = KafkaAdmin(config: client, logger: quietLogger("test.admin"))
    }

    static func start() async throws -> PipelineTestBroker {
        try PipelineTestBroker(embedded: try await EmbeddedBroker.start(.testing, logger: quietLogger("test.broker", .error)))
    }

    func stop() async {
        await producer.close()
        await admin.close()
        await embedded.stop()
    }

    var client: ClientConfiguration { ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: port)]) }

    func createTopic(_ name: String, partitions: Int32) async throws {
        var attempts = 0
        while true {
            do {
                try await admin.createTopics([KafkaAdmin.NewTopic(name: name, partitions: partitions, replicationFactor: 1)])
                return
            } catch let e as KafkaClientError where attempts < 50 && e.isRetriable {
                attempts += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Sends `key:value` pairs to one partition, in order.
    func send(_ topic: String, partition: Int32 = 0, _ pairs: [(String?, String)], headers: [RecordHeader] = []) async throws {
        for (k, v) in pairs {
            _ = try await producer.send(ProducerRecord(topic: topic, partition: partition, key: k, value: v, headers: headers))
        }
    }

    func consumerConfig(group: String, instance: String? = nil) -> ConsumerConfiguration {
        var c = ConsumerConfiguration(client: client, groupId: group)
        c.client.retryBackoff = .milliseconds(50)
        c.group.sessionTimeout = .seconds(10)
        c.group.heartbeatInterval = .milliseconds(200)
        c.group.rebalanceTimeout = .seconds(10)
        c.group.groupInstanceId = instance
        c.offsets.autoOffsetReset = .earliest
        c.fetch.maxWait = .milliseconds(50)
        c.fetch.allowAutoCreateTopics = false
        return c
    }

    func pipelineConfig(group: String, topics: [String]) -> PipelineConfiguration {
        var p = PipelineConfiguration(consumer: consumerConfig(group: group), topics: topics)
        p.retry.initialBackoff = .milliseconds(10)
        p.retry.maxBackoff = .milliseconds(50)
        p.retry.maxAttempts = 3
        p.commitInterval = .milliseconds(100)
        p.metricsInterval = .milliseconds(100)
        return p
    }

    /// The group's committed offsets for `topic`.
    func committed(_ group: String, _ topic: String) async throws -> [Int32: Int64] {
        try await admin.groupOffsets(group, topics: [topic])[topic] ?? [:]
    }
}

func withPipelineBroker<T>(_ body: (PipelineTestBroker) async throws -> T) async throws -> T {
    let broker = try await PipelineTestBroker.start()
    do {
        let r = try await body(broker)
        await broker.stop()
        return r
    } catch {
        await broker.stop()
        throw error
    }
}

func quietLogger(_ label: String, _ level: Logger.Level = .critical) -> Logger {
    var l = Logger(label: label)
    l.logLevel = ProcessInfo.processInfo.environment["BROOK_TEST_LOG"] == nil ? level : .debug
    return l
}

/// A pipeline running in a task until ``stop()``.
struct Running<Value: Sendable>: Sendable {
    let pipeline: Pipeline<Value>
    let task: Task<Void, any Error>

    init(_ pipeline: Pipeline<Value>) {
        self.pipeline = pipeline
        task = Task { try await pipeline.run() }
    }

    func stop() async throws {
        pipeline.stop()
        try await task.value
    }
}

let stringDecoder: Pipeline<String>.Decoder = { buffer in
    let s = String(buffer: buffer)
    if s.hasPrefix("undecodable") { throw RecordError(offset: -1, kind: .nonRetryable, type: "DecodeError", message: "cannot decode \(s)") }
    return s
}

/// What handlers saw, in call order.
final class Seen: Sendable {
    private let records = Mutex<[PipelineRecord<String>]>([])
    private let batches = Mutex<[Int]>([])

    func add(_ batch: [PipelineRecord<String>]) {
        records.withLock { $0.append(contentsOf: batch) }
        batches.withLock { $0.append(batch.count) }
    }

    var all: [PipelineRecord<String>] { records.withLock { $0 } }
    var values: [String] { all.map(\.value) }
    var batchSizes: [Int] { batches.withLock { $0 } }
    func valuesOf(key: String) -> [String] { all.filter { $0.keyString == key }.map(\.value) }
    var count: Int { records.withLock { $0.count } }
}

func eventually(
    _ what: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    throw PipelineTestTimeout(what: what)
}

struct PipelineTestTimeout: Error { var what: String }

func header(_ r: DeadLetterEntry, _ key: String) -> String? {
    r.headers.first { $0.key == key }?.value.map { String(buffer: $0) }
}
