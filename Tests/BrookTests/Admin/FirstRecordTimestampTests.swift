@testable import Brook
import BrookProtocol
import NIOCore
import Testing

/// How the first unconsumed record is found in fetched batches (no broker: batches built here).
@Suite("First record timestamp")
struct FirstRecordTimestampTests {
    static func batch(base: Int64, timestamps: [Int64], control: Bool = false, codec: CompressionCodec = .none) throws -> ByteBuffer {
        var b = RecordBatchBuilder(codec: codec, baseOffset: base, isControl: control)
        for t in timestamps { b.append(timestamp: t, key: nil, value: ByteBuffer(string: "v")) }
        return try b.finish()
    }

    @Test func skipsRecordsBeforeTheOffsetInsideABatch() throws {
        let records = try Self.batch(base: 10, timestamps: [100, 200, 300])
        #expect(try KafkaAdmin.firstDataTimestamp(in: records, from: 11) == 200)
        #expect(try KafkaAdmin.firstDataTimestamp(in: records, from: 10) == 100)
        #expect(try KafkaAdmin.firstDataTimestamp(in: records, from: 13) == nil)
    }

    @Test func skipsControlBatchesAndEarlierBatches() throws {
        var records = try Self.batch(base: 0, timestamps: [50, 60])
        var marker = try Self.batch(base: 2, timestamps: [70], control: true)
        var data = try Self.batch(base: 3, timestamps: [80, 90], codec: .gzip)
        records.writeBuffer(&marker)
        records.writeBuffer(&data)
        #expect(try KafkaAdmin.firstDataTimestamp(in: records, from: 2) == 80)
        #expect(try KafkaAdmin.firstDataTimestamp(in: records, from: 4) == 90)
    }
}
