@testable import Brook
import BrookBroker
import BrookProtocol
import Foundation
import CoreMetrics
import Logging
import NIOCore
import Synchronization
import Testing

typealias TP = BrookProtocol.TopicPartition

/// The embedded broker with its real TCP server, on a free port, for consumer tests.
final class ConsumerTestBroker: Sendable {
    let embedded: EmbeddedBroker
    var broker: Broker { embedded.broker }
    var port: Int { embedded.port }

    private init(embedded: EmbeddedBroker) {
        self.embedded = embedded
    }

    static func start(configure: (inout BrokerConfig) -> Void = { _ in }) async throws -> ConsumerTestBroker {
        var logger = Logger(label: "test.broker")
        logger.logLevel = .error
        return ConsumerTestBroker(embedded: try await EmbeddedBroker.start(.testing, logger: logger, configure: configure))
    }

    func stop() async {
        await embedded.stop()
    }

    var bootstrap: [BrokerAddress] { [BrokerAddress(host: "127.0.0.1", port: port)] }

    func connection() async throws -> BrokerConnection {
        var logger = Logger(label: "test.client")
        logger.logLevel = .warning
        return try await BrokerConnection.connect(to: bootstrap[0], config: ClientConfiguration(bootstrapServers: bootstrap), logger: logger)
    }

    func createTopic(_ name: String, partitions: Int32) async throws {
        let conn = try await connection()
        defer { conn.close() }
        var req = CreateTopicsRequest()
        var t = CreateTopicsRequest.CreatableTopic()
        t.name = name
        t.numPartitions = partitions
        t.replicationFactor = 1
        req.topics = [t]
        req.timeoutMs = 10_000
        var attempts = 0
        while true {
            attempts += 1
            let resp = try await conn.send(req)
            let code = resp.topics.first?.errorCode ?? -1
            if code == 0 { return }
            // The broker may still be loading right after start.
            if attempts < 50 && ErrorCode(rawValue: code)?.isRetriable == true {
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            throw KafkaClientError.broker(ErrorCode(rawValue: code) ?? .unknownServerError, resource: name, message: resp.topics.first?.errorMessage)
        }
    }

    /// Appends `values` to one partition as one batch; returns the base offset.
    @discardableResult
    func produce(
        _ topic: String, partition: Int32, values: [String], keys: [String]? = nil, timestamp: Int64? = nil,
        codec: CompressionCodec = .none, headers: [RecordHeader] = []
    ) async throws -> Int64 {
        let conn = try await connection()
        defer { conn.close() }
        var builder = RecordBatchBuilder(codec: codec)
        let ts = timestamp ?? currentTimeMillis()
        for (i, v) in values.enumerated() {
            builder.append(timestamp: ts + Int64(i), key: keys.map { ByteBuffer(string: $0[i]) }, value: ByteBuffer(string: v), headers: headers)
        }
        var req = ProduceRequest()
        req.acks = -1
        req.timeoutMs = 10_000
        var t = ProduceRequest.TopicProduceData()
        t.name = topic
        var p = ProduceRequest.PartitionProduceData()
        p.index = partition
        p.records = try builder.finish()
        t.partitionData = [p]
        req.topicData = [t]
        let resp = try await conn.send(req)
        let pr = resp.responses.first!.partitionResponses.first!
        try KafkaClientError.check(pr.errorCode, resource: "\(topic)-\(partition)")
        return pr.baseOffset
    }
}

/// Runs `body` with a started broker, stopping it afterwards.
func withConsumerBroker<T>(
    configure: (inout BrokerConfig) -> Void = { _ in }, _ body: (ConsumerTestBroker) async throws -> T
) async throws -> T {
    let broker = try await ConsumerTestBroker.start(configure: configure)
    do {
        let result = try await body(broker)
        await broker.stop()
        return result
    } catch {
        await broker.stop()
        throw error
    }
}

/// A consumer configuration for tests: fast heartbeats, earliest reset.
func testConsumerConfig(_ broker: ConsumerTestBroker, group: String?, instance: String? = nil) -> ConsumerConfiguration {
    var c = ConsumerConfiguration(bootstrapServers: broker.bootstrap, groupId: group)
    c.client.clientId = "consumer-test"
    c.client.retryBackoff = .milliseconds(50)
    c.group.sessionTimeout = .seconds(10)
    c.group.heartbeatInterval = .milliseconds(200)
    c.group.rebalanceTimeout = .seconds(10)
    c.group.groupInstanceId = instance
    c.offsets.autoOffsetReset = .earliest
    c.fetch.maxWait = .milliseconds(100)
    c.fetch.allowAutoCreateTopics = false
    return c
}

func testLogger(_ label: String = "test.consumer") -> Logger {
    var l = Logger(label: label)
    l.logLevel = ProcessInfo.processInfo.environment["BROOK_TEST_LOG"] == nil ? .warning : .debug
    return l
}

/// Records collected by consumers running in tasks.
final class Collected: Sendable {
    struct Entry: Sendable, Hashable {
        var consumer: Int
        var topic: String
        var partition: Int32
        var offset: Int64
        var value: String
    }

    private let entries = Mutex<[Entry]>([])

    func add(_ consumer: Int, _ r: ConsumerRecord) {
        let e = Entry(
            consumer: consumer, topic: r.topic, partition: r.partition, offset: r.offset,
            value: r.value.map { String(buffer: $0) } ?? "")
        entries.withLock { $0.append(e) }
    }

    var all: [Entry] { entries.withLock { $0 } }
    var count: Int { entries.withLock { $0.count } }
    var values: Set<String> { Set(all.map(\.value)) }
}

/// Waits until `condition` holds (polling), failing after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    throw TimedOut(what: what)
}

struct TimedOut: Error { var what: String }

/// Starts a task consuming `consumer.messages` into `collected`.
func consume(_ consumer: KafkaConsumer, id: Int, into collected: Collected, delay: Duration? = nil) -> Task<Void, any Error> {
    Task {
        for try await r in consumer.messages {
            collected.add(id, r)
            if let delay { try await Task.sleep(for: delay) }
        }
    }
}

/// Rebalance events seen by a listener.
final class RebalanceLog: ConsumerRebalanceListener, Sendable {
    enum Event: Sendable, Equatable {
        case assigned([TP])
        case revoked([TP])
        case lost([TP])
    }

    private let events = Mutex<[Event]>([])
    var all: [Event] { events.withLock { $0 } }

    func partitionsAssigned(_ partitions: [TP], consumer: KafkaConsumer) async {
        events.withLock { $0.append(.assigned(partitions)) }
    }

    func partitionsRevoked(_ partitions: [TP], consumer: KafkaConsumer) async {
        events.withLock { $0.append(.revoked(partitions)) }
    }

    func partitionsLost(_ partitions: [TP], consumer: KafkaConsumer) async {
        events.withLock { $0.append(.lost(partitions)) }
    }
}

/// A metrics backend that keeps the last value of every gauge, by label and dimensions.
final class TestGauges: MetricsFactory, Sendable {
    final class Store: Sendable {
        let values = Mutex<[String: Double]>([:])
    }

    final class Handler: RecorderHandler, CounterHandler, TimerHandler, Sendable {
        let key: String
        let store: Store
        init(key: String, store: Store) {
            self.key = key
            self.store = store
        }
        func record(_ value: Int64) { store.values.withLock { $0[key] = Double(value) } }
        func record(_ value: Double) { store.values.withLock { $0[key] = value } }
        func increment(by: Int64) {}
        func reset() {}
        func recordNanoseconds(_ duration: Int64) {}
    }

    private let store = Store()

    static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: ",")
    }

    func value(_ label: String, _ dimensions: [(String, String)]) -> Double? {
        store.values.withLock { $0[Self.key(label, dimensions)] }
    }

    private func handler(_ label: String, _ dimensions: [(String, String)]) -> Handler {
        Handler(key: Self.key(label, dimensions), store: store)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { handler(label, dimensions) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { handler(label, dimensions) }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { handler(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
