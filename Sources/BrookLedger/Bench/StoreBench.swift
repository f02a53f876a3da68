import Brook
import BrookPipeline
import BrookProtocol
import Foundation
import NIOCore

/// The store alone, without broker or pipeline: how fast ``LedgerStore/apply(batches:group:)``
/// commits decoded events (the ceiling the stream's sink sets). For profiling.
public enum StoreBench {
    public static func run(database: LedgerDatabase, events: Int, accounts: Int, partitions: Int32, perCall: Int) async throws -> Double {
        let store = try await database.openStore()
        let records = Array(LedgerGenerator(LedgerGeneratorConfig(accounts: accounts, events: events, seed: 3)))
        var byPartition: [Int32: [PipelineRecord<LedgerEvent>]] = [:]
        var offsets: [Int32: Int64] = [:]
        for r in records {
            guard let e = r.event else { continue }
            let p = Murmur2.partition(key: Array(r.key.utf8), partitions: partitions)  // as the producer places it
            let o = offsets[p, default: 0]
            offsets[p] = o + 1
            byPartition[p, default: []].append(
                PipelineRecord(topic: "t", partition: p, offset: o, timestamp: 0, key: nil, headers: [], value: e))
        }
        let per = max(perCall / Int(partitions), 1)
        var next: [Int32: Int] = [:]
        var stored: [Int32: Int64] = [:]
        let start = ContinuousClock.now
        var applied = 0
        while applied < records.count {
            var batches: [SinkBatch<LedgerEvent>] = []
            for (p, rs) in byPartition {
                let from = next[p, default: 0]
                guard from < rs.count else { continue }
                let slice = Array(rs[from..<min(from + per, rs.count)])
                next[p] = from + slice.count
                batches.append(SinkBatch(partition: TopicPartition(topic: "t", partition: p), records: slice, expected: stored[p], next: slice.last!.offset + 1))
                stored[p] = slice.last!.offset + 1
                applied += slice.count
            }
            if batches.isEmpty { break }
            for r in try await store.apply(batches: batches, group: "g") { try r.get() }
        }
        let secs = (ContinuousClock.now - start).seconds
        try await store.close()
        return Double(applied) / secs
    }
}
