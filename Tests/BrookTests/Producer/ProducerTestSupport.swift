@testable import Brook
import BrookBroker
import BrookProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix

/// An in-process Brook broker behind its real TCP server, restartable on the same port and
/// data directory.
final class ProducerTestBroker: @unchecked Sendable {
    let directory: URL
    let port: Int
    let defaultPartitions: Int32
    private var embedded: EmbeddedBroker?
    let logger: Logger

    var address: BrokerAddress { BrokerAddress(host: "127.0.0.1", port: port) }

    private init(directory: URL, port: Int, defaultPartitions: Int32) {
        self.directory = directory
        self.port = port
        self.defaultPartitions = defaultPartitions
        var l = Logger(label: "test.broker")
        l.logLevel = .critical
        self.logger = l
    }

    static func start(defaultPartitions: Int32 = 3) async throws -> ProducerTestBroker {
        // A fixed port (restarts must keep it), found free a moment ago: another socket of this
        // busy process may take it meanwhile, so a failed start tries another one.
        var attempt = 0
        while true {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brook-producer-test-\(UUID().uuidString)")
            let b = ProducerTestBroker(directory: dir, port: try await freePort(), defaultPartitions: defaultPartitions)
            do {
                try await b.start()
                return b
            } catch where attempt < 5 {
                attempt += 1
                b.removeFiles()
            }
        }
    }

    /// Starts a broker on the data directory and port (again, after `stop`).
    func start() async throws {
        let (port, partitions) = (self.port, defaultPartitions)
        embedded = try await EmbeddedBroker.start(.testing, dataDirectory: directory, logger: logger) { c in
            c.port = port
            c.defaultPartitions = partitions
            c.autoCreateTopics = true
            c.groupMinSessionTimeout = .seconds(6)
        }
    }

    /// Stops the server abruptly (connections dropped, in-flight requests unanswered) and closes
    /// the broker's files.
    func stop() async {
        await embedded?.stop(removeData: false)
        embedded = nil
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A port nobody listens on right now.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    func connection() async throws -> BrokerConnection {
        try await BrokerConnection.connect(to: address, config: ClientConfiguration(bootstrapServers: [address]), logger: logger)
    }

    func createTopic(_ name: String, partitions: Int32, configs: [String: String] = [:]) async throws {
        let conn = try await connection()
        defer { conn.close() }
        var r = CreateTopicsRequest()
        var t = CreateTopicsRequest.CreatableTopic()
        t.name = name
        t.numPartitions = partitions
        t.replicationFactor = 1
        t.configs = configs.map { k, v in
            var c = CreateTopicsRequest.CreatableTopicConfig()
            c.name = k
            c.value = v
            return c
        }
        r.topics = [t]
        let resp = try await conn.send(r)
        let code = resp.topics.first?.errorCode ?? -1
        guard code == 0 else { throw KafkaClientError.broker(ErrorCode(rawValue: code) ?? .unknownServerError, resource: name, message: nil) }
    }

    /// Every record of every partition, read with Fetch requests from offset 0 to the high watermark.
    func consumeAll(topic: String, partitions: Int32) async throws -> [Int32: [ReadBackRecord]] {
        let conn = try await connection()
        defer { conn.close() }
        let version = min(try conn.version(for: .fetch), 12)
        var out: [Int32: [ReadBackRecord]] = [:]
        for p in 0..<partitions {
            var offset: Int64 = 0
            var records: [ReadBackRecord] = []
            while true {
                var r = FetchRequest()
                r.maxWaitMs = 0
                r.minBytes = 0
                r.maxBytes = 8 * 1024 * 1024
                var ft = FetchRequest.FetchTopic()
                ft.topic = topic
                var fp = FetchRequest.FetchPartition()
                fp.partition = p
                fp.fetchOffset = offset
                fp.partitionMaxBytes = 4 * 1024 * 1024
                ft.partitions = [fp]
                r.topics = [ft]
                let resp = try await conn.send(r, version: version)
                guard let pd = resp.responses.first?.partitions.first else { break }
                guard pd.errorCode == 0 else {
                    throw KafkaClientError.broker(ErrorCode(rawValue: pd.errorCode) ?? .unknownServerError, resource: "\(topic)-\(p)", message: nil)
                }
                var progressed = false
                if let bytes = pd.records {
                    for batch in try RecordBatch.batches(in: bytes) {
                        try batch.verifyCRC()
                        for rec in try batch.decodeRecords() {
                            let o = batch.offset(of: rec)
                            guard o >= offset else { continue }
                            records.append(ReadBackRecord(
                                offset: o,
                                key: rec.key.map { String(buffer: $0) },
                                value: rec.value.map { String(buffer: $0) },
                                headers: rec.headers.map { ReadBackHeader(key: $0.key, value: $0.value.map { String(buffer: $0) }) },
                                timestamp: batch.timestamp(of: rec),
                                producerId: batch.header.producerId,
                                codec: try batch.header.codec))
                            offset = o + 1
                            progressed = true
                        }
                    }
                }
                if !progressed || offset >= pd.highWatermark { break }
            }
            out[p] = records
        }
        return out
    }
}

struct ReadBackHeader: Hashable {
    var key: String
    var value: String?
}

struct ReadBackRecord: Hashable {
    var offset: Int64
    var key: String?
    var value: String?
    var headers: [ReadBackHeader]
    var timestamp: Int64
    var producerId: Int64
    var codec: CompressionCodec
}

func makeProducerConfig(_ broker: ProducerTestBroker, configure: (inout ProducerConfiguration) -> Void = { _ in }) -> ProducerConfiguration {
    var c = ProducerConfiguration(bootstrapServers: [broker.address])
    c.client.clientId = "producer-test"
    c.client.reconnectBackoffMax = .milliseconds(200)
    configure(&c)
    return c
}

var producerTestLogger: Logger {
    var l = Logger(label: "test.producer")
    l.logLevel = ProcessInfo.processInfo.environment["BROOK_PRODUCER_TEST_DEBUG"] != nil ? .trace : .critical
    return l
}

/// Collects delivery reports in the background.
final class DeliveryReportCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [DeliveryReport] = []
    private var task: Task<Void, Never>?

    init(_ stream: DeliveryReports) {
        task = Task {
            for await r in stream {
                self.lock.withLock { self.reports.append(r) }
            }
        }
    }

    var all: [DeliveryReport] { lock.withLock { reports } }
    var count: Int { lock.withLock { reports.count } }

    /// Waits until `n` reports arrived (or the timeout passed) and returns them.
    func wait(for n: Int, timeout: Duration = .seconds(60)) async -> [DeliveryReport] {
        let deadline = ContinuousClock.now + timeout
        while count < n && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return all
    }
}
