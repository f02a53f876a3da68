import BrookProtocol

/// Broker-level names of the topic configs (Kafka's `log.*` defaults).
let brokerNameForTopicConfig: [String: String] = [
    "retention.ms": "log.retention.ms",
    "retention.bytes": "log.retention.bytes",
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "cleanup.policy": "log.cleanup.policy",
    "max.message.bytes": "message.max.bytes",
    "message.timestamp.type": "log.message.timestamp.type",
    "compression.type": "compression.type",
    "index.interval.bytes": "log.index.interval.bytes",
    "min.insync.replicas": "min.insync.replicas",
    "segment.index.bytes": "log.index.size.max.bytes",
]

// The value in force for each topic config, and the log settings derived from them.
extension Broker {
    /// The value in force for a topic config: the topic's own, else the broker's, else Kafka's default.
    func effectiveConfig(_ t: TopicMetadata, _ name: String) -> String {
        if let v = t.configs[name] { return v }
        let brokerConfigs = catalog.withLock { $0.brokerConfigs }
        return Self.brokerDefault(name, brokerConfigs: brokerConfigs, defaults: config.topicDefaults)
    }

    static func brokerDefault(_ name: String, brokerConfigs: [String: String], defaults: [String: String]) -> String {
        if let b = brokerNameForTopicConfig[name], let v = brokerConfigs[b] ?? defaults[b] { return v }
        if let v = defaults[name] { return v }
        return TopicConfigCatalog.byName[name]?.defaultValue ?? ""
    }

    static func logConfig(for t: TopicMetadata, brokerConfigs: [String: String], defaults: [String: String]) -> LogConfig {
        func value(_ n: String) -> String { t.configs[n] ?? brokerDefault(n, brokerConfigs: brokerConfigs, defaults: defaults) }
        var c = LogConfig()
        c.segmentBytes = Int(value("segment.bytes")) ?? c.segmentBytes
        c.segmentMs = Int64(value("segment.ms")) ?? c.segmentMs
        c.retentionMs = Int64(value("retention.ms")) ?? c.retentionMs
        c.retentionBytes = Int64(value("retention.bytes")) ?? c.retentionBytes
        c.indexIntervalBytes = Int(value("index.interval.bytes")) ?? c.indexIntervalBytes
        c.maxMessageBytes = Int(value("max.message.bytes")) ?? c.maxMessageBytes
        let policy = Set(value("cleanup.policy").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        // compact alone: never trimmed by time or size; "compact,delete": both.
        if !policy.contains("delete") {
            c.retentionMs = -1
            c.retentionBytes = -1
        }
        // The offsets topic is compacted by the group coordinator's snapshots instead.
        c.compact = policy.contains("compact") && !t.name.hasPrefix("__")
        c.deleteRetentionMs = Int64(value("delete.retention.ms")) ?? c.deleteRetentionMs
        return c
    }

    /// Re-applies the effective log config to every partition of `name` (after an alter).
    func reconfigure(topic name: String) {
        guard let t = topic(named: name) else { return }
        let bc = catalog.withLock { $0.brokerConfigs }
        let lc = Self.logConfig(for: t, brokerConfigs: bc, defaults: config.topicDefaults)
        for p in 0..<t.partitions {
            partition(name, p)?.log.updateConfig(lc)
        }
    }
}
