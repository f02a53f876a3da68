import BrookProtocol
import Brook
import Logging

/// Applies a ``TopicsFile`` to a cluster: reads what is there, plans, validates every change
/// with the broker first (validate-only), then applies. Running it twice changes nothing.
public struct TopicApplier: Sendable {
    public let admin: KafkaAdmin
    public let logger: Logger

    public init(admin: KafkaAdmin, logger: Logger = Logger(label: "brook.topics.apply")) {
        self.admin = admin
        self.logger = logger
    }

    /// The cluster's view of the file's topics (and the names of all others).
    public func observe(_ file: TopicsFile) async throws -> [String: TopicPlan.Observed] {
        var out: [String: TopicPlan.Observed] = [:]
        let names = Set(file.topics.map(\.name))
        for t in try await admin.listTopics() {
            var configs: [String: String] = [:]
            if names.contains(t.name) {
                for e in try await admin.describeConfigs(.topic, name: t.name) where !e.isDefault {
                    if let v = e.value { configs[e.name] = v }
                }
            }
            out[t.name] = TopicPlan.Observed(partitions: Int32(t.partitions.count), configs: configs)
        }
        return out
    }

    public func plan(_ file: TopicsFile, allowPartitionIncrease: Bool = false) async throws -> TopicPlan {
        try TopicPlan.make(file: file, observed: try await observe(file), allowPartitionIncrease: allowPartitionIncrease)
    }

    /// Applies `plan`. Every change is validated first, so a bad config fails before anything changed.
    public func apply(_ plan: TopicPlan) async throws {
        for validateOnly in [true, false] {
            for change in plan.changes {
                switch change {
                case .create(let t):
                    try await admin.createTopics(
                        [.init(name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor ?? -1, configs: t.config)],
                        validateOnly: validateOnly)
                case .addPartitions(let topic, _, let to):
                    try await admin.createPartitions(topic: topic, totalCount: to, validateOnly: validateOnly)
                case .setConfigs(let topic, let cfg):
                    try await admin.alterConfigs(.topic, name: topic, cfg.sorted { $0.key < $1.key }.map { ($0.key, .set, $0.value) }, validateOnly: validateOnly)
                }
                if !validateOnly { logger.info("applied", metadata: [BrookLogKey.change: "\(change)"]) }
            }
        }
    }
}
