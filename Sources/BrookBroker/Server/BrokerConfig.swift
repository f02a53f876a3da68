import Foundation

/// How an acknowledged produce is made durable.
public enum FlushPolicy: String, Sendable, Codable, CaseIterable {
    /// fsync before acknowledging acks=1/all produces, batched across concurrent producers.
    case fsync
    /// Acknowledge once written to the OS page cache (survives a process crash, not power loss).
    case os
}

/// Settings of the embedded broker. Defaults follow Kafka's where Kafka has one.
public struct BrokerConfig: Sendable {
    /// Address to listen on. Default `127.0.0.1`.
    public var host: String = "127.0.0.1"
    /// Port to listen on. Default 9092.
    public var port: Int = 9092
    /// Host advertised in Metadata (`advertised.listeners`). Default nil: `host` (set it when
    /// listening on 0.0.0.0).
    public var advertisedHost: String? = nil
    /// Where the logs and `__consumer_offsets` live (`log.dirs`). No default: given to `init`.
    public var dataDirectory: URL
    /// `node.id`. Default 1.
    public var nodeId: Int32 = 1
    /// The cluster id reported in Metadata and DescribeCluster. Default `brook-cluster`.
    public var clusterId: String = "brook-cluster"
    /// How an acknowledged produce is made durable. Default `.fsync`.
    public var flushPolicy: FlushPolicy = .fsync
    /// `auto.create.topics.enable`. Default true.
    public var autoCreateTopics: Bool = true
    /// `num.partitions`: partitions of an auto-created topic. Default 1.
    public var defaultPartitions: Int32 = 1
    /// `socket.request.max.bytes`. Default 100 MiB.
    public var socketRequestMaxBytes: Int = 100 * 1024 * 1024
    /// `group.initial.rebalance.delay.ms`. Default 3 s.
    public var groupInitialRebalanceDelay: Duration = .milliseconds(3000)
    /// `group.min.session.timeout.ms`. Default 6 s.
    public var groupMinSessionTimeout: Duration = .milliseconds(6000)
    /// `group.max.session.timeout.ms`. Default 30 min.
    public var groupMaxSessionTimeout: Duration = .milliseconds(1_800_000)
    /// `offsets.retention.minutes`. Default 7 days.
    public var offsetsRetention: Duration = .seconds(7 * 24 * 3600)
    /// Broker-wide topic config defaults (`log.retention.ms` and friends). Default empty: Kafka's.
    public var topicDefaults: [String: String] = [:]
    /// How often retention and segment roll run (`log.retention.check.interval.ms`). Default 30 s.
    public var retentionCheckInterval: Duration = .seconds(30)

    public init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory
    }
}
