import BrookProtocol
import Foundation
import NIOCore
import Synchronization

@testable import BrookBroker

/// Builds record batches v2 byte by byte, independent of the protocol module's builder, so the
/// storage tests pin the wire layout themselves.
enum TestBatch {
    struct Record {
        var timestampDelta: Int64
        var value: [UInt8]
    }

    /// A valid uncompressed batch of `count` records with `valueSize`-byte values, timestamps
    /// `baseTimestamp + i * timestampStep`.
    static func make(
        records count: Int,
        valueSize: Int = 16,
        baseTimestamp: Int64 = 1_700_000_000_000,
        timestampStep: Int64 = 1,
        attributes: Int16 = 0,
        baseOffset: Int64 = 0,
        fill: UInt8 = 0xab
    ) -> ByteBuffer {
        precondition(count > 0)
        let records = (0..<count).map { i in
            Record(timestampDelta: Int64(i) * timestampStep, value: [UInt8](repeating: fill &+ UInt8(truncatingIfNeeded: i), count: valueSize))
        }
        return make(records: records, baseTimestamp: baseTimestamp, attributes: attributes, baseOffset: baseOffset)
    }

    static func make(records: [Record], baseTimestamp: Int64, attributes: Int16 = 0, baseOffset: Int64 = 0) -> ByteBuffer {
        var body = ByteBuffer()
        for (i, r) in records.enumerated() {
            var rec = ByteBuffer()
            rec.writeInteger(UInt8(0))  // attributes
            writeVarint(&rec, r.timestampDelta)
            writeVarint(&rec, Int64(i))  // offset delta
            writeVarint(&rec, -1)  // null key
            writeVarint(&rec, Int64(r.value.count))
            rec.writeBytes(r.value)
            writeVarint(&rec, 0)  // headers
            writeVarint(&body, Int64(rec.readableBytes))
            body.writeBuffer(&rec)
        }
        let maxTimestamp = baseTimestamp + (records.map(\.timestampDelta).max() ?? 0)
        var b = ByteBuffer()
        b.writeInteger(baseOffset)
        b.writeInteger(Int32(61 - 12 + body.readableBytes))
        b.writeInteger(Int32(0))  // partition leader epoch
        b.writeInteger(Int8(2))  // magic
        b.writeInteger(UInt32(0))  // crc placeholder
        b.writeInteger(attributes)
        b.writeInteger(Int32(records.count - 1))
        b.writeInteger(baseTimestamp)
        b.writeInteger(maxTimestamp)
        b.writeInteger(Int64(-1))  // producer id
        b.writeInteger(Int16(-1))  // producer epoch
        b.writeInteger(Int32(-1))  // base sequence
        b.writeInteger(Int32(records.count))
        b.writeBuffer(&body)
        let crc = CRC32C.checksum(b, range: 21..<b.writerIndex)
        b.setInteger(crc, at: 17)
        return b
    }

    static func writeVarint(_ b: inout ByteBuffer, _ v: Int64) {
        var z = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        while z >= 0x80 {
            b.writeInteger(UInt8(z & 0x7f | 0x80))
            z >>= 7
        }
        b.writeInteger(UInt8(z))
    }

    static func concat(_ parts: [ByteBuffer]) -> ByteBuffer {
        var out = ByteBuffer()
        for var p in parts { out.writeBuffer(&p) }
        return out
    }

    /// Header fields of every batch in `buffer`, checking each CRC.
    static func parse(_ buffer: ByteBuffer) -> [(baseOffset: Int64, lastOffset: Int64, maxTimestamp: Int64, attributes: Int16, crcOK: Bool, size: Int)] {
        var out: [(Int64, Int64, Int64, Int16, Bool, Int)] = []
        var pos = buffer.readerIndex
        while pos + 61 <= buffer.writerIndex {
            let base: Int64 = buffer.getInteger(at: pos)!
            let len: Int32 = buffer.getInteger(at: pos + 8)!
            let size = Int(len) + 12
            let delta: Int32 = buffer.getInteger(at: pos + 23)!
            let maxTs: Int64 = buffer.getInteger(at: pos + 35)!
            let attrs: Int16 = buffer.getInteger(at: pos + 21)!
            let crc: UInt32 = buffer.getInteger(at: pos + 17)!
            let ok = pos + size <= buffer.writerIndex && CRC32C.checksum(buffer, range: (pos + 21)..<(pos + size)) == crc
            out.append((base, base + Int64(delta), maxTs, attrs, ok, size))
            pos += size
        }
        return out
    }
}

/// A fresh directory under the system temp dir, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let base = FileManager.default.temporaryDirectory.path
    var template = Array("\(base)/brook-storage-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// A settable clock for roll and retention tests.
final class TestClock: Sendable {
    private let now: Mutex<Int64>
    init(_ start: Int64) { now = Mutex(start) }
    func advance(by ms: Int64) { now.withLock { $0 += ms } }
    var millis: Int64 { now.withLock { $0 } }
    var function: @Sendable () -> Int64 { { [self] in millis } }
}

/// Raw file surgery for crash tests.
enum FileSurgery {
    static func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }

    static func truncate(_ path: String, to size: Int) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: UInt64(size))
        try h.close()
    }

    static func append(_ path: String, _ bytes: [UInt8]) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data(bytes))
        try h.close()
    }

    static func flipByte(_ path: String, at offset: Int) throws {
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try h.seek(toOffset: UInt64(offset))
        let b = try h.read(upToCount: 1)![0]
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: Data([b ^ 0x5a]))
        try h.close()
    }

    static func segmentPath(_ dir: String, _ base: Int64, _ suffix: String = ".log") -> String {
        dir + "/" + LogSegment.fileName(base, suffix)
    }
}
