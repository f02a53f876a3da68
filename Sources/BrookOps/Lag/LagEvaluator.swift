/// Settings of ``LagEvaluator``; the defaults are Burrow's.
public struct LagEvaluatorConfiguration: Sendable, Hashable {
    /// Commits kept per partition (Burrow's `intervals`).
    public var intervals: Int = 10
    /// A commit closer than this to the newest stored one replaces it (Burrow's `min-distance`,
    /// here in milliseconds).
    public var minDistanceMs: Int64 = 0
    /// Window rules run only when the current lag exceeds this many records (Burrow's rules run
    /// for any lag above zero: the default).
    public var allowedLag: Int64 = 0
    /// A partition whose time lag exceeds this many seconds is at least WARN; nil: no threshold.
    public var maxLagSeconds: Double? = nil

    /// Settings; `intervals` below 1 counts as 1.
    public init(intervals: Int = 10, minDistanceMs: Int64 = 0, allowedLag: Int64 = 0, maxLagSeconds: Double? = nil) {
        self.intervals = max(1, intervals)
        self.minDistanceMs = minDistanceMs
        self.allowedLag = allowedLag
        self.maxLagSeconds = maxLagSeconds
    }
}

/// Burrow's lag evaluation plus an exact time lag, fed with ``LagObservation``s. No I/O and no
/// clock of its own: every time comes from the observations, so tests drive it step by step.
///
/// Burrow reads commits, with their times, from `__consumer_offsets`. The Kafka API a tool may
/// use (OffsetFetch) gives the committed offset but not when it was committed, so the evaluator
/// decides what counts as a commit from successive observations:
/// - the first observation of a partition, and every observation where its offset changed, is a
///   commit at the observation's time;
/// - an unchanged offset is a commit again only while a live member owns the partition (a member
///   that keeps committing the same offset is STALL once the window holds nothing else), with
///   the lag of the offset's first sighting; with no owner nobody commits, and the window ages
///   until Burrow's STOP rule fires.
///
/// The window rules run from a partition's second observation on; a single observation cannot
/// tell a stopped consumer from a working one, so before that only the time-lag threshold sets
/// a status (``LagReport/windowRulesApplied`` says which).
public struct LagEvaluator: Sendable {
    /// The window and threshold settings.
    public let configuration: LagEvaluatorConfiguration
    /// The cluster name the reports carry.
    public let cluster: String
    /// Observations evaluated so far.
    public private(set) var observations = 0
    private var partitions: [Key: PartitionState] = [:]

    private struct Key: Hashable {
        var group: String
        var topic: String
        var partition: Int32
    }

    /// An observed position, for the rates.
    private struct Point {
        var timeMs: Int64
        var committed: Int64
        var logEnd: Int64
    }

    private struct PartitionState {
        var window: CommitWindow
        var seen = 0
        var lastOffset: Int64?
        var recent: [Point] = []
    }

    /// An evaluator with empty windows.
    public init(cluster: String = "default", configuration: LagEvaluatorConfiguration = LagEvaluatorConfiguration()) {
        self.cluster = cluster
        self.configuration = configuration
    }

    /// Adds an observation to the windows and evaluates every group in it. Groups and partitions
    /// absent from the observation are forgotten.
    public mutating func observe(_ observation: LagObservation) -> LagReport {
        observations += 1
        let now = observation.timeMs
        var next: [Key: PartitionState] = [:]
        var groups: [GroupLag] = []
        for g in observation.groups {
            var parts: [PartitionLag] = []
            for p in g.partitions.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
                let key = Key(group: g.group, topic: p.topic, partition: p.partition)
                var st = partitions[key] ?? PartitionState(window: CommitWindow(intervals: configuration.intervals))
                if let c = p.committedOffset {
                    let lag = p.lag ?? 0
                    if st.lastOffset != c {
                        st.window.record(offset: c, timestampMs: now, lag: lag, minDistanceMs: configuration.minDistanceMs)
                    } else if p.owner != nil {
                        // The lag of the offset's first sighting: records that arrived since are
                        // not the member's doing, and would make every later commit look like
                        // progress (lag falling) to the WARN rule.
                        let firstLag = st.window.samples.last?.lag ?? lag
                        st.window.record(offset: c, timestampMs: now, lag: firstLag, minDistanceMs: configuration.minDistanceMs)
                    }
                    st.lastOffset = c
                    st.seen += 1
                    st.recent.append(Point(timeMs: now, committed: c, logEnd: p.logEndOffset))
                    if st.recent.count > configuration.intervals { st.recent.removeFirst(st.recent.count - configuration.intervals) }
                }
                next[key] = st
                parts.append(evaluate(p, st, now: now))
            }
            groups.append(Self.summarize(g, parts))
        }
        partitions = next
        return LagReport(cluster: cluster, timeMs: now, observations: observations, windowRulesApplied: observations >= 2,
                         groups: groups.sorted { $0.group < $1.group })
    }

    private func evaluate(_ p: PartitionObservation, _ st: PartitionState, now: Int64) -> PartitionLag {
        let lag = p.lag
        let lagSeconds = Self.timeLag(lag: lag, firstUnconsumedMs: p.firstUnconsumedTimestampMs, nowMs: now)
        let windowStatus: LagStatus = p.committedOffset != nil && st.seen >= 2
            ? st.window.status(currentLag: lag ?? 0, nowMs: now, allowedLag: configuration.allowedLag)
            : .ok
        let over = configuration.maxLagSeconds.map { max in (lagSeconds ?? 0) > max } ?? false
        let status = over ? Swift.max(windowStatus, .warn) : windowStatus

        var consumption: Double?
        var production: Double?
        var eta: Double?
        var catchingUp: Bool?
        if let first = st.recent.first, let last = st.recent.last, last.timeMs > first.timeMs, last.committed >= first.committed {
            let span = Double(last.timeMs - first.timeMs) / 1000
            consumption = Double(last.committed - first.committed) / span
            production = Double(max(0, last.logEnd - first.logEnd)) / span
        }
        if lag == 0 {
            eta = 0
            catchingUp = true
        } else if let lag, let c = consumption, let pr = production {
            let net = c - pr
            catchingUp = net > 0
            if net > 0 { eta = Double(lag) / net }
        }
        return PartitionLag(
            topic: p.topic, partition: p.partition, currentOffset: p.committedOffset, logEndOffset: p.logEndOffset, logStartOffset: p.logStartOffset,
            lag: lag, lagSeconds: lagSeconds, owner: p.owner, status: status, windowStatus: windowStatus, overMaxLagSeconds: over,
            consumptionRate: consumption, productionRate: production, etaSeconds: eta, catchingUp: catchingUp,
            windowStart: st.window.samples.first, windowEnd: st.window.samples.last, windowSamples: st.window.samples.count,
            complete: p.committedOffset == nil ? 0 : st.window.completeness)
    }

    /// The exact time lag: 0 when caught up, `now - timestamp` of the first unconsumed record
    /// otherwise (never negative: producer clocks may run ahead), nil when there is lag but
    /// that record is unknown or there is no committed offset.
    public static func timeLag(lag: Int64?, firstUnconsumedMs: Int64?, nowMs: Int64) -> Double? {
        guard let lag else { return nil }
        if lag == 0 { return 0 }
        guard let ts = firstUnconsumedMs else { return nil }
        return Double(max(0, nowMs - ts)) / 1000
    }

    static func summarize(_ g: GroupObservation, _ parts: [PartitionLag]) -> GroupLag {
        let committed = parts.filter { $0.currentOffset != nil }
        let complete = committed.isEmpty ? 1 : Double(committed.filter { $0.complete >= 1 }.count) / Double(committed.count)
        return GroupLag(
            group: g.group, state: g.state,
            status: parts.map(\.status.groupLevel).max() ?? .ok,
            complete: complete,
            totalLag: parts.reduce(0) { $0 + ($1.lag ?? 0) },
            maxLag: parts.compactMap(\.lag).max() ?? 0,
            maxLagSeconds: parts.compactMap(\.lagSeconds).max() ?? 0,
            partitions: parts)
    }
}
