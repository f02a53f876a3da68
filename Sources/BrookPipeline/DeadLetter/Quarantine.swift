import Brook
import BrookProtocol
import Foundation
import Logging
import NIOCore
import Synchronization

/// One quarantined key: its records wait in the dead-letter topic behind a failed one.
struct QuarantineEntry: Codable, Sendable, Equatable {
    /// The source partition the key's records live in.
    var partition: Int32
    /// Source offset of the key's latest dead-lettered (failed or parked) record: the key is
    /// released once the replayed copy of *that* record has been processed.
    var lastOffset: Int64
    /// The error that quarantined the key, repeated on parked records so that filtering a
    /// replay by error type takes the parked records along.
    var errorType: String
    /// A replay run whose record failed again: the rest of that run parks behind it.
    var blockedRun: String?
}

/// What to do with a record of a possibly quarantined key.
enum QuarantineDecision: Sendable {
    case process
    case park(QuarantineEntry)
}

/// Per-key quarantine, persisted in a compacted topic `<topic>.quarantine` (key: the record
/// key; value: a ``QuarantineEntry`` as JSON; a tombstone releases the key).
///
/// Why a compacted topic rather than rebuilding from the DLT on start: its size is bounded by
/// the number of keys quarantined *now* (the DLT grows without bound and would have to be read
/// whole at every start and rebalance), it records releases as tombstones (the DLT cannot say
/// which of its records were replayed), and every member of the group reads the same state
/// when it is assigned a partition. An entry is written (acknowledged, acks=all) before the
/// source offset that caused it can be committed, so a crash never lets a later record of the
/// key slip past.
final class Quarantine: Sendable {
    struct Key: Hashable, Sendable {
        var topic: String
        var key: ByteBuffer
    }

    private struct State {
        var entries: [Key: QuarantineEntry] = [:]
        /// Keys changed locally while a load was reading the topic: the local value wins.
        var touchedDuringLoad: Set<Key>? = nil
    }

    let suffix: String
    private let state = Mutex(State())

    init(suffix: String) {
        self.suffix = suffix
    }

    func topic(for source: String) -> String { source + suffix }

    var count: Int { state.withLock { $0.entries.count } }

    func entry(topic: String, key: ByteBuffer) -> QuarantineEntry? {
        state.withLock { $0.entries[Key(topic: topic, key: key)] }
    }

    func decide(_ record: ConsumerRecord) -> QuarantineDecision {
        guard let key = record.key, let e = entry(topic: record.topic, key: key) else { return .process }
        if let marker = ReplayMarker(record.headers), marker.runId != e.blockedRun { return .process }
        return .park(e)
    }

    /// Persists, then records in memory, the key's new entry (nil releases it).
    func set(topic: String, key: ByteBuffer, _ entry: QuarantineEntry?, producer: KafkaProducer) async throws {
        let value = try entry.map { ByteBuffer(bytes: try JSONEncoder().encode($0)) }
        _ = try await producer.send(ProducerRecord(topic: self.topic(for: topic), key: key, value: value))
        state.withLock { s in
            let k = Key(topic: topic, key: key)
            s.entries[k] = entry
            s.touchedDuringLoad?.insert(k)
        }
    }

    /// Replaces the entries of `sources` with what their quarantine topics hold now.
    func load(_ sources: [String], reader: TopicReader) async throws {
        state.withLock { $0.touchedDuringLoad = [] }
        var loaded: [Key: QuarantineEntry] = [:]
        do {
            for source in sources {
                do {
                    try await reader.read(topic(for: source)) { batch, _ in
                        for r in batch.records {
                            guard let key = r.key else { continue }
                            let k = Key(topic: source, key: key)
                            if let v = r.value, v.readableBytes > 0 {
                                loaded[k] = try JSONDecoder().decode(QuarantineEntry.self, from: Data(v.readableBytesView))
                            } else {
                                loaded[k] = nil
                            }
                        }
                    }
                } catch let e as KafkaClientError where e.errorCode == .unknownTopicOrPartition {
                    continue
                }
            }
        } catch {
            state.withLock { $0.touchedDuringLoad = nil }
            throw error
        }
        let sources = Set(sources)
        state.withLock { s in
            let touched = s.touchedDuringLoad ?? []
            var next = s.entries.filter { !sources.contains($0.key.topic) || touched.contains($0.key) }
            for (k, v) in loaded where !touched.contains(k) { next[k] = v }
            s.entries = next
            s.touchedDuringLoad = nil
        }
    }
}
