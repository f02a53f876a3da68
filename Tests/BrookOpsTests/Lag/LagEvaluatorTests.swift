@testable import BrookOps
import Foundation
import Testing

/// Burrow's rules and the time lag, driven observation by observation (no broker, no clock).
@Suite("Lag evaluation")
struct LagEvaluatorTests {
    static let owner = PartitionOwner(consumerId: "c-1", host: "/10.0.0.1", clientId: "app")

    /// One group, one partition of topic "t".
    static func obs(_ t: Int64, committed: Int64?, end: Int64, owner: PartitionOwner? = owner, firstTs: Int64? = nil, start: Int64 = 0) -> LagObservation {
        LagObservation(timeMs: t, groups: [GroupObservation(group: "g", partitions: [
            PartitionObservation(topic: "t", partition: 0, committedOffset: committed, logEndOffset: end, logStartOffset: start,
                                 firstUnconsumedTimestampMs: firstTs, owner: owner)
        ])])
    }

    /// Feeds (time s, committed, log end) steps and returns the last report.
    static func run(_ steps: [(Int64, Int64, Int64)], owner: PartitionOwner? = owner, config: LagEvaluatorConfiguration = .init()) -> LagReport {
        var e = LagEvaluator(configuration: config)
        var last: LagReport!
        for (t, c, end) in steps { last = e.observe(obs(t * 1000, committed: c, end: end, owner: owner)) }
        return last
    }

    static func partition(_ r: LagReport) -> PartitionLag { r.groups[0].partitions[0] }

    // MARK: the window (Burrow's storage)

    @Test func windowKeepsTheLastIntervalsCommits() {
        var w = CommitWindow(intervals: 3)
        for i in 0..<5 { w.record(offset: Int64(i), timestampMs: Int64(i) * 1000, lag: 1, minDistanceMs: 0) }
        #expect(w.samples.map(\.offset) == [2, 3, 4])
        #expect(w.isComplete && w.completeness == 1)
    }

    @Test func commitWithinMinDistanceReplacesTheNewestAndKeepsItsTime() {
        var w = CommitWindow(intervals: 10)
        w.record(offset: 10, timestampMs: 1000, lag: 5, minDistanceMs: 2000)
        w.record(offset: 12, timestampMs: 2500, lag: 3, minDistanceMs: 2000)
        #expect(w.samples == [CommitSample(offset: 12, timestampMs: 1000, lag: 3)])
        w.record(offset: 14, timestampMs: 3000, lag: 1, minDistanceMs: 2000)
        #expect(w.samples.map(\.offset) == [12, 14])
        #expect(!w.isComplete && w.completeness == 0.2)
    }

    // MARK: Burrow's rules, one by one

    @Test func zeroLagAnywhereInTheWindowIsOK() {
        let r = Self.run([(0, 10, 10), (10, 15, 30), (20, 20, 40)])
        #expect(Self.partition(r).status == .ok)
        #expect(r.groups[0].status == .ok)
    }

    @Test func noCurrentLagIsOK() {
        let r = Self.run([(0, 10, 20), (10, 20, 20)])
        #expect(Self.partition(r).status == .ok)
    }

    @Test func lagWithinAllowedLagIsOK() {
        let steps: [(Int64, Int64, Int64)] = [(0, 10, 20), (10, 12, 25), (20, 14, 30)]
        #expect(Self.partition(Self.run(steps)).status == .warn)
        #expect(Self.partition(Self.run(steps, config: .init(allowedLag: 16))).status == .ok)
    }

    @Test func offsetGoingBackIsRewindAndGroupErr() {
        let r = Self.run([(0, 50, 100), (10, 60, 100), (20, 5, 100)])
        #expect(Self.partition(r).status == .rewind)
        #expect(r.groups[0].status == .err)
    }

    @Test func noCommitForLongerThanTheWindowSpansIsStop() {
        // Commits at 0 s and 10 s, then the owner leaves: nothing new until 21 s > 10 s span.
        var e = LagEvaluator()
        _ = e.observe(Self.obs(0, committed: 10, end: 20))
        _ = e.observe(Self.obs(10_000, committed: 20, end: 30))
        let before = e.observe(Self.obs(20_000, committed: 20, end: 40, owner: nil))
        #expect(Self.partition(before).status == .warn)
        let after = e.observe(Self.obs(20_001, committed: 20, end: 40, owner: nil))
        #expect(Self.partition(after).status == .stop)
        #expect(after.groups[0].status == .err)
    }

    @Test func aLoneOldCommitWithLagStopsAtTheSecondObservation() {
        var e = LagEvaluator()
        let first = e.observe(Self.obs(0, committed: 5, end: 20, owner: nil))
        #expect(!first.windowRulesApplied && Self.partition(first).status == .ok)
        let second = e.observe(Self.obs(1000, committed: 5, end: 20, owner: nil))
        #expect(second.windowRulesApplied && Self.partition(second).status == .stop)
    }

    @Test func sameOffsetCommittedWithLagByALiveMemberIsStall() {
        let r = Self.run([(0, 7, 20), (10, 7, 25), (20, 7, 30)])
        #expect(Self.partition(r).status == .stall)
        #expect(r.groups[0].status == .err)
    }

    @Test func lagNeverFallingIsWarn() {
        let r = Self.run([(0, 10, 20), (10, 20, 35), (20, 30, 50)])
        #expect(Self.partition(r).status == .warn)
        #expect(r.groups[0].status == .warn)
    }

    @Test func lagThatFellSomewhereIsOK() {
        let r = Self.run([(0, 10, 20), (10, 20, 25), (20, 30, 45)])
        #expect(Self.partition(r).status == .ok)
    }

    @Test func rewindOutranksStopAndStopOutranksStall() {
        // Rewind and stop both hold (last commit old): rewind wins.
        var w = CommitWindow(intervals: 10)
        w.record(offset: 10, timestampMs: 0, lag: 5, minDistanceMs: 0)
        w.record(offset: 8, timestampMs: 1000, lag: 7, minDistanceMs: 0)
        #expect(w.status(currentLag: 7, nowMs: 10_000) == .rewind)
        // Stop and stall both hold: stop wins.
        var s = CommitWindow(intervals: 10)
        s.record(offset: 10, timestampMs: 0, lag: 5, minDistanceMs: 0)
        s.record(offset: 10, timestampMs: 1000, lag: 5, minDistanceMs: 0)
        #expect(s.status(currentLag: 5, nowMs: 10_000) == .stop)
        #expect(s.status(currentLag: 5, nowMs: 1500) == .stall)
    }

    @Test func unchangedOffsetWithoutOwnerIsNotACommit() {
        var e = LagEvaluator()
        _ = e.observe(Self.obs(0, committed: 3, end: 9, owner: nil))
        let r = e.observe(Self.obs(1000, committed: 3, end: 9, owner: nil))
        #expect(Self.partition(r).windowSamples == 1)
        let withOwner = e.observe(Self.obs(2000, committed: 3, end: 9))
        #expect(Self.partition(withOwner).windowSamples == 2)
    }

    @Test func repeatedOffsetKeepsTheLagOfItsFirstSighting() {
        // Records arrive between a slow member's commits: its window must not see the lag fall.
        let r = Self.run([(0, 10, 20), (1, 10, 40), (2, 20, 40), (3, 20, 60), (4, 30, 60)])
        let p = Self.partition(r)
        #expect(p.windowSamples == 5)
        #expect(p.status == .warn)
    }

    @Test func memberStuckAfterProgressIsStallOnceTheWindowHoldsOnlyThatOffset() {
        let config = LagEvaluatorConfiguration(intervals: 3)
        let steps: [(Int64, Int64, Int64)] = [(0, 5, 18), (1, 7, 20), (2, 7, 20)]
        #expect(Self.partition(Self.run(steps, config: config)).status == .warn)
        #expect(Self.partition(Self.run(steps + [(3, 7, 20)], config: config)).status == .stall)
    }

    @Test func groupIsWorstPartitionAndCompleteCountsFullWindows() {
        var e = LagEvaluator(configuration: .init(intervals: 2))
        func o(_ t: Int64, _ c0: Int64, _ c1: Int64, _ end: Int64) -> LagObservation {
            LagObservation(timeMs: t, groups: [GroupObservation(group: "g", partitions: [
                PartitionObservation(topic: "t", partition: 0, committedOffset: c0, logEndOffset: end, owner: Self.owner),
                PartitionObservation(topic: "t", partition: 1, committedOffset: c1, logEndOffset: end, owner: Self.owner),
                PartitionObservation(topic: "t", partition: 2, committedOffset: nil, logEndOffset: end, owner: Self.owner),
            ])])
        }
        _ = e.observe(o(0, 10, 5, 20))
        let r = e.observe(o(1000, 20, 5, 30))
        #expect(r.groups[0].partitions.map(\.status) == [.warn, .stall, .ok])
        #expect(r.groups[0].status == .err)
        #expect(r.groups[0].complete == 1)
        #expect(r.groups[0].totalLag == 10 + 25)
        #expect(r.groups[0].maxLag == 25)
        #expect(r.worstStatus == .err)
    }

    @Test func forgottenGroupStartsAfresh() {
        var e = LagEvaluator()
        _ = e.observe(Self.obs(0, committed: 1, end: 9))
        _ = e.observe(LagObservation(timeMs: 500, groups: []))
        let r = e.observe(Self.obs(1000, committed: 1, end: 9))
        #expect(Self.partition(r).windowSamples == 1)
        #expect(Self.partition(r).status == .ok)
    }

    // MARK: time lag and --max-lag-seconds

    @Test func timeLagIsAgeOfFirstUnconsumedRecord() {
        var e = LagEvaluator()
        let r = e.observe(Self.obs(100_000, committed: 5, end: 9, firstTs: 92_500))
        #expect(Self.partition(r).lagSeconds == 7.5)
        #expect(r.groups[0].maxLagSeconds == 7.5)
    }

    @Test func caughtUpOrIdleIsZeroSecondsNeverNaN() {
        var e = LagEvaluator()
        let r = e.observe(Self.obs(100_000, committed: 9, end: 9))
        #expect(Self.partition(r).lagSeconds == 0)
        let empty = e.observe(Self.obs(200_000, committed: 0, end: 0))
        #expect(Self.partition(empty).lagSeconds == 0)
        #expect(LagEvaluator.timeLag(lag: 3, firstUnconsumedMs: nil, nowMs: 1) == nil)
        #expect(LagEvaluator.timeLag(lag: nil, firstUnconsumedMs: 5, nowMs: 1) == nil)
        // A producer clock ahead of ours gives 0, not a negative age.
        #expect(LagEvaluator.timeLag(lag: 1, firstUnconsumedMs: 2000, nowMs: 1000) == 0)
    }

    @Test func timeLagOverThresholdIsAtLeastWarnFromTheFirstObservation() {
        var e = LagEvaluator(configuration: .init(maxLagSeconds: 5))
        let over = e.observe(Self.obs(100_000, committed: 5, end: 9, firstTs: 94_000))
        #expect(Self.partition(over).status == .warn && Self.partition(over).overMaxLagSeconds)
        #expect(over.groups[0].status == .warn)
        var e2 = LagEvaluator(configuration: .init(maxLagSeconds: 5))
        let equal = e2.observe(Self.obs(100_000, committed: 5, end: 9, firstTs: 95_000))
        #expect(Self.partition(equal).status == .ok && !Self.partition(equal).overMaxLagSeconds)
    }

    @Test func thresholdNeverLowersAWindowStatus() {
        var e = LagEvaluator(configuration: .init(maxLagSeconds: 1))
        _ = e.observe(Self.obs(0, committed: 50, end: 100, firstTs: 0))
        let r = e.observe(Self.obs(1000, committed: 10, end: 100, firstTs: -60_000))
        #expect(Self.partition(r).status == .rewind)
        #expect(Self.partition(r).windowStatus == .rewind)
    }

    // MARK: rates and ETA

    @Test func etaFromNetConsumptionRate() {
        // 100 records/s committed, 50/s produced: 500 behind → 10 s.
        let r = Self.run([(0, 0, 1000), (10, 1000, 1500)])
        let p = Self.partition(r)
        #expect(p.consumptionRate == 100)
        #expect(p.productionRate == 50)
        #expect(p.etaSeconds == 10)
        #expect(p.catchingUp == true)
        #expect(LagTable.eta(p) == "10s")
    }

    @Test func etaNeverWhenFallingBehindAndZeroWhenCaughtUp() {
        let behind = Self.partition(Self.run([(0, 0, 100), (10, 10, 300)]))
        #expect(behind.etaSeconds == nil && behind.catchingUp == false && LagTable.eta(behind) == "never")
        let caughtUp = Self.partition(Self.run([(0, 10, 10)]))
        #expect(caughtUp.etaSeconds == 0 && LagTable.eta(caughtUp) == "0s")
        let unknown = Self.partition(Self.run([(0, 5, 10)]))
        #expect(unknown.etaSeconds == nil && LagTable.eta(unknown) == "-")
    }
}
