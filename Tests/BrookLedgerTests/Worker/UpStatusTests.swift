import Brook
import BrookLedger
import Testing

@Suite("UpStatus")
struct UpStatusTests {
    @Test func lagIsLogEndMinusStoredOffsetOrLogStart() {
        let ends: [Int32: Int64] = [0: 100, 1: 50, 2: 10, 3: 0]
        let starts: [Int32: Int64] = [0: 0, 1: 20, 2: 0, 3: 0]
        // Partition 0 applied up to 90; 1 has nothing stored and starts at 20 (retention); 2 is
        // caught up; 3 is empty.
        let stored: [Int32: Int64] = [0: 90, 2: 10]
        #expect(GroupLag.perPartition(ends: ends, starts: starts, stored: stored) == [0: 10, 1: 30, 2: 0, 3: 0])
        #expect(GroupLag.records(ends: ends, starts: starts, stored: stored) == 40)
    }

    @Test func beforeAnyOffsetIsStoredTheWholeTopicIsLag() {
        // Nothing applied yet (workers not assigned): the lag is every record, never 0.
        #expect(GroupLag.records(ends: [0: 7, 1: 5], starts: [:], stored: [:]) == 12)
        // A stored offset past the end (the log was truncated) counts as caught up, not negative.
        #expect(GroupLag.records(ends: [0: 7], starts: [:], stored: [0: 9]) == 0)
    }

    @Test func lineLabelsEveryFigure() {
        let line = LedgerStatusLine(
            generated: 5400, counts: LedgerWorkerCounts(appliedEvents: 5276, appliedCredits: 112, relayedCredits: 115),
            appliedPerSecond: 199.6, deadLettered: 4, parked: 9, lagRecords: 12, lagSeconds: 0.14, assignedPartitions: 64)
        #expect(line.text == "generated 5400 events | lag 12 records, 0.1 s | applied 5276 events + 112 outbox credits (200/s) | dead-lettered 4 poison + 9 parked")
    }

    @Test func lineBeforeAssignmentSaysWorkersAreWaiting() {
        var line = LedgerStatusLine(
            generated: 300, counts: LedgerWorkerCounts(), appliedPerSecond: 0, deadLettered: 0, parked: 0,
            lagRecords: 300, lagSeconds: 0, assignedPartitions: 0)
        #expect(line.text.hasPrefix("generated 300 events | lag 300 records (workers waiting for partitions) | applied 0 events"))
        #expect(!line.text.contains("lag 0 records"))
        line.lagRecords = nil
        #expect(line.text.contains("| lag unknown yet (workers waiting for partitions) |"))
    }

    @Test func countsAdd() {
        let a = LedgerWorkerCounts(appliedEvents: 1, appliedCredits: 2, relayedCredits: 3)
        #expect(a + a == LedgerWorkerCounts(appliedEvents: 2, appliedCredits: 4, relayedCredits: 6))
    }
}
