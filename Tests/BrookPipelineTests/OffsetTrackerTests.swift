@testable import BrookPipeline
import Testing

@Suite struct OffsetTrackerTests {
    @Test func commitsOnlyTheContiguousFinishedPrefix() {
        var t = OffsetTracker()
        #expect(t.committable == nil)
        t.accept([10, 11, 12, 14], next: 15)
        #expect(t.committable == 10)
        t.complete(11)
        t.complete(14)
        #expect(t.committable == 10)
        t.complete(10)
        #expect(t.committable == 12)
        t.complete(12)
        // Everything accepted is done: the end of the batch (past the gap and control records).
        #expect(t.committable == 15)
        #expect(t.pendingCount == 0)
    }

    @Test func survivesTrimmingManyOffsets() {
        var t = OffsetTracker()
        t.accept(Array(0..<5000), next: 5000)
        for o in stride(from: Int64(4999), through: 1, by: -1) { t.complete(o) }
        #expect(t.committable == 0)
        t.complete(0)
        #expect(t.committable == 5000)
        t.accept([5000], next: 5001)
        #expect(t.committable == 5000)
    }
}

@Suite struct OffsetTrackerTimestampTests {
    @Test func oldestPendingTimestampFollowsTheHead() {
        var t = OffsetTracker()
        #expect(t.oldestPendingTimestamp == nil)
        t.accept([0, 1, 2], timestamps: [100, 200, 300], next: 3)
        t.complete(1)
        #expect(t.oldestPendingTimestamp == 100)
        t.complete(0)
        #expect(t.oldestPendingTimestamp == 300)
        t.complete(2)
        #expect(t.oldestPendingTimestamp == nil)
    }
}
