import BrookProtocol
import Logging
import NIOCore
import ServiceLifecycle

/// A Kafka producer in pure Swift: batching per partition, compression, idempotence (on by
/// default), bounded memory.
///
/// Records are appended straight into per-partition record batches; a batch goes out when it
/// is full or ``ProducerConfiguration/linger`` has passed, and one sender per broker packs the
/// ready batches of all the partitions that broker leads into one produce request, with up to
/// ``ProducerConfiguration/maxInFlightRequestsPerConnection`` requests in flight. With
/// idempotence, retries reuse the batches' sequence numbers, so they never duplicate or reorder.
///
/// ```swift
/// let producer = try KafkaProducer(configuration: .init(bootstrapServers: [try BrokerAddress(parsing: "127.0.0.1:9092")]), logger: logger)
/// let metadata = try await producer.send(ProducerRecord(topic: "payments", key: "acct-1", value: "{...}"))
/// print(metadata.partition, metadata.offset)
///
/// // Without waiting: outcomes arrive on `deliveryReports`.
/// Task { for await report in producer.deliveryReports { ... } }
/// try await producer.sendAsync(ProducerRecord(topic: "payments", value: "{...}"))
/// await producer.close()   // flushes first
/// ```
///
/// As a swift-service-lifecycle `Service`, ``run()`` keeps the producer until graceful shutdown,
/// then closes it. Used on its own, call ``close()`` when done.
public final class KafkaProducer: Service, Sendable {
    /// The settings the producer was created with.
    public let configuration: ProducerConfiguration
    let engine: ProducerEngine
    /// The default partitioner: keyed records go by murmur2 (hashed outside the engine's lock).
    private let hashesKeys: Bool

    /// Creates a producer with its own connections to the cluster.
    ///
    /// Connections open lazily; with idempotence the producer id is requested in the background.
    /// Throws ``KafkaClientError/invalidConfiguration(_:)`` for inconsistent settings.
    public convenience init(configuration: ProducerConfiguration, logger: Logger = Logger(label: "brook.producer")) throws {
        try self.init(configuration: configuration, cluster: nil, logger: logger)
    }

    /// Creates a producer that shares `cluster` (its metadata and connections) with other
    /// clients. The cluster stays open when the producer closes.
    public convenience init(configuration: ProducerConfiguration, cluster: KafkaCluster, logger: Logger = Logger(label: "brook.producer")) throws {
        try self.init(configuration: configuration, cluster: .some(cluster), logger: logger)
    }

    private init(configuration: ProducerConfiguration, cluster: KafkaCluster?, logger: Logger) throws {
        try configuration.validate()
        var client = configuration.client
        // Produce requests may legitimately take request.timeout.ms at the broker.
        client.requestTimeout = max(client.requestTimeout, configuration.requestTimeout + .seconds(5))
        var config = configuration
        config.client = client
        self.configuration = configuration
        if case .default = configuration.partitioner { hashesKeys = true } else { hashesKeys = false }
        var l = logger
        l[metadataKey: BrookLogKey.clientId] = "\(configuration.client.clientId)"
        engine = ProducerEngine(config: config, cluster: cluster, logger: l)
        engine.start()
    }

    /// Sends a record and waits until the broker acknowledged it (with `acks=0`: until it was
    /// written to the connection; the offset is then -1).
    ///
    /// Suspends while `buffer.memory` is full and while the topic's metadata is fetched, at most
    /// ``ProducerConfiguration/maxBlock``. Throws ``KafkaClientError``: the broker's error for
    /// the record's partition, ``KafkaClientError/timedOut(_:)`` after the delivery timeout,
    /// ``KafkaClientError/shutdown`` once closed.
    public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        let hash = keyHash(record)
        var held = 0
        defer { if held > 0 { engine.releaseMemory(held) } }
        while true {
            do {
                return try await withCheckedThrowingContinuation { (c: CheckedContinuation<RecordMetadata, any Error>) in
                    switch engine.append(record, keyHash: hash, held: &held, waiter: SendWaiter(c)) {
                    case .appended:
                        break
                    case .needTopic:
                        c.resume(throwing: AppendRetry.needTopic)
                    case .needMemory(let n):
                        c.resume(throwing: AppendRetry.needMemory(n))
                    case .failed(let e):
                        c.resume(throwing: e)
                    }
                }
            } catch let retry as AppendRetry {
                try await satisfy(retry, record: record, held: &held)
            }
        }
    }

    /// Hands a record to the producer without waiting for its acknowledgement; the outcome
    /// arrives on ``deliveryReports`` under the returned id.
    ///
    /// Returns once the record is in a batch. Suspends (at most ``ProducerConfiguration/maxBlock``)
    /// only while `buffer.memory` is full or the topic's metadata is being fetched.
    @discardableResult
    @inlinable
    public func sendAsync(_ record: ProducerRecord) async throws -> UInt64 {
        // Inlined into the caller: a record that fits the open batch costs no async call (an
        // executor check, a task-allocator frame and TLS lookups per record).
        if let id = try appendNow(record) { return id }
        return try await sendAsyncSlowPath(record)
    }

    /// `sendAsync`'s fast path: the record's id if it went into a batch now (room in the
    /// batch, the topic known, room for its report); nil if it must wait.
    @usableFromInline
    func appendNow(_ record: ProducerRecord) throws -> UInt64? {
        if engine.reports.isFull { return nil }
        var none = 0
        switch engine.append(record, keyHash: keyHash(record), held: &none, waiter: nil) {
        case .appended(let id): return id
        case .failed(let e): throw e
        case .needTopic, .needMemory: return nil
        }
    }

    @usableFromInline
    func sendAsyncSlowPath(_ record: ProducerRecord) async throws -> UInt64 {
        if engine.reports.isFull {
            try await engine.reports.waitForSpace(maxBlock: configuration.maxBlock)
        }
        let hash = keyHash(record)
        var held = 0
        defer { if held > 0 { engine.releaseMemory(held) } }
        while true {
            switch engine.append(record, keyHash: hash, held: &held, waiter: nil) {
            case .appended(let id):
                return id
            case .needTopic:
                try await satisfy(.needTopic, record: record, held: &held)
            case .needMemory(let n):
                try await satisfy(.needMemory(n), record: record, held: &held)
            case .failed(let e):
                throw e
            }
        }
    }

    private func satisfy(_ need: AppendRetry, record: ProducerRecord, held: inout Int) async throws {
        switch need {
        case .needTopic:
            try await engine.ensureTopic(record.topic)
        case .needMemory(let n):
            if held > 0 {
                engine.releaseMemory(held)
                held = 0
            }
            try await engine.acquireMemory(n)
            held = n
        }
    }

    @inline(__always)
    private func keyHash(_ record: ProducerRecord) -> Int32? {
        guard hashesKeys, record.partition == nil, let key = record.key else { return nil }
        return key.withUnsafeReadableBytes { Murmur2.hash(raw: $0) }
    }

    /// Outcomes of the records given to ``sendAsync(_:)``, one report each, in acknowledgement
    /// order (per partition: offset order). Records given to ``send(_:)`` are not reported here.
    ///
    /// Reports are kept from the first access of this property on, so read it before sending;
    /// until then none are kept. They are handed over per produce response (one wake-up for many
    /// reports; ``DeliveryReports/batches`` gives them as arrays). A single task should iterate
    /// it and keep reading until the producer closes: at most
    /// ``ProducerConfiguration/maxBufferedDeliveryReports`` unread reports are kept, and while
    /// that many wait, ``sendAsync(_:)`` suspends (backpressure, at most
    /// ``ProducerConfiguration/maxBlock``). It finishes when the producer is closed.
    public var deliveryReports: DeliveryReports {
        engine.enableReports()
        return DeliveryReports(buffer: engine.reports)
    }

    /// Sends everything handed to the producer so far without waiting for `linger`, and returns
    /// when all of it was acknowledged or failed.
    public func flush() async {
        await engine.flush()
    }

    /// Graceful close: refuses new records, flushes, then stops the senders and closes the
    /// connections (unless the cluster is shared). Safe to call more than once.
    public func close() async {
        await engine.close()
    }

    /// Runs until graceful shutdown (or ``close()``), then closes. On cancellation the producer
    /// stops at once and unacknowledged records fail with ``KafkaClientError/shutdown``.
    public func run() async throws {
        let engine = self.engine
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await engine.waitUntilClosed()
            } onGracefulShutdown: {
                Task { await engine.close() }
            }
        } onCancel: {
            Task { await engine.stop(error: .shutdown) }
        }
    }

    /// Bytes of `buffer.memory` currently held by batches not yet acknowledged.
    public var bufferedBytes: Int { engine.bufferedBytes }

    /// The idempotent producer's id and epoch, once `InitProducerId` answered.
    public var producerIdentity: (producerId: Int64, epoch: Int16)? { engine.producerIdentity.map { ($0.producerId, $0.epoch) } }

    /// Whether ``close()`` completed.
    public var isClosed: Bool { engine.isClosed }
}
