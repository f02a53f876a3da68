@testable import Brook
import NIOCore
import Testing

@Suite("Consumer record run (records moved out as they are taken)")
struct RecordRunTests {
    func record(_ offset: Int64) -> ConsumerRecord {
        ConsumerRecord(topic: "a-topic-name-longer-than-fifteen-bytes", partition: 0, offset: offset, timestamp: 0, key: nil, value: ByteBuffer(string: "v\(offset)"))
    }

    @Test func takesInOrderAndGrowsPastItsCapacity() {
        let run = RecordRun(capacity: 2)
        for o in 0..<5 { run.append(record(Int64(o))) }
        #expect(run.count == 5)
        #expect(run.takeFirst().offset == 0)
        #expect(run.takeFirst().value == ByteBuffer(string: "v1"))
        // What is left, by index and as the array a batch hands out.
        #expect(run.map(\.offset) == [2, 3, 4])
        #expect(run.first?.offset == 2)
        let rest = run.takeAll()
        #expect(rest.map(\.offset) == [2, 3, 4])
        #expect(rest.allSatisfy { $0.topic == "a-topic-name-longer-than-fifteen-bytes" })
        #expect(run.isEmpty)
        #expect(run.takeAll().isEmpty)
    }

    @Test func aRunDroppedHalfTakenKeepsTakenRecordsAlive() {
        var taken: [ConsumerRecord] = []
        do {
            let run = RecordRun((0..<4).map { record($0) })
            taken.append(run.takeFirst())
            taken.append(run.takeFirst())
        }
        #expect(taken.map { String(buffer: $0.value!) } == ["v0", "v1"])
    }
}
