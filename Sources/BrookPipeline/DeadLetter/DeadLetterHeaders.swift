import Brook
import BrookProtocol
import NIOCore

/// The headers Brook writes on every dead-letter record. Values are UTF-8 text (numbers in
/// decimal), so `kcat -f '%h'` shows them as they are.
///
/// | header | value |
/// |---|---|
/// | `brook.dlt.original.topic` | topic the record was consumed from |
/// | `brook.dlt.original.partition` | its partition |
/// | `brook.dlt.original.offset` | its offset |
/// | `brook.dlt.original.timestamp` | its timestamp (ms since the epoch) |
/// | `brook.dlt.group` | the consumer group that gave up on it |
/// | `brook.dlt.error.type` | short error name (`DecodeError`, a ``RecordError/type``, a Swift type name) |
/// | `brook.dlt.error.message` | the error's message |
/// | `brook.dlt.attempts` | how many times processing was tried (0 for parked records) |
/// | `brook.dlt.reason` | `failed` (processing failed) or `parked` (its key was quarantined behind an earlier failure) |
/// | `brook.dlt.failed.at` | when it was dead-lettered (ms since the epoch) |
/// | `brook.dlt.replay.count` | set by replay: how many times the record has been replayed (the loop guard) |
/// | `brook.dlt.replay.id` | set by replay: the replay run that sent the record back |
/// | `brook.dlt.replay.of` | set by replay: `partition:offset` of the record in the source topic that was dead-lettered |
///
/// The record's own headers are kept after these (provenance headers of earlier dead-letterings
/// are dropped, except the replay count so the loop guard accumulates).
public enum DeadLetterHeader {
    public static let originalTopic = "brook.dlt.original.topic"
    public static let originalPartition = "brook.dlt.original.partition"
    public static let originalOffset = "brook.dlt.original.offset"
    public static let originalTimestamp = "brook.dlt.original.timestamp"
    public static let group = "brook.dlt.group"
    public static let errorType = "brook.dlt.error.type"
    public static let errorMessage = "brook.dlt.error.message"
    public static let attempts = "brook.dlt.attempts"
    public static let reason = "brook.dlt.reason"
    public static let failedAt = "brook.dlt.failed.at"
    public static let replayCount = "brook.dlt.replay.count"
    public static let replayId = "brook.dlt.replay.id"
    public static let replayOf = "brook.dlt.replay.of"

    static let brookPrefix = "brook.dlt."
    /// Spring Kafka's `DeadLetterPublishingRecoverer` (partition, offset, timestamp as big-endian binary).
    static let springPrefix = "kafka_dlt-"
    /// Kafka Connect's `errors.deadletterqueue.context.headers.enable` (all values as text).
    static let connectPrefix = "__connect.errors."

    /// Whether `key` is provenance written by a dead-lettering (Brook, Spring or Connect).
    static func isProvenance(_ key: String) -> Bool {
        key.hasPrefix(brookPrefix) || key.hasPrefix(springPrefix) || key.hasPrefix(connectPrefix)
    }
}

/// Why a record is in the dead-letter topic.
public enum DeadLetterReason: String, Sendable {
    /// Processing failed (after retries, or at once for non-retryable errors).
    case failed
    /// Its key was quarantined behind an earlier failed record.
    case parked
}

/// Where a dead-letter record came from and why it is there, read from Brook's, Spring Kafka's
/// (`kafka_dlt-*`) or Kafka Connect's (`__connect.errors.*`) headers.
public struct DeadLetterProvenance: Sendable, Equatable {
    public enum Format: String, Sendable { case brook, spring, connect }
    public var format: Format
    public var originalTopic: String
    public var originalPartition: Int32?
    public var originalOffset: Int64?
    public var originalTimestamp: Int64?
    public var group: String?
    public var errorType: String?
    public var errorMessage: String?
    public var attempts: Int?
    public var reason: DeadLetterReason
    public var replayCount: Int

    /// nil when the headers name no original topic in any known scheme.
    public init?(headers: [RecordHeader]) {
        var h: [String: ByteBuffer] = [:]
        for x in headers { if let v = x.value { h[x.key] = v } }
        func text(_ k: String) -> String? { h[k].map { String(buffer: $0) } }
        replayCount = text(DeadLetterHeader.replayCount).flatMap { Int($0) } ?? 0
        if let topic = text(DeadLetterHeader.originalTopic) {
            format = .brook
            originalTopic = topic
            originalPartition = text(DeadLetterHeader.originalPartition).flatMap { Int32($0) }
            originalOffset = text(DeadLetterHeader.originalOffset).flatMap { Int64($0) }
            originalTimestamp = text(DeadLetterHeader.originalTimestamp).flatMap { Int64($0) }
            group = text(DeadLetterHeader.group)
            errorType = text(DeadLetterHeader.errorType)
            errorMessage = text(DeadLetterHeader.errorMessage)
            attempts = text(DeadLetterHeader.attempts).flatMap { Int($0) }
            reason = text(DeadLetterHeader.reason).flatMap(DeadLetterReason.init(rawValue:)) ?? .failed
        } else if let topic = text("kafka_dlt-original-topic") {
            format = .spring
            originalTopic = topic
            originalPartition = h["kafka_dlt-original-partition"].flatMap { Self.integer($0) }.map { Int32(truncatingIfNeeded: $0) }
            originalOffset = h["kafka_dlt-original-offset"].flatMap { Self.integer($0) }
            originalTimestamp = h["kafka_dlt-original-timestamp"].flatMap { Self.integer($0) }
            group = text("kafka_dlt-original-consumer-group")
            // Spring names the exception by its class; keep the simple name as the type.
            errorType = text("kafka_dlt-exception-fqcn").map { String($0.split(separator: ".").last ?? Substring($0)) }
            errorMessage = text("kafka_dlt-exception-message")
            attempts = nil
            reason = .failed
        } else if let topic = text("__connect.errors.topic") {
            format = .connect
            originalTopic = topic
            originalPartition = text("__connect.errors.partition").flatMap { Int32($0) }
            originalOffset = text("__connect.errors.offset").flatMap { Int64($0) }
            originalTimestamp = nil
            group = text("__connect.errors.connector.name").map { "connect-\($0)" }
            errorType = text("__connect.errors.exception.class.name").map { String($0.split(separator: ".").last ?? Substring($0)) }
            errorMessage = text("__connect.errors.exception.message")
            attempts = nil
            reason = .failed
        } else {
            return nil
        }
    }

    /// Spring writes ints and longs as big-endian binary; accept text too.
    static func integer(_ b: ByteBuffer) -> Int64? {
        switch b.readableBytes {
        case 4: return b.getInteger(at: b.readerIndex, endianness: .big, as: Int32.self).map(Int64.init)
        case 8: return b.getInteger(at: b.readerIndex, endianness: .big, as: Int64.self)
        default: return Int64(String(buffer: b))
        }
    }

    /// The headers of a record being dead-lettered: provenance first, then the record's own
    /// headers without earlier provenance (the replay count is kept, for the loop guard).
    static func headers(
        for record: ConsumerRecord, group: String, errorType: String, errorMessage: String, attempts: Int,
        reason: DeadLetterReason, now: Int64
    ) -> [RecordHeader] {
        func h(_ k: String, _ v: String) -> RecordHeader { RecordHeader(key: k, value: ByteBuffer(string: v)) }
        var out = [
            h(DeadLetterHeader.originalTopic, record.topic),
            h(DeadLetterHeader.originalPartition, String(record.partition)),
            h(DeadLetterHeader.originalOffset, String(record.offset)),
            h(DeadLetterHeader.originalTimestamp, String(record.timestamp)),
            h(DeadLetterHeader.group, group),
            h(DeadLetterHeader.errorType, errorType),
            h(DeadLetterHeader.errorMessage, errorMessage),
            h(DeadLetterHeader.attempts, String(attempts)),
            h(DeadLetterHeader.reason, reason.rawValue),
            h(DeadLetterHeader.failedAt, String(now)),
        ]
        for x in record.headers where !DeadLetterHeader.isProvenance(x.key) || x.key == DeadLetterHeader.replayCount {
            out.append(x)
        }
        return out
    }
}

/// The replay markers on a record that a replay sent back to its source topic.
struct ReplayMarker: Sendable, Equatable {
    var runId: String
    var ofPartition: Int32
    var ofOffset: Int64

    init?(_ headers: [RecordHeader]) {
        var run: String?
        var of: String?
        for x in headers {
            if x.key == DeadLetterHeader.replayId { run = x.value.map { String(buffer: $0) } }
            if x.key == DeadLetterHeader.replayOf { of = x.value.map { String(buffer: $0) } }
        }
        guard let run, let parts = of?.split(separator: ":"), parts.count == 2,
            let p = Int32(parts[0]), let o = Int64(parts[1])
        else { return nil }
        runId = run
        ofPartition = p
        ofOffset = o
    }
}
