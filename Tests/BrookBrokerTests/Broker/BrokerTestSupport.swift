@testable import BrookBroker
import BrookProtocol
import Foundation
import Logging
import NIOCore

/// Drives a `Broker` in-process through `handle(frame:connection:)`, exactly as the server does,
/// with frames encoded by the generated message types.
final class BrokerHarness: Sendable {
    let broker: Broker
    let directory: URL
    let connection: Connection

    init(directory: URL? = nil, configure: (inout BrokerConfig) -> Void = { _ in }) async throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("brook-test-\(UUID().uuidString)")
        self.directory = dir
        var config = BrokerConfig(dataDirectory: dir)
        config.groupInitialRebalanceDelay = .zero
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        broker = try Broker(config: config, logger: logger)
        connection = Connection(remote: "[IPv4]127.0.0.1/127.0.0.1:1", logger: logger)
        try await broker.start()
    }

    func close() async {
        await broker.shutdown()
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Sends `request` at `version` and decodes the response (nil when the broker sends none).
    func send<R: KafkaRequestMessage>(_ request: R, version: Int16, clientId: String = "test") async throws -> R.Response? {
        var frame = ByteBuffer()
        let header = RequestHeader(apiKey: R.apiKey.rawValue, apiVersion: version, correlationId: 42, clientId: clientId)
        header.encode(into: &frame, headerVersion: R.apiKey.requestHeaderVersion(version))
        request.encode(into: &frame, version: version)
        let outcome = await broker.handle(frame: frame, connection: connection)
        let bytes: ByteBuffer?
        switch outcome {
        case .respond(let b): bytes = b
        case .deferred(let work): bytes = await work()
        case .close(let reason): throw HarnessError.closed(reason)
        }
        guard var buf = bytes else { return nil }
        let size = buf.readInteger(as: Int32.self)!
        precondition(Int(size) == buf.readableBytes)
        let h = try ResponseHeader.decode(from: &buf, headerVersion: R.apiKey.responseHeaderVersion(version))
        precondition(h.correlationId == 42)
        return try R.Response(from: &buf, version: version)
    }

    func raw(_ bytes: [UInt8]) async -> RequestOutcome {
        await broker.handle(frame: ByteBuffer(bytes: bytes), connection: connection)
    }
}

enum HarnessError: Error { case closed(String) }

func makeBatch(_ values: [String], keys: [String]? = nil, producerId: Int64 = -1, epoch: Int16 = -1, baseSequence: Int32 = -1,
               codec: CompressionCodec = .none, timestamp: Int64 = 1_700_000_000_000) throws -> ByteBuffer {
    var b = RecordBatchBuilder(codec: codec, producerId: producerId, producerEpoch: epoch, baseSequence: baseSequence)
    for (i, v) in values.enumerated() {
        let key = keys.map { ByteBuffer(string: $0[i]) }
        b.append(timestamp: timestamp + Int64(i), key: key, value: ByteBuffer(string: v))
    }
    return try b.finish()
}

func produceRequest(topic: String, partition: Int32 = 0, records: ByteBuffer, acks: Int16 = -1) -> ProduceRequest {
    var r = ProduceRequest()
    r.acks = acks
    r.timeoutMs = 5000
    var t = ProduceRequest.TopicProduceData()
    t.name = topic
    var p = ProduceRequest.PartitionProduceData()
    p.index = partition
    p.records = records
    t.partitionData = [p]
    r.topicData = [t]
    return r
}

func fetchRequest(topic: String, partition: Int32 = 0, offset: Int64, maxWaitMs: Int32 = 0, minBytes: Int32 = 1) -> FetchRequest {
    var r = FetchRequest()
    r.maxWaitMs = maxWaitMs
    r.minBytes = minBytes
    r.maxBytes = 50 * 1024 * 1024
    var t = FetchRequest.FetchTopic()
    t.topic = topic
    var p = FetchRequest.FetchPartition()
    p.partition = partition
    p.fetchOffset = offset
    p.partitionMaxBytes = 1024 * 1024
    t.partitions = [p]
    r.topics = [t]
    return r
}

func createTopicsRequest(_ name: String, partitions: Int32 = 1, configs: [String: String] = [:], validateOnly: Bool = false) -> CreateTopicsRequest {
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
    r.validateOnly = validateOnly
    return r
}

/// Values of every record in a fetch response's first partition.
func values(in response: FetchResponse) throws -> [String] {
    guard let records = response.responses.first?.partitions.first?.records else { return [] }
    return try RecordBatch.batches(in: records).flatMap { batch in
        try batch.decodeRecords().map { $0.value.map { String(buffer: $0) } ?? "" }
    }
}
