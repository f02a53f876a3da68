import BrookProtocol
import Foundation
import NIOCore

/// Idempotent-producer state of one partition: per producer id, its epoch and the last five
/// batches' sequence ranges with their offsets (Kafka keeps five, matching
/// max.in.flight.requests.per.connection, so any in-flight retry is recognised).
struct ProducerStateTable: Codable, Sendable {
    struct Batch: Codable, Sendable, Equatable {
        var firstSeq: Int32
        var lastSeq: Int32
        var firstOffset: Int64
        var lastOffset: Int64
    }

    struct Entry: Codable, Sendable {
        var epoch: Int16
        var batches: [Batch]
        var lastTimestamp: Int64
    }

    enum Check {
        case ok
        case duplicate(Int64, Int64)
        case error(ErrorCode)
    }

    var producers: [Int64: Entry] = [:]
    /// Log offset up to which `producers` is exact.
    var snapshotOffset: Int64 = 0

    func check(_ b: BatchInfo) -> Check {
        guard let entry = producers[b.producerId] else {
            return b.baseSequence == 0 ? .ok : .error(.outOfOrderSequenceNumber)
        }
        if b.producerEpoch < entry.epoch { return .error(.invalidProducerEpoch) }
        if b.producerEpoch > entry.epoch {
            return b.baseSequence == 0 ? .ok : .error(.outOfOrderSequenceNumber)
        }
        if let dup = entry.batches.first(where: { $0.firstSeq == b.baseSequence && $0.lastSeq == b.lastSequence }) {
            return .duplicate(dup.firstOffset, dup.lastOffset)
        }
        guard let last = entry.batches.last else {
            return b.baseSequence == 0 ? .ok : .error(.outOfOrderSequenceNumber)
        }
        let expected = last.lastSeq == Int32.max ? 0 : last.lastSeq + 1
        if b.baseSequence != expected {
            // An older in-flight batch we no longer remember is a duplicate Kafka can't place.
            if entry.batches.contains(where: { b.baseSequence >= $0.firstSeq && b.baseSequence <= $0.lastSeq }) || b.baseSequence < (entry.batches.first?.firstSeq ?? 0) {
                return .error(.duplicateSequenceNumber)
            }
            return .error(.outOfOrderSequenceNumber)
        }
        return .ok
    }

    mutating func record(_ b: BatchInfo, firstOffset: Int64, lastOffset: Int64) {
        var entry = producers[b.producerId] ?? Entry(epoch: b.producerEpoch, batches: [], lastTimestamp: b.maxTimestamp)
        if b.producerEpoch != entry.epoch {
            entry = Entry(epoch: b.producerEpoch, batches: [], lastTimestamp: b.maxTimestamp)
        }
        entry.batches.append(Batch(firstSeq: b.baseSequence, lastSeq: b.lastSequence, firstOffset: firstOffset, lastOffset: lastOffset))
        if entry.batches.count > 5 { entry.batches.removeFirst(entry.batches.count - 5) }
        entry.lastTimestamp = max(entry.lastTimestamp, b.maxTimestamp)
        producers[b.producerId] = entry
    }

    /// Rebuilds state from batch headers in the log from `offset` on.
    mutating func replay(from log: PartitionLog, startingAt offset: Int64) throws {
        var next = offset
        let end = log.logEndOffset
        while next < end {
            let chunk = try log.read(from: next, maxBytes: 4 * 1024 * 1024, minOneBatch: true, upTo: end)
            if chunk.readableBytes == 0 { break }
            var index = chunk.readerIndex
            var advanced = false
            while index + RecordBatchHeader.size <= chunk.writerIndex {
                let h = try RecordBatchHeader(parsing: chunk, at: index)
                if index + h.totalSize > chunk.writerIndex { break }
                if h.producerId >= 0 && h.lastOffset >= next {
                    let b = BatchInfo(producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence,
                                      lastOffsetDelta: h.lastOffsetDelta, recordCount: h.recordCount, maxTimestamp: h.maxTimestamp)
                    record(b, firstOffset: h.baseOffset, lastOffset: h.lastOffset)
                }
                if h.nextOffset > next {
                    next = h.nextOffset
                    advanced = true
                }
                index += h.totalSize
            }
            if !advanced { break }
        }
        snapshotOffset = next
    }

    static func load(from url: URL) throws -> ProducerStateTable {
        let data = try Data(contentsOf: url)
        return try JSONDecoder().decode(ProducerStateTable.self, from: data)
    }

    func save(to url: URL, offset: Int64) throws {
        var copy = self
        copy.snapshotOffset = offset
        try AtomicFile.write(try JSONEncoder().encode(copy), to: url)
    }
}
