@testable import Brook
import BrookProtocol
import Logging
import NIOCore
import Testing

/// The consumer's fetch pipeline without I/O: the header scan that lets the next fetch go out,
/// the decoding after it, and the state changes of each step.
@Suite("Consumer fetch pipeline (scan, then decode)")
struct FetchPipelineTests {
    let a = TP("t", 0)
    let b = TP("t", 1)
    let decoding = FetchDecoding(checkCRCs: true, logger: Logger(label: "test"))

    /// `count` records of `size`-byte values starting at `base`, as one batch.
    func batch(base: Int64, count: Int, size: Int = 100, codec: CompressionCodec = .none) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(codec: codec, baseOffset: base)
        for i in 0..<count {
            builder.append(timestamp: 1_000 + base + Int64(i), key: nil, value: ByteBuffer(repeating: UInt8(truncatingIfNeeded: i), count: size))
        }
        return try builder.finish()
    }

    func response(_ parts: [TP: ByteBuffer], highWatermark: Int64 = 100) -> FetchResponse {
        var resp = FetchResponse()
        var t = FetchResponse.FetchableTopicResponse()
        t.topic = "t"
        for (tp, records) in parts.sorted(by: { $0.key < $1.key }) {
            var p = FetchResponse.PartitionData()
            p.partitionIndex = tp.partition
            p.highWatermark = highWatermark
            p.logStartOffset = 0
            p.records = records
            t.partitions.append(p)
        }
        resp.responses = [t]
        return resp
    }

    func state(_ tps: [TP]) -> ConsumerState {
        var s = ConsumerState()
        s.lifecycle = .running
        s.add(tps, need: .committed)
        for tp in tps {
            s.resolve(tp, epoch: s.partitions[tp]!.epoch, offset: 0)
            s.partitions[tp]!.leader = 1
        }
        return s
    }

    @Test func theScanStopsAtTheReservationAndKnowsTheNextPosition() throws {
        let first = try batch(base: 0, count: 10)
        let second = try batch(base: 10, count: 10)
        var records = first
        records.writeImmutableBuffer(second)
        records.writeImmutableBuffer(try batch(base: 20, count: 10))
        let perBatch = first.readableBytes - RecordBatchHeader.size + 10 * FetchDecoding.recordOverhead
        // Room for one and a half batches: the second is accepted (room was left), the third not.
        let plan = FetchPlan(entries: [FetchPlanEntry(tp: a, epoch: 1, offset: 5)], maxBytes: 1 << 20, partitionMaxBytes: 1 << 20, reserved: perBatch * 3 / 2)
        let scan = decoding.scan(response([a: records]), plan: plan)
        guard case .ready(let batches, let next, let footprint, let hw, _)? = scan.partitions[a] else {
            Issue.record("expected ready, got \(String(describing: scan.partitions[a]))")
            return
        }
        #expect(batches.count == 2)
        #expect(next == 20)
        #expect(hw == 100)
        // The footprint is what decoding the two batches costs, known from their lengths alone.
        #expect(footprint == 2 * perBatch)
        #expect(scan.pending == footprint)
        let (decoded, _, _) = decoding.decode(scan, plan: plan)
        let chunk = try #require(try decoded[a]?.get())
        #expect(chunk.records.map(\.offset) == Array(5..<20))  // offsets before the fetch offset skipped
        #expect(chunk.nextOffset == 20)
        #expect(chunk.bytes == footprint)
        #expect(chunk.records.first?.value?.readableBytes == 100)
    }

    @Test func compressedRecordsAreLeftToTheDecoder() throws {
        let records = try batch(base: 0, count: 10, codec: .gzip)
        let plan = FetchPlan(
            entries: [FetchPlanEntry(tp: a, epoch: 1, offset: 0)], maxBytes: 1 << 20, partitionMaxBytes: 1 << 20, reserved: 50_000, expansion: 4)
        let scan = decoding.scan(response([a: records]), plan: plan)
        guard case .compressed? = scan.partitions[a] else {
            Issue.record("expected compressed, got \(String(describing: scan.partitions[a]))")
            return
        }
        // What they should decode to (by the expansion seen so far, with a margin) stays reserved
        // until they are decoded, not the whole reservation.
        #expect(scan.pending == Int(Double(records.readableBytes) * 4 * FetchDecoding.expansionMargin))
        #expect(scan.room == scan.pending)
        let (decoded, compressed, decompressed) = decoding.decode(scan, plan: plan)
        let chunk = try #require(try decoded[a]?.get())
        #expect(chunk.records.map(\.offset) == Array(0..<10))
        #expect(chunk.nextOffset == 10)
        #expect(compressed == records.readableBytes)
        #expect(decompressed > compressed)
    }

    /// A partition whose uncompressed batches come before a compressed one is decoded whole by
    /// the decoder: the scan must not also charge those batches to the room the others share.
    @Test func aPartitionLeftToTheDecoderTakesNoRoomInTheScan() throws {
        let plain = try batch(base: 0, count: 10)
        var mixed = plain
        mixed.writeImmutableBuffer(try batch(base: 10, count: 10, codec: .gzip))
        var twoPlain = plain
        twoPlain.writeImmutableBuffer(try batch(base: 10, count: 10))
        let footprint = plain.readableBytes - RecordBatchHeader.size + 10 * FetchDecoding.recordOverhead
        // Room for one plain batch and a byte: `b` gets both of its batches (the second starts
        // while room is left) only if `a`'s plain batch was not charged as well.
        let plan = FetchPlan(
            entries: [FetchPlanEntry(tp: a, epoch: 1, offset: 0), FetchPlanEntry(tp: b, epoch: 1, offset: 0)], maxBytes: 1 << 20,
            partitionMaxBytes: 1 << 20, reserved: footprint + 1)
        let scan = decoding.scan(response([a: mixed, b: twoPlain]), plan: plan)
        guard case .compressed? = scan.partitions[a], case .ready(_, let next, _, _, _)? = scan.partitions[b] else {
            Issue.record("expected a compressed and b ready, got \(scan.partitions)")
            return
        }
        #expect(next == 20)
    }

    @Test func aCorruptBatchFailsInTheDecoder() throws {
        var records = try batch(base: 0, count: 3)
        // Flip a byte of the last value: the header still scans, the CRC does not match.
        let at = records.writerIndex - 1
        records.setInteger(records.getInteger(at: at, as: UInt8.self)! ^ 0xFF, at: at)
        let plan = FetchPlan(entries: [FetchPlanEntry(tp: a, epoch: 1, offset: 0)], maxBytes: 1 << 20, partitionMaxBytes: 1 << 20, reserved: 1 << 20)
        let scan = decoding.scan(response([a: records]), plan: plan)
        guard case .ready(_, let next, _, _, _)? = scan.partitions[a] else {
            Issue.record("expected ready")
            return
        }
        #expect(next == 3)
        let (decoded, _, _) = decoding.decode(scan, plan: plan)
        #expect(throws: ProtocolError.self) { try decoded[a]!.get() }
    }

    /// The point of the pipeline: a partition can be fetched again while its last response is
    /// still being decoded; a compressed one waits for its decoding.
    @Test func scannedPartitionsAreFetchableBeforeTheirRecordsAreDecoded() throws {
        var s = state([a, b])
        var config = ConsumerConfiguration.Fetch()
        config.maxPrefetchBytes = 1 << 20
        s.maxPrefetchHint = config.maxPrefetchBytes
        let planPlan = s.planFetch(node: 1, config: config)
        let plan = try #require(planPlan)
        #expect(s.reservedBytes == 1 << 20)
        let plain = try batch(base: 0, count: 10)
        let gzip = try batch(base: 0, count: 10, codec: .gzip)
        let scan = decoding.scan(response([a: plain, b: gzip]), plan: plan)
        let (errors, refresh) = s.applyScan(plan, scan, policy: .earliest)
        #expect(!errors && !refresh)
        // The reservation shrank to what decoding still needs.
        #expect(s.reservedBytes == scan.pending)
        #expect(s.reservedBytes < 1 << 20)
        #expect(s.partitions[a]!.fetchPosition == 10)
        #expect(s.partitions[b]!.fetching)
        let nextPlan = s.planFetch(node: 1, config: config)
        let next = try #require(nextPlan)
        #expect(next.entries.map(\.tp) == [a])
        #expect(next.entries.first?.offset == 10)
        // Decoding queues the records and lets the compressed partition go again.
        let (decoded, c, d) = decoding.decode(scan, plan: plan)
        let data = s.applyDecoded(plan, scan, decoded, compressed: c, decompressed: d)
        #expect(data)
        #expect(Set(s.chunks.map(\.tp)) == [a, b])
        #expect(s.partitions[b]!.fetchPosition == 10)
        #expect(!s.partitions[b]!.fetching)
        #expect(s.reservedBytes == next.reserved)
        #expect(s.bufferedBytes == s.chunks.reduce(0) { $0 + $1.bytes })
        var offsets: [TP: [Int64]] = [:]
        while let r = s.takeRecord().0 { offsets[r.topicPartition, default: []].append(r.offset) }
        #expect(offsets == [a: Array(0..<10), b: Array(0..<10)])
    }

    /// A response scanned after a corrupt one must not hand out the records that follow the
    /// corrupt batch: the partition stops at the error until the application seeks.
    @Test func nothingFollowsADecodingError() throws {
        var s = state([a])
        var config = ConsumerConfiguration.Fetch()
        config.maxPrefetchBytes = 1 << 20
        s.maxPrefetchHint = config.maxPrefetchBytes
        var bad = try batch(base: 0, count: 3)
        bad.setInteger(bad.getInteger(at: bad.writerIndex - 1, as: UInt8.self)! ^ 0xFF, at: bad.writerIndex - 1)
        let firstPlan = s.planFetch(node: 1, config: config)
        let first = try #require(firstPlan)
        let firstScan = decoding.scan(response([a: bad]), plan: first)
        _ = s.applyScan(first, firstScan, policy: .earliest)
        let secondPlan = s.planFetch(node: 1, config: config)
        let second = try #require(secondPlan)
        let secondScan = decoding.scan(response([a: try batch(base: 3, count: 3)]), plan: second)
        _ = s.applyScan(second, secondScan, policy: .earliest)
        let d1 = decoding.decode(firstScan, plan: first)
        let firstData = s.applyDecoded(first, firstScan, d1.0, compressed: d1.1, decompressed: d1.2)
        #expect(firstData)
        let d2 = decoding.decode(secondScan, plan: second)
        let secondData = s.applyDecoded(second, secondScan, d2.0, compressed: d2.1, decompressed: d2.2)
        #expect(!secondData)
        #expect(s.errors.count == 1)
        #expect(s.chunks.isEmpty)
        #expect(s.reservedBytes == 0)
        let none = s.planFetch(node: 1, config: config)
        #expect(none == nil)
        try s.seek(a, to: 3)
        let retry = s.planFetch(node: 1, config: config)
        #expect(retry?.entries.first?.offset == 3)
    }
}
