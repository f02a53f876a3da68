import Brook
import BrookProtocol
import NIOCore

/// One consumed record after the pipeline decoded its value: what handlers and sinks receive.
public struct PipelineRecord<Value: Sendable>: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch (the record's timestamp).
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var headers: [RecordHeader]
    public var value: Value

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64, key: ByteBuffer?, headers: [RecordHeader], value: Value) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.headers = headers
        self.value = value
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
    /// The key as UTF-8 text, for logs and quarantine bookkeeping.
    public var keyString: String? { key.map { String(buffer: $0) } }
}

/// A handler's or sink's verdict on one record it could not process.
///
/// `.retryable` errors are retried in place with exponential backoff (order kept); after the
/// configured attempts, or at once for `.nonRetryable`, the record goes to the dead-letter topic.
public struct RecordError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case retryable, nonRetryable }
    /// Offset of the failing record within the batch that was handed over.
    public var offset: Int64
    public var kind: Kind
    /// A short, stable name for the failure (`DecodeError`, `InvalidEvent`, …); becomes a DLT header.
    public var type: String
    public var message: String

    public init(offset: Int64, kind: Kind, type: String, message: String) {
        self.offset = offset
        self.kind = kind
        self.type = type
        self.message = message
    }

    public var description: String { "\(type) at offset \(offset): \(message)" }
}
