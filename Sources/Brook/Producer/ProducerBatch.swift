import BrookProtocol
import Metrics
import NIOCore

/// What the producer remembers of one record until it is acknowledged: enough to report it.
struct PendingRecord {
    /// Offset delta within the batch.
    var index: Int32
    var id: UInt64
    var timestamp: Int64
    var waiter: SendWaiter?
}

/// The caller of ``KafkaProducer/send(_:)`` waiting for its record's acknowledgement. A class,
/// so that a pending record holds one pointer: with a `CheckedContinuation?` field (a type whose
/// layout the compiler cannot see), every copy, destroy and nil check of a pending record went
/// through value-witness calls, several percent of the producer's time per record.
final class SendWaiter: Sendable {
    let continuation: CheckedContinuation<RecordMetadata, any Error>
    init(_ continuation: CheckedContinuation<RecordMetadata, any Error>) { self.continuation = continuation }
}

/// One batch of one partition, from its first record until it is acknowledged or fails.
///
/// Lives under the engine's lock, except while a sender owns it (state `.inFlight`): then only
/// that sender touches its bytes.
/// Its mutable state is only touched under the engine's lock (or by the one sender owning it), so
/// the hot properties opt out of dynamic exclusivity checks.
final class ProducerBatch: @unchecked Sendable {
    enum State {
        /// Still accepting records (the partition's open batch).
        case open
        /// Full; waiting to be sent for the first time.
        case ready
        case inFlight
        /// Failed with a retriable error; waiting for `retryAt`.
        case awaitingRetry
        case done
    }

    /// Creation order, producer-wide (flush waits by it).
    let number: UInt64
    unowned let partition: PartitionState
    @exclusivity(unchecked) var builder: RecordBatchBuilder?
    /// The encoded batch, once a sender finished the builder.
    @exclusivity(unchecked) var bytes: ByteBuffer?
    @exclusivity(unchecked) var records: ContiguousArray<PendingRecord> = []
    @exclusivity(unchecked) var recordCount: Int32 = 0
    /// Memory reserved from `buffer.memory` for this batch; grows while the batch is open.
    @exclusivity(unchecked) var reserved: Int
    let createdAt: ContinuousClock.Instant
    let deadline: ContinuousClock.Instant
    @exclusivity(unchecked) var state: State = .open
    var producerId: Int64 = -1
    var producerEpoch: Int16 = -1
    var baseSequence: Int32 = -1
    /// The identity fields changed after the bytes were encoded.
    var headerStale = false
    var attempts = 0
    var retryAt: ContinuousClock.Instant?
    var lastError: KafkaClientError?

    init(number: UInt64, partition: PartitionState, builder: RecordBatchBuilder, reserved: Int,
         createdAt: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        self.number = number
        self.partition = partition
        self.builder = builder
        self.reserved = reserved
        self.createdAt = createdAt
        self.deadline = deadline
    }

    /// Uncompressed size so far (what `batch.size` limits).
    @exclusivity(unchecked) private(set) var approximateSize = RecordBatchHeader.size

    /// Size on the wire, or the uncompressed size while not yet encoded.
    var size: Int { bytes?.readableBytes ?? approximateSize }

    /// Appends a record unless the batch (not empty) would grow past `limit` bytes; returns the
    /// record's encoded size. Works on the builder in place (a copy would copy its buffer).
    @inline(__always)
    func append(timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?, headers: [RecordHeader], limit: Int) -> Int? {
        let total = Self.append(to: &builder!, timestamp: timestamp, key: key, value: value, headers: headers,
                                limit: recordCount == 0 ? .max : limit)
        guard let total else { return nil }
        let size = total - approximateSize
        approximateSize = total
        recordCount += 1
        return size
    }

    @inline(__always)
    private static func append(to b: inout RecordBatchBuilder, timestamp: Int64, key: ByteBuffer?, value: ByteBuffer?,
                               headers: [RecordHeader], limit: Int) -> Int? {
        let size = b.encodedSize(timestamp: timestamp, key: key, value: value, headers: headers)
        let total = b.uncompressedSize + size
        guard total <= limit else { return nil }
        b.append(timestamp: timestamp, key: key, value: value, headers: headers)
        return total
    }

    /// Encodes the batch (compressing if configured) and patches the producer identity in.
    func prepareForSend() throws {
        if bytes == nil, builder != nil {
            builder!.producerId = producerId
            builder!.producerEpoch = producerEpoch
            builder!.baseSequence = baseSequence
            // Moved out, not copied: a second reference to its buffer would make finishing
            // (which writes the header) copy the whole batch.
            bytes = try builder.take()!.finish()
            headerStale = false
        } else if headerStale, var buf = bytes {
            bytes = nil
            let at = buf.readerIndex
            buf.setInteger(producerId, at: at + RecordBatchHeader.producerIdOffset)
            buf.setInteger(producerEpoch, at: at + RecordBatchHeader.producerEpochOffset)
            buf.setInteger(baseSequence, at: at + RecordBatchHeader.baseSequenceOffset)
            _ = try buf.updateRecordBatchCRC(batchAt: at)
            bytes = buf
            headerStale = false
        }
    }
}

/// Per-topic metric handles, created once.
struct TopicMetrics {
    let records: Counter
    let bytes: Counter
    let errors: Counter
    let retries: Counter

    init(topic: String, clientId: String) {
        let dims = [("client_id", clientId), ("topic", topic)]
        records = Counter(label: "brook_producer_records_sent_total", dimensions: dims)
        bytes = Counter(label: "brook_producer_bytes_sent_total", dimensions: dims)
        errors = Counter(label: "brook_producer_record_errors_total", dimensions: dims)
        retries = Counter(label: "brook_producer_retries_total", dimensions: dims)
    }
}

final class TopicState: @unchecked Sendable {
    let name: String
    @exclusivity(unchecked) var partitions: [PartitionState] = []
    /// Partitions that currently have a leader (the sticky partitioner prefers these).
    @exclusivity(unchecked) var available: [Int32] = []
    @exclusivity(unchecked) var sticky: Int32 = -1
    @exclusivity(unchecked) var stickyBytes = 0
    @exclusivity(unchecked) var roundRobin = 0
    let metrics: TopicMetrics

    init(name: String, clientId: String) {
        self.name = name
        self.metrics = TopicMetrics(topic: name, clientId: clientId)
    }
}

final class PartitionState: @unchecked Sendable {
    unowned let topic: TopicState
    let id: Int32
    @exclusivity(unchecked) var leader: Int32 = -1
    /// The batch records are appended to.
    @exclusivity(unchecked) var open: ProducerBatch?
    /// Full batches not yet sent, oldest first.
    @exclusivity(unchecked) var ready: [ProducerBatch] = []
    /// Batches sent at least once (in flight or awaiting a retry), in sequence order.
    var unacked: [ProducerBatch] = []
    var inFlight = 0
    /// The broker the in-flight requests went to (a leader change waits for them).
    var inFlightNode: Int32 = -1
    /// Idempotence: the identity this partition's sequences belong to, the next sequence, and
    /// whether they must start over (see ``IdempotenceStateMachine``).
    @exclusivity(unchecked) var sequence = PartitionSequence()
    /// Size and record count the previous batch closed at: where the next one starts.
    @exclusivity(unchecked) var lastBatchBytes = 0
    @exclusivity(unchecked) var lastBatchRecords = 0

    /// Closes the open batch: it waits in `ready` to be sent.
    func closeOpen() {
        guard let b = open else { return }
        open = nil
        b.state = .ready
        ready.append(b)
        noteClosed(b)
    }

    /// Remembers what the batch used (rounded up to a power of two, so that the next one rarely
    /// grows), not what it reserved: after a burst, quiet batches shrink back.
    func noteClosed(_ b: ProducerBatch) {
        lastBatchBytes = b.approximateSize <= 1 ? 0 : 1 << (Int.bitWidth - (b.approximateSize - 1).leadingZeroBitCount)
        lastBatchRecords = Int(b.recordCount)
    }

    init(topic: TopicState, id: Int32) {
        self.topic = topic
        self.id = id
    }

    var isIdle: Bool { open == nil && ready.isEmpty && unacked.isEmpty }
}
