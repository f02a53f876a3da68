/// The evaluation of one observation: every group with its partitions. The JSON of
/// `brook lag --format json` is this value encoded (see ``LagJSON``).
public struct LagReport: Sendable, Hashable, Codable {
    /// The cluster's name in metrics and the Burrow API (`--cluster-name`).
    public var cluster: String
    /// When the observation was taken (milliseconds since the epoch).
    public var timeMs: Int64
    /// How many observations the evaluator has seen, this one included.
    public var observations: Int
    /// False until Burrow's window rules could run (they need two observations of a partition);
    /// before that, statuses come from the time-lag threshold only.
    public var windowRulesApplied: Bool
    public var groups: [GroupLag]

    public init(cluster: String, timeMs: Int64, observations: Int, windowRulesApplied: Bool, groups: [GroupLag]) {
        self.cluster = cluster
        self.timeMs = timeMs
        self.observations = observations
        self.windowRulesApplied = windowRulesApplied
        self.groups = groups
    }

    /// The worst group status (OK when there are no groups).
    public var worstStatus: LagStatus { groups.map(\.status).max() ?? .ok }

    enum CodingKeys: String, CodingKey {
        case cluster, timeMs = "time_ms", observations, windowRulesApplied = "window_rules_applied", groups
    }
}

/// One group's evaluation.
public struct GroupLag: Sendable, Hashable, Codable {
    public var group: String
    public var state: String
    /// The worst partition status, with STOP, STALL and REWIND as ERR.
    public var status: LagStatus
    /// The share of partitions whose window is full, 0…1 (Burrow's `complete`).
    public var complete: Double
    /// The sum of the partitions' lag in records.
    public var totalLag: Int64
    /// The largest partition lag in records.
    public var maxLag: Int64
    /// The largest partition time lag in seconds (0 when none is known).
    public var maxLagSeconds: Double
    public var partitions: [PartitionLag]

    public init(group: String, state: String, status: LagStatus, complete: Double, totalLag: Int64, maxLag: Int64, maxLagSeconds: Double, partitions: [PartitionLag]) {
        self.group = group
        self.state = state
        self.status = status
        self.complete = complete
        self.totalLag = totalLag
        self.maxLag = maxLag
        self.maxLagSeconds = maxLagSeconds
        self.partitions = partitions
    }

    enum CodingKeys: String, CodingKey {
        case group, state, status, complete, totalLag = "total_lag", maxLag = "max_lag", maxLagSeconds = "max_lag_seconds", partitions
    }
}

/// One partition's evaluation.
public struct PartitionLag: Sendable, Hashable, Codable {
    public var topic: String
    public var partition: Int32
    /// The committed offset; nil when the group has none for this partition.
    public var currentOffset: Int64?
    public var logEndOffset: Int64
    public var logStartOffset: Int64
    /// Log end minus committed offset; nil without a committed offset.
    public var lag: Int64?
    /// Now minus the timestamp of the first record not yet consumed; 0 when caught up; nil only
    /// when there is lag but that record could not be read. Never NaN.
    public var lagSeconds: Double?
    public var owner: PartitionOwner?
    /// The final status: Burrow's rules, raised to at least WARN past `--max-lag-seconds`.
    public var status: LagStatus
    /// What Burrow's window rules alone say.
    public var windowStatus: LagStatus
    /// The time lag exceeds `--max-lag-seconds`.
    public var overMaxLagSeconds: Bool
    /// Records committed per second over the recent observations; nil before two observations.
    public var consumptionRate: Double?
    /// Records appended per second over the same observations.
    public var productionRate: Double?
    /// Seconds until the lag reaches zero at the current rates: 0 when caught up, nil when
    /// unknown or when the group does not gain on the log (see ``catchingUp``).
    public var etaSeconds: Double?
    /// The group consumes faster than records arrive (known only with rates).
    public var catchingUp: Bool?
    /// Burrow's window: the oldest and newest stored commits, how many it holds, and how full it is.
    public var windowStart: CommitSample?
    public var windowEnd: CommitSample?
    public var windowSamples: Int
    public var complete: Double

    public init(topic: String, partition: Int32, currentOffset: Int64?, logEndOffset: Int64, logStartOffset: Int64, lag: Int64?, lagSeconds: Double?,
                owner: PartitionOwner?, status: LagStatus, windowStatus: LagStatus, overMaxLagSeconds: Bool, consumptionRate: Double?, productionRate: Double?,
                etaSeconds: Double?, catchingUp: Bool?, windowStart: CommitSample?, windowEnd: CommitSample?, windowSamples: Int, complete: Double) {
        self.topic = topic
        self.partition = partition
        self.currentOffset = currentOffset
        self.logEndOffset = logEndOffset
        self.logStartOffset = logStartOffset
        self.lag = lag
        self.lagSeconds = lagSeconds
        self.owner = owner
        self.status = status
        self.windowStatus = windowStatus
        self.overMaxLagSeconds = overMaxLagSeconds
        self.consumptionRate = consumptionRate
        self.productionRate = productionRate
        self.etaSeconds = etaSeconds
        self.catchingUp = catchingUp
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.windowSamples = windowSamples
        self.complete = complete
    }

    enum CodingKeys: String, CodingKey {
        case topic, partition, currentOffset = "current_offset", logEndOffset = "log_end_offset", logStartOffset = "log_start_offset", lag
        case lagSeconds = "lag_seconds", owner, status, windowStatus = "window_status", overMaxLagSeconds = "over_max_lag_seconds"
        case consumptionRate = "consumption_rate", productionRate = "production_rate", etaSeconds = "eta_seconds", catchingUp = "catching_up"
        case windowStart = "window_start", windowEnd = "window_end", windowSamples = "window_samples", complete
    }

    // Optionals are written as null rather than left out, so the documented shape is stable.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(topic, forKey: .topic)
        try c.encode(partition, forKey: .partition)
        try c.encode(currentOffset, forKey: .currentOffset)
        try c.encode(logEndOffset, forKey: .logEndOffset)
        try c.encode(logStartOffset, forKey: .logStartOffset)
        try c.encode(lag, forKey: .lag)
        try c.encode(lagSeconds, forKey: .lagSeconds)
        try c.encode(owner, forKey: .owner)
        try c.encode(status, forKey: .status)
        try c.encode(windowStatus, forKey: .windowStatus)
        try c.encode(overMaxLagSeconds, forKey: .overMaxLagSeconds)
        try c.encode(consumptionRate, forKey: .consumptionRate)
        try c.encode(productionRate, forKey: .productionRate)
        try c.encode(etaSeconds, forKey: .etaSeconds)
        try c.encode(catchingUp, forKey: .catchingUp)
        try c.encode(windowStart, forKey: .windowStart)
        try c.encode(windowEnd, forKey: .windowEnd)
        try c.encode(windowSamples, forKey: .windowSamples)
        try c.encode(complete, forKey: .complete)
    }
}
