/// What to do when a partition has no committed offset, or its offset is out of range
/// (`auto.offset.reset`).
public enum AutoOffsetReset: String, Sendable, CaseIterable {
    /// Start from the oldest record still in the log.
    case earliest
    /// Start after the newest record: only records produced from now on.
    case latest
    /// Fail: the consumer's record sequence throws ``KafkaConsumerError/noOffset(_:)``.
    case error = "none"
}

/// Settings of a ``KafkaConsumer``. Defaults follow Kafka's Java consumer; each property names
/// the Kafka setting it corresponds to.
///
/// ```swift
/// var config = ConsumerConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: 9092)],
///                                    groupId: "billing")
/// config.offsets.autoOffsetReset = .earliest
/// ```
public struct ConsumerConfiguration: Sendable {
    /// Connection settings shared with producers and admin clients (bootstrap servers,
    /// `client.id`, TLS, SASL, timeouts).
    public var client: ClientConfiguration

    /// `group.id`: the consumer group (default nil). nil means no group: partitions are assigned manually with
    /// ``KafkaConsumer/assign(_:)`` and offsets cannot be committed.
    public var groupId: String?

    /// Group membership (classic protocol).
    public struct Group: Sendable {
        /// `group.instance.id` (default nil): a stable identity for static membership (KIP-345). A restarted
        /// member with the same id gets its partitions back without a rebalance, and a member
        /// that closes does not leave the group (the coordinator waits `sessionTimeout` for it).
        public var groupInstanceId: String?
        /// `session.timeout.ms` (45 s): the coordinator removes a member it has not heard a
        /// heartbeat from for this long. Must lie within the broker's
        /// `group.min.session.timeout.ms`…`group.max.session.timeout.ms`.
        public var sessionTimeout: Duration = .seconds(45)
        /// `max.poll.interval.ms` (300 s), sent as the rebalance timeout: how long the
        /// coordinator waits for members to rejoin during a rebalance — and how long this
        /// consumer waits for the application to finish the record it is processing from a
        /// partition being revoked.
        public var rebalanceTimeout: Duration = .seconds(300)
        /// `heartbeat.interval.ms` (3 s). Heartbeats run on their own task, whatever the
        /// application's processing speed.
        public var heartbeatInterval: Duration = .seconds(3)
        /// `partition.assignment.strategy` ([range, cooperative-sticky]): the assignors this
        /// member supports, preferred first. The group uses the first one every member supports.
        /// Rebalances are cooperative only if every assignor listed is cooperative.
        public var assignors: [PartitionAssignmentStrategy] = [.range, .cooperativeSticky]
        /// `client.rack` (default nil): sent in the subscription (version 3) for rack-aware assignors.
        public var rack: String?
        public init() {}
    }
    /// Group membership settings (used only with a ``groupId``).
    public var group = Group()

    /// Committing and resetting offsets.
    public struct Offsets: Sendable {
        /// `auto.offset.reset` (latest).
        public var autoOffsetReset: AutoOffsetReset = .latest
        /// `enable.auto.commit` (true): commit processed positions every `autoCommitInterval`,
        /// before partitions are revoked, and on close.
        public var enableAutoCommit: Bool = true
        /// `auto.commit.interval.ms` (5 s).
        public var autoCommitInterval: Duration = .seconds(5)
        public init() {}
    }
    /// Where to start without a committed offset, and auto-commit.
    public var offsets = Offsets()

    /// Fetching and prefetching.
    public struct Fetch: Sendable {
        /// `fetch.min.bytes` (1): the broker answers once it has this much data or `maxWait` passed.
        public var minBytes: Int32 = 1
        /// `fetch.max.bytes` (50 MiB): upper bound of one fetch response.
        public var maxBytes: Int32 = 52_428_800
        /// `max.partition.fetch.bytes` (1 MiB): upper bound per partition in one fetch response.
        public var maxPartitionBytes: Int32 = 1_048_576
        /// `fetch.max.wait.ms` (500 ms).
        public var maxWait: Duration = .milliseconds(500)
        /// Bound on records fetched but not yet handed to the application, counting their
        /// *decompressed* size plus each decoded record's own footprint (16 MiB; like librdkafka's
        /// `queued.max.messages.kbytes`). When it is
        /// reached fetching pauses until the application catches up. A response may overshoot it
        /// by at most one record batch.
        public var maxPrefetchBytes: Int = 16 * 1024 * 1024
        /// `check.crcs` (true): verify each batch's CRC-32C.
        public var checkCRCs: Bool = true
        /// `allow.auto.create.topics` (true): subscribing to a missing topic asks the broker to
        /// create it (if the broker allows it).
        public var allowAutoCreateTopics: Bool = true
        public init() {}
    }
    /// Fetch sizes, long-poll wait and the prefetch bound.
    public var fetch = Fetch()

    /// Metrics (swift-metrics).
    public struct Metrics: Sendable {
        /// Record lag, time lag and position gauges per partition (true).
        public var enabled: Bool = true
        /// How often the gauges are updated (1 s).
        public var updateInterval: Duration = .seconds(1)
        public init() {}
    }
    /// Lag and throughput metrics through swift-metrics.
    public var metrics = Metrics()

    /// Settings with the defaults, bootstrapping from `bootstrapServers`; a nil `groupId` means
    /// manual assignment (``KafkaConsumer/assign(_:)``) without commits.
    public init(bootstrapServers: [BrokerAddress], groupId: String? = nil) {
        self.client = ClientConfiguration(bootstrapServers: bootstrapServers)
        self.groupId = groupId
    }

    /// Settings with the defaults over `client`'s connection settings (TLS, SASL, client id).
    public init(client: ClientConfiguration, groupId: String? = nil) {
        self.client = client
        self.groupId = groupId
    }

    func validate() throws {
        if let g = groupId, g.isEmpty {
            throw KafkaConsumerError.invalidConfiguration("groupId must not be empty (use nil for no group)")
        }
        if group.assignors.isEmpty {
            throw KafkaConsumerError.invalidConfiguration("at least one assignor is needed")
        }
        if group.heartbeatInterval >= group.sessionTimeout {
            throw KafkaConsumerError.invalidConfiguration("heartbeatInterval must be lower than sessionTimeout")
        }
        if fetch.maxPrefetchBytes <= 0 || fetch.maxBytes <= 0 || fetch.maxPartitionBytes <= 0 {
            throw KafkaConsumerError.invalidConfiguration("fetch sizes must be positive")
        }
        if client.bootstrapServers.isEmpty {
            throw KafkaConsumerError.invalidConfiguration("no bootstrap servers")
        }
    }
}
