import Brook
import BrookProtocol

/// A point-in-time view of a ``Pipeline`` for status pages and summary lines.
public struct PipelineSnapshot: Sendable, Equatable {
    public struct Partition: Sendable, Equatable {
        /// Records between the committable offset and the high watermark.
        public var lagRecords: Int64
        /// Age of the oldest record not finished yet (0 when caught up).
        public var lagSeconds: Double
        public var paused: Bool
        public var fenced: Bool
    }
    /// Totals over the assigned partitions.
    public var lagRecords: Int64
    /// The largest per-partition lag in seconds.
    public var lagSeconds: Double
    /// Records finished (handled, dead-lettered or parked) since start.
    public var processed: Int64
    /// Records finished per second over the last five seconds.
    public var recordsPerSecond: Double
    /// Records dead-lettered because they failed.
    public var deadLettered: Int64
    /// Records dead-lettered because their key was quarantined.
    public var parked: Int64
    /// Keys in quarantine now.
    public var quarantinedKeys: Int
    public var inFlightRecords: Int
    public var inFlightBytes: Int
    public var partitions: [TopicPartition: Partition]
}
