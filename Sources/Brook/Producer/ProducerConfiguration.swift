import BrookProtocol
import NIOCore

/// Settings of a ``KafkaProducer``. Each property names the Kafka producer setting it mirrors;
/// defaults are Kafka's unless the documentation says otherwise.
///
/// ```swift
/// var config = ProducerConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: 9092)])
/// config.compression = .zstd
/// config.linger = .milliseconds(10)
/// let producer = try KafkaProducer(configuration: config, logger: logger)
/// ```
public struct ProducerConfiguration: Sendable {
    /// `acks`: how many replicas must have the records before the broker answers.
    public enum Acks: Int16, Sendable, CaseIterable {
        /// `acks=0`: fire and forget. Requests get no response; delivered records report offset -1.
        case none = 0
        /// `acks=1`: the partition leader has written the records.
        case leader = 1
        /// `acks=all` (-1): every in-sync replica has the records. Required for idempotence.
        case all = -1
    }

    /// `partitioner.class`: picks the partition of records that don't name one.
    public enum Partitioner: Sendable {
        /// Java's default: keyed records go to `toPositive(murmur2(key)) % partitions` (the same
        /// partition Java, kafka-python and librdkafka's `murmur2_random` choose); keyless
        /// records stick to one partition until about `batch.size` bytes went to it
        /// (KIP-480/KIP-794 "uniform sticky"), then move to another.
        case `default`
        /// Every record (keyed or not) goes to the next partition in turn.
        case roundRobin
        /// Your function: given the record and the topic's partition count, a partition in
        /// `0..<partitionCount` (other values are reduced modulo the count).
        case custom(@Sendable (_ record: ProducerRecord, _ partitionCount: Int32) -> Int32)
    }

    /// Connection settings: bootstrap servers, `client.id`, security, reconnect backoff.
    public var client: ClientConfiguration

    /// `acks` (default `all`).
    public var acks: Acks = .all

    /// `linger.ms` (default 5 ms, Kafka 4.0's default since KIP-1030): how long a batch that is not
    /// yet full waits for more records before it is sent.
    public var linger: Duration = .milliseconds(5)

    /// `batch.size` (default 1,000,000 bytes, as librdkafka's; Java's is 16384): upper bound of one
    /// partition's batch (uncompressed). Larger batches mean fewer requests at high rates. A batch
    /// takes `buffer.memory` as it fills (16 KiB first, then doubling), so a quiet partition holds
    /// little. A record larger than this goes alone in a batch of its own size. Brokers refuse a
    /// batch above the topic's `max.message.bytes` (1,048,588 by default on Kafka, MSK and
    /// Redpanda): lower this for topics configured smaller.
    public var batchSize: Int = 1_000_000

    /// `compression.type` (default none): gzip, snappy, lz4 and zstd are available.
    public var compression: CompressionCodec = .none

    /// `compression.<codec>.level`; nil uses the codec's default level.
    public var compressionLevel: Int? = nil

    /// `enable.idempotence` (default true): a producer id from `InitProducerId` and per-partition
    /// sequence numbers make retries safe: no duplicates, no reordering, up to five requests in
    /// flight. Only honoured with `acks = .all`; with other acks the producer is not idempotent
    /// (as Kafka does when idempotence was not explicitly asked for).
    public var enableIdempotence: Bool = true

    /// `max.in.flight.requests.per.connection` (default 5, at most 5 with idempotence): produce
    /// requests sent to one broker that have not been answered yet.
    public var maxInFlightRequestsPerConnection: Int = 5

    /// `retries` (default unlimited): how often a batch is retried after a retriable error;
    /// ``deliveryTimeout`` bounds the time spent anyway.
    public var retries: Int = .max

    /// `delivery.timeout.ms` (default 120 s): time from `send` until a record is reported
    /// delivered or failed, retries included.
    public var deliveryTimeout: Duration = .seconds(120)

    /// `request.timeout.ms` (default 30 s): the time the broker may take to answer one produce
    /// request (also sent to the broker as the request's timeout).
    public var requestTimeout: Duration = .seconds(30)

    /// `retry.backoff.ms` (default 100 ms): first wait before a retry; doubles per attempt up to
    /// ``retryBackoffMax``, with ±20% jitter.
    public var retryBackoff: Duration = .milliseconds(100)

    /// `retry.backoff.max.ms` (default 1 s).
    public var retryBackoffMax: Duration = .seconds(1)

    /// `buffer.memory` (default 16 MiB; Kafka: 32 MiB): bytes of record batches not yet acknowledged. When
    /// full, `send` and `sendAsync` suspend until acknowledgements free space (or ``maxBlock``
    /// passes); the buffer never grows past it.
    public var bufferMemory: Int = 16 * 1024 * 1024

    /// How many unread ``DeliveryReport``s the producer keeps (default 65,536) once
    /// ``KafkaProducer/deliveryReports`` was accessed. With that many waiting,
    /// ``KafkaProducer/sendAsync(_:)`` suspends until the reader takes them (or ``maxBlock``
    /// passes), so unread reports never grow memory without bound. Not a Kafka setting.
    public var maxBufferedDeliveryReports: Int = 65_536

    /// `max.request.size` (default 1 MiB): the largest produce request, and so the largest record.
    public var maxRequestSize: Int = 1024 * 1024

    /// `max.block.ms` (default 60 s): how long `send` may suspend for buffer space or for the
    /// topic's metadata before it throws.
    public var maxBlock: Duration = .seconds(60)

    /// `partitioner.class` (default: Java's murmur2 for keyed records, sticky for keyless).
    public var partitioner: Partitioner = .default

    /// Settings with Kafka's defaults (and Brook's where documented) over `client`'s connection settings.
    public init(client: ClientConfiguration) {
        self.client = client
    }

    /// Settings with the defaults, bootstrapping from `bootstrapServers` (plaintext, no SASL).
    public init(bootstrapServers: [BrokerAddress]) {
        self.client = ClientConfiguration(bootstrapServers: bootstrapServers)
    }

    /// Whether the producer really runs idempotently (requires acks=all).
    var isIdempotent: Bool { enableIdempotence && acks == .all }

    func validate() throws {
        func fail(_ s: String) -> KafkaClientError { .invalidConfiguration(s) }
        if client.bootstrapServers.isEmpty { throw fail("bootstrap.servers is empty") }
        if batchSize < 1 { throw fail("batch.size must be positive") }
        if maxBufferedDeliveryReports < 1 { throw fail("maxBufferedDeliveryReports (\(maxBufferedDeliveryReports)) must be at least 1") }
        if bufferMemory < batchSize { throw fail("buffer.memory (\(bufferMemory)) must be at least batch.size (\(batchSize))") }
        if maxRequestSize < 1024 { throw fail("max.request.size must be at least 1024") }
        if maxInFlightRequestsPerConnection < 1 { throw fail("max.in.flight.requests.per.connection must be at least 1") }
        if isIdempotent && maxInFlightRequestsPerConnection > 5 {
            throw fail("max.in.flight.requests.per.connection must be at most 5 with enable.idempotence (got \(maxInFlightRequestsPerConnection))")
        }
        if retries < 0 { throw fail("retries must not be negative") }
        if linger < .zero { throw fail("linger.ms must not be negative") }
        if deliveryTimeout <= .zero { throw fail("delivery.timeout.ms must be positive") }
        if compression != .none { try compression.checkAvailable() }
    }
}

/// One record to produce.
public struct ProducerRecord: Sendable {
    /// The topic to write to.
    public var topic: String
    /// An explicit partition; nil lets the partitioner choose.
    public var partition: Int32?
    /// The key: nil for none. The default partitioner hashes it (murmur2) to pick the partition.
    public var key: ByteBuffer?
    /// The value: nil for none (a tombstone in a compacted topic).
    public var value: ByteBuffer?
    /// Record headers, kept in order (keys may repeat).
    public var headers: [RecordHeader]
    /// Create time in milliseconds since 1970; nil means now.
    public var timestamp: Int64?

    /// A record with `ByteBuffer` key and value. Buffers are copy-on-write: the producer copies
    /// their bytes once, into the batch.
    public init(topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?,
                headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// A record with byte-array key and value.
    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?,
                headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { ByteBuffer(bytes: $0) }, value: value.map { ByteBuffer(bytes: $0) },
                  headers: headers, timestamp: timestamp)
    }

    /// A record with a UTF-8 key and value.
    public init(topic: String, partition: Int32? = nil, key: String? = nil, value: String,
                headers: [RecordHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { ByteBuffer(string: $0) }, value: ByteBuffer(string: value),
                  headers: headers, timestamp: timestamp)
    }
}

/// Where an acknowledged record was written.
public struct RecordMetadata: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    /// The record's offset; -1 when unknown (acks=0, or a retry the broker recognised as a
    /// duplicate of a batch it could no longer place).
    public var offset: Int64
    /// The record's timestamp (ms): its create time, or the broker's log-append time when the
    /// topic uses `LogAppendTime`.
    public var timestamp: Int64

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
    }

    public var description: String { "\(topic)-\(partition)@\(offset)" }
}

/// The outcome of one record given to ``KafkaProducer/sendAsync(_:)``.
public struct DeliveryReport: Sendable {
    /// The id ``KafkaProducer/sendAsync(_:)`` returned for the record.
    public var id: UInt64
    public var topic: String
    /// The partition the record was assigned to.
    public var partition: Int32
    public var result: Result<RecordMetadata, KafkaClientError>

    public init(id: UInt64, topic: String, partition: Int32, result: Result<RecordMetadata, KafkaClientError>) {
        self.id = id
        self.topic = topic
        self.partition = partition
        self.result = result
    }
}
