import BrookProtocol
import NIOCore
import Testing

@Suite struct PrimitiveTests {
    static let varints: [(Int32, [UInt8])] = [
        (0, [0x00]), (-1, [0x01]), (1, [0x02]), (-2, [0x03]), (63, [0x7e]), (-64, [0x7f]),
        (64, [0x80, 0x01]), (Int32.max, [0xfe, 0xff, 0xff, 0xff, 0x0f]), (Int32.min, [0xff, 0xff, 0xff, 0xff, 0x0f]),
    ]

    @Test func zigZagVarintMatchesTheSpec() throws {
        for (value, bytes) in Self.varints {
            var b = ByteBuffer()
            b.writeVarint(value)
            #expect(Array(b.readableBytesView) == bytes)
            #expect(try b.readVarint() == value)
        }
    }

    @Test func varlongExtremesRoundTrip() throws {
        for v in [Int64.min, -1, 0, 1, Int64.max, 1 << 40] {
            var b = ByteBuffer()
            b.writeVarlong(v)
            #expect(try b.readVarlong() == v)
        }
    }

    @Test func unsignedVarintRejectsOverlongInput() {
        var b = ByteBuffer(bytes: [0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
        #expect(throws: ProtocolError.varintTooLong) { _ = try b.readUnsignedVarint() }
        var t = ByteBuffer(bytes: [0x80, 0x80])
        #expect(throws: ProtocolError.truncated(field: "uvarint")) { _ = try t.readUnsignedVarint() }
    }

    @Test func compactAndClassicStrings() throws {
        var b = ByteBuffer()
        b.writeKafkaString("abc", compact: false)
        b.writeKafkaString(nil, compact: false)
        b.writeKafkaString("abc", compact: true)
        b.writeKafkaString(nil, compact: true)
        #expect(Array(b.readableBytesView) == [0, 3, 0x61, 0x62, 0x63, 0xff, 0xff, 4, 0x61, 0x62, 0x63, 0])
        #expect(try b.readKafkaString(compact: false) == "abc")
        #expect(try b.readKafkaNullableString(compact: false) == nil)
        #expect(try b.readKafkaString(compact: true) == "abc")
        #expect(throws: ProtocolError.unexpectedNull(field: "string")) { _ = try b.readKafkaString(compact: true) }
    }

    @Test func lengthsBeyondTheBufferAreRejectedBeforeAllocating() {
        var b = ByteBuffer()
        b.writeInteger(Int32(1_000_000_000))
        #expect(throws: ProtocolError.self) { _ = try b.readKafkaBytes(compact: false) }
        var arr = ByteBuffer()
        arr.writeInteger(Int32(Int32.max))
        #expect(throws: ProtocolError.self) {
            _ = try arr.readKafkaLength(compact: false, wide: true, field: "array", minBytesPerElement: 4)
        }
    }

    @Test func uuidAndTaggedFields() throws {
        let id = KafkaUUID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10)
        var b = ByteBuffer()
        b.writeKafkaUUID(id)
        b.writeUnsignedVarint(2)
        b.writeTaggedField(tag: 0) { $0.writeInteger(Int32(7)) }
        b.writeTaggedField(tag: 5) { $0.writeKafkaString("x", compact: true) }
        #expect(try b.readKafkaUUID() == id)
        var seen: [UInt32] = []
        let unknown = try b.readTaggedFields { tag, body in
            seen.append(tag)
            if tag == 0 { let v = try body.readKafkaInt(Int32.self); #expect(v == 7); return true }
            return false
        }
        #expect(seen == [0, 5])
        #expect(unknown.map(\.tag) == [5])
        #expect(KafkaUUID.zero.description == "AAAAAAAAAAAAAAAAAAAAAA")
    }
}
