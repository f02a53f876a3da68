/// One commit of a partition as the window keeps it (Burrow's stored consumer offset).
public struct CommitSample: Sendable, Hashable, Codable {
    /// The committed offset.
    public var offset: Int64
    /// When the commit was seen (milliseconds since the epoch).
    public var timestampMs: Int64
    /// Log end minus the offset when the commit was seen (never negative).
    public var lag: Int64

    /// A stored commit.
    public init(offset: Int64, timestampMs: Int64, lag: Int64) {
        self.offset = offset
        self.timestampMs = timestampMs
        self.lag = lag
    }

    enum CodingKeys: String, CodingKey { case offset, timestampMs = "timestamp", lag }
}

/// The last `intervals` commits of one partition, kept as Burrow's storage keeps them, and
/// Burrow's rules over them.
///
/// A commit less than `minDistanceMs` after the newest stored one replaces it and keeps the
/// stored timestamp (so commits more frequent than the distance still move the window on).
public struct CommitWindow: Sendable, Hashable {
    /// How many commits the window holds (Burrow's `intervals`, 10 by default).
    public let intervals: Int
    /// Oldest first.
    public private(set) var samples: [CommitSample] = []

    /// An empty window of `intervals` commits (at least one).
    public init(intervals: Int) {
        precondition(intervals >= 1, "a window holds at least one commit")
        self.intervals = intervals
    }

    /// Stores a commit, replacing the newest one when it came within `minDistanceMs` of it.
    public mutating func record(offset: Int64, timestampMs: Int64, lag: Int64, minDistanceMs: Int64) {
        let lag = max(0, lag)
        if let last = samples.last, timestampMs - last.timestampMs < minDistanceMs {
            samples[samples.count - 1] = CommitSample(offset: offset, timestampMs: last.timestampMs, lag: lag)
            return
        }
        samples.append(CommitSample(offset: offset, timestampMs: timestampMs, lag: lag))
        if samples.count > intervals { samples.removeFirst(samples.count - intervals) }
    }

    /// The window holds `intervals` commits (Burrow's `complete` is 1).
    public var isComplete: Bool { samples.count == intervals }

    /// The share of the window that holds commits, 0…1 (Burrow's `complete`).
    public var completeness: Double { Double(samples.count) / Double(intervals) }

    /// Burrow's partition rules, in Burrow's order, for the current lag at `nowMs`:
    ///
    /// 1. OK when the current lag is at most `allowedLag`, or any stored commit had zero lag;
    /// 2. REWIND when an offset is lower than the one before it;
    /// 3. STOP when the time since the newest commit exceeds the time the window spans;
    /// 4. STALL when every offset is the same;
    /// 5. WARN when the lag never fell from one commit to the next;
    /// 6. OK otherwise. An empty window is OK.
    public func status(currentLag: Int64, nowMs: Int64, allowedLag: Int64 = 0) -> LagStatus {
        guard let first = samples.first, let last = samples.last else { return .ok }
        guard currentLag > allowedLag, !samples.contains(where: { $0.lag == 0 }) else { return .ok }
        let pairs = zip(samples, samples.dropFirst())
        if pairs.contains(where: { $1.offset < $0.offset }) { return .rewind }
        if nowMs - last.timestampMs > last.timestampMs - first.timestampMs { return .stop }
        if pairs.allSatisfy({ $1.offset == $0.offset }) { return .stall }
        if !pairs.contains(where: { $1.lag < $0.lag }) { return .warn }
        return .ok
    }
}
