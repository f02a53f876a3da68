import Brook

/// Settings of a ``Pipeline``. The defaults are the production ones: bounded memory, retries
/// with backoff, a dead-letter topic with per-key quarantine.
public struct PipelineConfiguration: Sendable {
    /// The consumer: bootstrap servers, `groupId` (required), static membership
    /// (`group.groupInstanceId`), fetch sizes. Auto-commit is turned off: the pipeline commits
    /// the contiguous finished prefix itself.
    public var consumer: ConsumerConfiguration
    /// The topics to subscribe to.
    public var topics: [String]

    /// How records may run concurrently.
    public enum Ordering: Sendable, Equatable {
        /// One lane per partition: records of a partition are handled one batch at a time, in order.
        case partition
        /// Records are spread over `lanesPerPartition` lanes by key hash: one key's records stay
        /// in order, different keys of one partition run concurrently. Keyless records are
        /// spread by offset. Not available with a ``TransactionalSink`` (its stored offset moves
        /// one contiguous range at a time).
        case key(lanesPerPartition: Int)
    }
    /// How records of one partition may run concurrently. Default `.partition`.
    public var ordering: Ordering = .partition

    /// The most records one handler or sink call receives (500).
    public var maxBatchRecords = 500
    /// With a ``TransactionalSink``: the most records one sink transaction covers, gathered from
    /// the ready batches of several partitions (10 000). A lone batch is never split.
    public var maxSinkCallRecords = 10_000
    /// Bound on records accepted but not finished (10 000). When reached, the partitions are
    /// paused until work drains below it; the bound may be overshot by one fetched batch.
    public var maxInFlightRecords = 10_000
    /// Bound on the bytes (keys and values) of records accepted but not finished (32 MiB).
    public var maxInFlightBytes = 32 * 1024 * 1024

    /// Retries in place, order kept.
    public struct Retry: Sendable {
        /// Attempts per record before it is dead-lettered (5). A failing batch handler is tried
        /// this many times as a whole, then one record at a time to find the culprit.
        public var maxAttempts = 5
        /// First backoff (100 ms), doubled per attempt up to `maxBackoff` (10 s).
        public var initialBackoff: Duration = .milliseconds(100)
        /// The longest backoff (10 s).
        public var maxBackoff: Duration = .seconds(10)
        public init() {}

        func backoff(attempt: Int) -> Duration {
            var d = initialBackoff
            for _ in 1..<max(attempt, 1) {
                d = d * 2
                if d >= maxBackoff { return maxBackoff }
            }
            return min(d, maxBackoff)
        }
    }
    /// Retries before dead-lettering. Default: 5 attempts, 100 ms doubling to 10 s.
    public var retry = Retry()

    /// The dead-letter topic and quarantine.
    public struct DeadLetter: Sendable {
        /// The DLT of topic `t` is `t + topicSuffix` (`.dlt`).
        public var topicSuffix = ".dlt"
        /// The compacted quarantine topic of `t` is `t + quarantineSuffix` (`.quarantine`).
        public var quarantineSuffix = ".quarantine"
        /// Park later records of a key behind its dead-lettered one (true).
        public var quarantine = true
        /// Create the DLT and quarantine topics at start when missing (true), with this many
        /// DLT partitions (1: one ordered history; records are keyed, so more keep per-key order too).
        public var createTopics = true
        /// DLT partitions when it is created (1).
        public var partitions: Int32 = 1
        public init() {}
    }
    /// The dead-letter topic and quarantine. Default: `<topic>.dlt` and `<topic>.quarantine`,
    /// created when missing.
    public var deadLetter = DeadLetter()

    /// How often the finished prefix is committed (1 s); also on revocation and shutdown.
    public var commitInterval: Duration = .seconds(1)
    /// How often lag gauges are updated (1 s).
    public var metricsInterval: Duration = .seconds(1)

    public init(consumer: ConsumerConfiguration, topics: [String]) {
        self.consumer = consumer
        self.topics = topics
    }

    var group: String { consumer.groupId ?? "" }

    var lanesPerPartition: Int {
        if case .key(let n) = ordering { return max(n, 1) }
        return 1
    }

    func validate(hasSink: Bool) throws {
        guard let g = consumer.groupId, !g.isEmpty else { throw PipelineError.invalidConfiguration("a consumer group id is required") }
        if topics.isEmpty { throw PipelineError.invalidConfiguration("no topics") }
        if maxBatchRecords < 1 || maxInFlightRecords < 1 || maxInFlightBytes < 1 {
            throw PipelineError.invalidConfiguration("batch and in-flight bounds must be positive")
        }
        if retry.maxAttempts < 1 { throw PipelineError.invalidConfiguration("retry.maxAttempts must be at least 1") }
        if hasSink, lanesPerPartition > 1 {
            throw PipelineError.invalidConfiguration("a transactional sink needs ordering .partition (its stored offset moves one range at a time)")
        }
    }
}

/// Errors the pipeline itself reports (client errors arrive as `KafkaClientError` and
/// `KafkaConsumerError`).
///
/// A struct with a ``Code`` rather than an enum (postgres-nio's `PSQLError` shape), so a new kind
/// can be added without breaking a user's exhaustive `switch`.
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    /// The kind of a ``PipelineError``. New kinds may be added; `switch` over it with a `default`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable { case invalidConfiguration }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The pipeline configuration (or a sink's answer) is not usable.
        public static let invalidConfiguration = Code(.invalidConfiguration)

        public var description: String {
            switch base {
            case .invalidConfiguration: return "invalidConfiguration"
            }
        }
    }

    /// The kind of error.
    public var code: Code
    /// What went wrong.
    public var message: String

    /// Makes an error of any kind; the static functions below name the usual ones.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The pipeline configuration (or a sink's answer) is not usable.
    public static func invalidConfiguration(_ message: String) -> PipelineError { PipelineError(code: .invalidConfiguration, message: message) }

    public var description: String {
        switch code {
        case .invalidConfiguration: return "invalid pipeline configuration: \(message)"
        default: return "\(code): \(message)"
        }
    }
}
