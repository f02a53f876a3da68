import Brook
import BrookProtocol
import Foundation
import Logging
import NIOCore

/// One record of a dead-letter topic with its provenance.
public struct DeadLetterEntry: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    /// All headers as stored (provenance included).
    public var headers: [RecordHeader]
    public var provenance: DeadLetterProvenance
    public var keyString: String? { key.map { String(buffer: $0) } }
}

/// Which dead letters to list or replay.
public struct DeadLetterFilter: Sendable {
    /// Only these keys (UTF-8), nil for all.
    public var keys: Set<String>?
    /// Only records whose original timestamp (ms) lies in this range.
    public var from: Int64?
    public var until: Int64?
    /// Only these error types (``DeadLetterHeader/errorType``; parked records carry the type
    /// of the failure they wait behind).
    public var errorTypes: Set<String>?
    public init(keys: Set<String>? = nil, from: Int64? = nil, until: Int64? = nil, errorTypes: Set<String>? = nil) {
        self.keys = keys
        self.from = from
        self.until = until
        self.errorTypes = errorTypes
    }

    func matches(_ e: DeadLetterEntry) -> Bool {
        if let keys, !keys.contains(e.keyString ?? "") { return false }
        if let t = e.provenance.originalTimestamp {
            if let from, t < from { return false }
            if let until, t > until { return false }
        } else if from != nil || until != nil {
            return false
        }
        if let errorTypes, !errorTypes.contains(e.provenance.errorType ?? "") { return false }
        return true
    }
}

public struct ReplayOptions: Sendable {
    public var filter = DeadLetterFilter()
    /// Report what would be sent; send and record nothing.
    public var dryRun = false
    /// The loop guard: records already replayed this many times are refused (3).
    public var maxReplays = 3
    /// The consumer group that stores the replay's progress on the DLT, so that an interrupted
    /// replay resumes where it stopped (`brook-dlt-replay`). Each filter set that should have its
    /// own progress needs its own group.
    public var progressGroup = "brook-dlt-replay"
    public init() {}
}

public struct ReplayResult: Sendable {
    /// Sent back to their source topics (or, in a dry run, that would be), in order.
    public var replayed: [DeadLetterEntry] = []
    /// Refused by the loop guard, or held back behind a refused or filtered-out earlier record
    /// of the same key (sending them would break that key's order).
    public var refused: [DeadLetterEntry] = []
    /// Not matching the filter.
    public var skipped = 0
}

/// Lists dead-letter topics and replays their records to the source topics. Understands
/// Brook's headers (``DeadLetterHeader``), Spring Kafka's `kafka_dlt-*` and Kafka Connect's
/// `__connect.errors.*`.
///
/// A replayed record carries its original key, value and headers plus
/// `brook.dlt.replay.count` (incremented), `brook.dlt.replay.id` (this run) and
/// `brook.dlt.replay.of` (the dead-lettered source position), and goes to its original
/// partition. A ``Pipeline`` processes it even while its key is quarantined, and releases the
/// key once the replay of the key's last dead-lettered record has been applied; if a replayed
/// record fails again, the rest of that run's records of the key park behind it.
public final class DeadLetterReplayer: Sendable {
    let client: ClientConfiguration
    let logger: Logger

    public init(client: ClientConfiguration, logger: Logger = Logger(label: "brook.dlt")) {
        self.client = client
        self.logger = logger
    }

    var reader: TopicReader { TopicReader(client: client, logger: logger) }

    /// The entries of `dltTopic` matching `filter`, in partition-offset order.
    public func list(_ dltTopic: String, filter: DeadLetterFilter = DeadLetterFilter()) async throws -> [DeadLetterEntry] {
        var out: [DeadLetterEntry] = []
        try await reader.read(dltTopic) { batch, _ in
            for r in batch.records {
                if let e = Self.entry(r), filter.matches(e) { out.append(e) }
            }
        }
        return out
    }

    /// Sends the matching records of `dltTopic` back to their source topics, in order, from
    /// where the progress group left off up to the DLT's end when the call began.
    public func replay(_ dltTopic: String, options: ReplayOptions = ReplayOptions()) async throws -> ReplayResult {
        var result = ReplayResult()
        let runId = UUID().uuidString
        let producer: KafkaProducer? = try options.dryRun ? nil : KafkaProducer(configuration: ProducerConfiguration(client: client), logger: logger)
        /// Keys with an earlier record not sent in this run: their later records wait too.
        var heldKeys: Set<ByteBuffer> = []
        do {
            try await reader.read(dltTopic, group: options.dryRun ? nil : options.progressGroup) { batch, consumer in
                for r in batch.records {
                    guard let e = Self.entry(r) else {
                        result.skipped += 1
                        continue
                    }
                    if let k = e.key, heldKeys.contains(k) {
                        result.refused.append(e)
                        continue
                    }
                    if !options.filter.matches(e) {
                        result.skipped += 1
                        if let k = e.key, options.filter.keys == nil || options.filter.keys!.contains(e.keyString ?? "") { heldKeys.insert(k) }
                        continue
                    }
                    if e.provenance.replayCount >= options.maxReplays {
                        logger.warning(
                            "replay refused: replayed too often",
                            metadata: [BrookLogKey.topic: "\(e.topic)", BrookLogKey.partition: "\(e.partition)", BrookLogKey.offset: "\(e.offset)", BrookLogKey.key: "\(e.keyString ?? "")", "replays": "\(e.provenance.replayCount)"])
                        result.refused.append(e)
                        if let k = e.key { heldKeys.insert(k) }
                        continue
                    }
                    if let producer {
                        _ = try await producer.send(Self.replayRecord(e, runId: runId))
                    }
                    result.replayed.append(e)
                }
                if !options.dryRun {
                    try await consumer.commit(offsets: [batch.topicPartition: batch.nextOffset])
                }
            }
        } catch {
            await producer?.close()
            throw error
        }
        await producer?.close()
        return result
    }

    static func entry(_ r: ConsumerRecord) -> DeadLetterEntry? {
        guard let p = DeadLetterProvenance(headers: r.headers) else { return nil }
        return DeadLetterEntry(topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, headers: r.headers, provenance: p)
    }

    static func replayRecord(_ e: DeadLetterEntry, runId: String) -> ProducerRecord {
        func h(_ k: String, _ v: String) -> RecordHeader { RecordHeader(key: k, value: ByteBuffer(string: v)) }
        var headers = e.headers.filter { !DeadLetterHeader.isProvenance($0.key) }
        headers.append(h(DeadLetterHeader.replayCount, String(e.provenance.replayCount + 1)))
        headers.append(h(DeadLetterHeader.replayId, runId))
        if let p = e.provenance.originalPartition, let o = e.provenance.originalOffset {
            headers.append(h(DeadLetterHeader.replayOf, "\(p):\(o)"))
        }
        return ProducerRecord(
            topic: e.provenance.originalTopic, partition: e.provenance.originalPartition, key: e.key, value: e.value, headers: headers,
            timestamp: e.provenance.originalTimestamp)
    }
}
