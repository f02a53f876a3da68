import BrookProtocol
import NIOCore
import Testing

/// The producer's uncopied Produce encoding must be the generated encoding, byte for byte.
@Suite struct ProduceSegmentsTests {
    @Test func segmentsConcatenateToTheGeneratedEncodingAtEveryVersion() {
        var rng = SeededRandom(seed: 2026)
        for version in APIKey.produce.versions {
            for _ in 0..<60 {
                let request = ProduceRequest.arbitrary(version: version, using: &rng)
                var expected = ByteBuffer()
                request.encode(into: &expected, version: version)
                var joined = ByteBuffer()
                for var s in request.encodeSegments(version: version) { joined.writeBuffer(&s) }
                #expect(joined == expected, "Produce v\(version)")
            }
        }
    }

    @Test func recordBatchesAreHandedOverUncopied() {
        var request = ProduceRequest()
        request.acks = -1
        request.timeoutMs = 30_000
        var topic = ProduceRequest.TopicProduceData()
        topic.name = "t"
        var batches: [ByteBuffer] = []
        for i in 0..<3 {
            var p = ProduceRequest.PartitionProduceData()
            p.index = Int32(i)
            let batch = ByteBuffer(repeating: UInt8(i), count: 10_000)
            batches.append(batch)
            p.records = batch
            topic.partitionData.append(p)
        }
        request.topicData = [topic]
        for version: Int16 in [3, 8, 9] {
            let segments = request.encodeSegments(version: version)
            // glue, batch, glue, batch, glue, batch, glue (the trailing tags or nothing)
            let carried = segments.filter { $0.readableBytes == 10_000 }
            #expect(carried == batches)
            for (s, b) in zip(carried, batches) {
                s.withUnsafeReadableBytes { sp in
                    b.withUnsafeReadableBytes { bp in #expect(sp.baseAddress == bp.baseAddress) }
                }
            }
        }
    }
}
