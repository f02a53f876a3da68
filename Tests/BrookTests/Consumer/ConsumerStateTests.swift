@testable import Brook
import NIOCore
import Testing

private func record(_ tp: TP, _ offset: Int64) -> ConsumerRecord {
    ConsumerRecord(topic: tp.topic, partition: tp.partition, offset: offset, timestamp: 1000 + offset, key: nil, value: ByteBuffer(string: "\(offset)"))
}

private func chunk(_ s: ConsumerState, _ tp: TP, _ offsets: ClosedRange<Int64>, next: Int64? = nil, bytes: Int = 100) -> FetchedChunk {
    FetchedChunk(
        tp: tp, epoch: s.partitions[tp]!.epoch, records: RecordRun(offsets.map { record(tp, $0) }), nextOffset: next ?? offsets.upperBound + 1,
        bytes: bytes, highWatermark: 100)
}

private func scanned(_ partitions: [TP: ScannedPartition], pending: Int) -> FetchScan {
    var scan = FetchScan()
    scan.partitions = partitions
    scan.pending = pending
    return scan
}

private func ready(_ tps: [TP]) -> ConsumerState {
    var s = ConsumerState()
    s.lifecycle = .running
    s.add(tps, need: .committed)
    for tp in tps { s.resolve(tp, epoch: s.partitions[tp]!.epoch, offset: 0) }
    return s
}

@Suite("Consumer state (delivery, positions, prefetch accounting)")
struct ConsumerStateTests {
    let a = TP("t", 0)
    let b = TP("t", 1)

    @Test func deliversInOrderAndTracksPositionAndProcessed() {
        var s = ready([a])
        s.chunks.append(chunk(s, a, 0...2, next: 5))  // offsets 3-4: control records
        s.bufferedBytes = 100
        var offsets: [Int64] = []
        while true {
            _ = s.completeInFlight()
            guard let r = s.takeRecord().0 else { break }
            offsets.append(r.offset)
            #expect(s.partitions[a]!.processed == (r.offset == 0 ? 0 : r.offset))
        }
        #expect(offsets == [0, 1, 2])
        // The last record's position skips the control records after it.
        #expect(s.partitions[a]!.position == 5)
        #expect(s.partitions[a]!.processed == 5)
        #expect(s.bufferedBytes == 0)
        #expect(s.chunks.isEmpty)
    }

    @Test func pausedPartitionsAreSkippedWithoutReordering() {
        var s = ready([a, b])
        s.chunks.append(chunk(s, a, 0...1))
        s.chunks.append(chunk(s, b, 0...1))
        s.chunks.append(chunk(s, a, 2...3))
        s.partitions[a]!.paused = true
        #expect(s.takeRecord().0?.topicPartition == b)
        #expect(s.takeRecord().0?.offset == 1)
        #expect(s.takeRecord().0 == nil)
        s.partitions[a]!.paused = false
        #expect((0..<4).map { _ in s.takeRecord().0!.offset } == [0, 1, 2, 3])
    }

    @Test func seekDropsBufferedRecordsAndInFlight() throws {
        var s = ready([a])
        s.chunks.append(chunk(s, a, 0...9, bytes: 500))
        s.bufferedBytes = 500
        _ = s.takeRecord()
        try s.seek(a, to: 7)
        #expect(s.inFlight == nil)
        #expect(s.chunks.isEmpty)
        #expect(s.bufferedBytes == 0)
        #expect(s.partitions[a]!.position == 7)
        #expect(s.partitions[a]!.fetchPosition == 7)
        #expect(throws: KafkaConsumerError.notAssigned(b)) { try s.seek(b, to: 1) }
    }

    @Test func staleChunksAreDiscarded() {
        var s = ready([a])
        let old = chunk(s, a, 0...4)
        let epoch = s.nextEpoch()
        s.partitions[a]!.epoch = epoch
        s.chunks.append(old)
        s.bufferedBytes = 100
        #expect(s.takeRecord().0 == nil)
        #expect(s.bufferedBytes == 0)
    }

    @Test func batchesTakeTheRestOfAChunk() {
        var s = ready([a])
        s.chunks.append(chunk(s, a, 0...4))
        s.partitions[a]!.highWatermark = 100
        _ = s.takeRecord()
        let batch = s.takeBatch().0!
        #expect(batch.map(\.offset) == [1, 2, 3, 4])
        #expect(batch.nextOffset == 5)
        #expect(s.partitions[a]!.position == 5)
        #expect(s.lag()[a]!.records == 95)
    }

    @Test func fetchPlanRespectsTheBudgetAndMarksPartitions() {
        var s = ready([a, b])
        s.partitions[a]!.leader = 1
        s.partitions[b]!.leader = 1
        var config = ConsumerConfiguration.Fetch()
        config.maxPrefetchBytes = 1000
        s.maxPrefetchHint = 1000
        let plan = s.planFetch(node: 1, config: config)!
        #expect(Set(plan.entries.map(\.tp)) == [a, b])
        #expect(plan.reserved == 1000)
        #expect(s.partitions[a]!.fetching)
        #expect(s.planFetch(node: 1, config: config) == nil)  // both in flight
        let c = DecodedChunk(tp: a, epoch: s.partitions[a]!.epoch, records: RecordRun([record(a, 0)]), nextOffset: 1, bytes: 1200, highWatermark: 3)
        let scan = scanned([a: .compressed(records: ByteBuffer(), highWatermark: 3, logStartOffset: 0), b: .outOfRange], pending: 1000)
        _ = s.applyScan(plan, scan, policy: .earliest)
        #expect(s.reservedBytes == 1000)
        let data = s.applyDecoded(plan, scan, [a: .success(c)], compressed: 100, decompressed: 1200)
        #expect(data)
        #expect(s.reservedBytes == 0)
        #expect(s.bufferedBytes == 1200)
        #expect(s.partitions[a]!.fetchPosition == 1)
        #expect(s.partitions[b]!.need == .reset(.earliest))
        #expect(s.expansion > 1)
        // Over budget: no fetch until the application consumes.
        #expect(s.planFetch(node: 1, config: config) == nil)
        let (r, wake) = s.takeRecord()
        #expect(r?.offset == 0)
        #expect(wake)
    }

    /// Fetching waits for a quarter of the bound to be free: refilling each sliver as it frees
    /// up would mean many small responses.
    @Test func fetchesWaitForAQuarterOfTheBoundToBeFree() {
        var s = ready([a, b])
        s.partitions[a]!.leader = 1
        s.partitions[b]!.leader = 1
        s.partitions[b]!.paused = true
        var config = ConsumerConfiguration.Fetch()
        config.maxPrefetchBytes = 1000
        s.maxPrefetchHint = 1000
        let plan = s.planFetch(node: 1, config: config)!
        let chunk = { (offset: Int64, bytes: Int) in
            DecodedChunk(tp: a, epoch: s.partitions[a]!.epoch, records: RecordRun([record(a, offset)]), nextOffset: offset + 1, bytes: bytes, highWatermark: 10)
        }
        let scan = scanned([a: .ready(batches: [], nextOffset: 1, footprint: 500, highWatermark: 10, logStartOffset: 0)], pending: 500)
        _ = s.applyScan(plan, scan, policy: .earliest)
        _ = s.applyDecoded(plan, scan, [a: .success(chunk(0, 500))], compressed: 500, decompressed: 500)
        s.chunks.append(FetchedChunk(chunk(1, 300), partition: s.partitions[a]!))
        s.bufferedBytes += 300
        // 800 of 1000 buffered: 200 free is less than a quarter.
        #expect(s.planFetch(node: 1, config: config) == nil)
        let (first, wake) = s.takeRecord()  // frees 500: crosses below three quarters
        #expect(first?.offset == 0)
        #expect(wake)
        #expect(s.planFetch(node: 1, config: config) != nil)
    }
}
