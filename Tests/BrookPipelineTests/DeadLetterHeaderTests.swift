import BrookPipeline
import BrookProtocol
import NIOCore
import Testing

@Suite struct DeadLetterHeaderTests {
    func text(_ k: String, _ v: String) -> RecordHeader { RecordHeader(key: k, value: ByteBuffer(string: v)) }

    @Test func springHeadersAreUnderstood() {
        var partition = ByteBuffer()
        partition.writeInteger(Int32(7), endianness: .big)
        var offset = ByteBuffer()
        offset.writeInteger(Int64(123_456), endianness: .big)
        var ts = ByteBuffer()
        ts.writeInteger(Int64(1_700_000_000_000), endianness: .big)
        let p = DeadLetterProvenance(headers: [
            text("kafka_dlt-original-topic", "trades"),
            RecordHeader(key: "kafka_dlt-original-partition", value: partition),
            RecordHeader(key: "kafka_dlt-original-offset", value: offset),
            RecordHeader(key: "kafka_dlt-original-timestamp", value: ts),
            text("kafka_dlt-original-consumer-group", "billing"),
            text("kafka_dlt-exception-fqcn", "org.springframework.kafka.support.serializer.DeserializationException"),
            text("kafka_dlt-exception-message", "bad json"),
        ])
        #expect(p?.format == .spring)
        #expect(p?.originalTopic == "trades")
        #expect(p?.originalPartition == 7)
        #expect(p?.originalOffset == 123_456)
        #expect(p?.originalTimestamp == 1_700_000_000_000)
        #expect(p?.group == "billing")
        #expect(p?.errorType == "DeserializationException")
        #expect(p?.errorMessage == "bad json")
        #expect(p?.replayCount == 0)
    }

    @Test func connectHeadersAreUnderstood() {
        let p = DeadLetterProvenance(headers: [
            text("__connect.errors.topic", "orders"),
            text("__connect.errors.partition", "2"),
            text("__connect.errors.offset", "99"),
            text("__connect.errors.connector.name", "jdbc-sink"),
            text("__connect.errors.exception.class.name", "org.apache.kafka.connect.errors.DataException"),
            text("__connect.errors.exception.message", "schema mismatch"),
        ])
        #expect(p?.format == .connect)
        #expect(p?.originalTopic == "orders")
        #expect(p?.originalPartition == 2)
        #expect(p?.originalOffset == 99)
        #expect(p?.errorType == "DataException")
        #expect(p?.errorMessage == "schema mismatch")
        #expect(p?.group == "connect-jdbc-sink")
    }

    @Test func brookHeadersWinAndUnknownRecordsAreNotEntries() {
        let p = DeadLetterProvenance(headers: [
            text(DeadLetterHeader.originalTopic, "t"), text(DeadLetterHeader.originalPartition, "1"),
            text(DeadLetterHeader.originalOffset, "5"), text(DeadLetterHeader.reason, "parked"),
            text(DeadLetterHeader.attempts, "0"), text(DeadLetterHeader.replayCount, "2"),
            text("kafka_dlt-original-topic", "other"),
        ])
        #expect(p?.format == .brook)
        #expect(p?.originalTopic == "t")
        #expect(p?.reason == .parked)
        #expect(p?.replayCount == 2)
        #expect(DeadLetterProvenance(headers: [text("x", "y")]) == nil)
    }
}
