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
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    public var port: Int = 9092
    /// Host advertised in Metadata (defaults to `host`; set when listening on 0.0.0.0).
    public var advertisedHost: String? = nil
    public var dataDirectory: URL
    public var nodeId: Int32 = 1
    public var clusterId: String = "brook-cluster"
    public var flushPolicy: FlushPolicy = .fsync
    /// `auto.create.topics.enable`
    public var autoCreateTopics: Bool = true
    /// `num.partitions`
    public var defaultPartitions: Int32 = 1
    /// `socket.request.max.bytes`
    public var socketRequestMaxBytes: Int = 100 * 1024 * 1024
    /// `group.initial.rebalance.delay.ms`
    public var groupInitialRebalanceDelayMs: Int64 = 3000
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`
    public var groupMinSessionTimeoutMs: Int32 = 6000
    public var groupMaxSessionTimeoutMs: Int32 = 1_800_000
    /// `offsets.retention.minutes` (7 days).
    public var offsetsRetentionMs: Int64 = 7 * 24 * 3600 * 1000
    /// Broker-wide topic config defaults (`log.retention.ms` and friends).
    public var topicDefaults: [String: String] = [:]
    /// How often retention and segment roll run.
    public var retentionCheckIntervalMs: Int64 = 30_000

    public init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory
    }
}
