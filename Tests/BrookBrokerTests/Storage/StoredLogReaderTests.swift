import BrookProtocol
import Foundation
import Testing

@testable import BrookBroker

@Suite struct StoredLogReaderTests {
    /// Names and sizes of every file below `dir`.
    private func listing(_ dir: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        let e = FileManager.default.enumerator(atPath: dir)!
        while let name = e.nextObject() as? String {
            let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/" + name)
            out[name] = (attrs[.size] as? Int) ?? -1
        }
        return out
    }

    @Test func readsEverySegmentInOrderWithoutWritingAndStopsAtATornTail() async throws {
        try await withTemporaryDirectory { dir in
            let manager = try LogManager(directory: dir)
            let a = try manager.openOrCreate(topic: "trades.dlt", partition: 0)
            let b = try manager.openOrCreate(topic: "trades.dlt", partition: 1)
            _ = try manager.openOrCreate(topic: "trades", partition: 0)
            _ = try a.append(TestBatch.make(records: 3))
            try a.roll()
            _ = try a.append(TestBatch.make(records: 2))
            _ = try b.append(TestBatch.make(records: 4))
            #expect(try StoredLogReader(dataDirectory: dir).isInUse)
            try manager.close()

            let reader = try StoredLogReader(dataDirectory: dir)
            #expect(!reader.isInUse)
            #expect(try reader.partitions(of: "trades.dlt") == [0, 1])
            #expect(try reader.partitions(of: "trades") == [0])
            #expect(try reader.partitions(of: "nope") == [])
            let before = try listing(dir)
            func offsets(_ p: Int32) throws -> [Int64] {
                var out: [Int64] = []
                try reader.forEachBatch(topic: "trades.dlt", partition: p) { batch in
                    out += try batch.decodeRecords().map { batch.offset(of: $0) }
                }
                return out
            }
            #expect(try offsets(0) == [0, 1, 2, 3, 4])
            #expect(try offsets(1) == [0, 1, 2, 3])
            #expect(try listing(dir) == before)

            // A torn write at the end of the last segment: reading stops before it.
            let segment = dir + "/trades.dlt-1/" + LogSegment.fileName(0, LogSegment.logSuffix)
            var torn = TestBatch.make(records: 2, baseOffset: 4)
            let h = FileHandle(forWritingAtPath: segment)!
            h.seekToEndOfFile()
            h.write(Data(torn.readBytes(length: torn.readableBytes - 5)!))
            try h.close()
            #expect(try offsets(1) == [0, 1, 2, 3])
        }
    }
}
