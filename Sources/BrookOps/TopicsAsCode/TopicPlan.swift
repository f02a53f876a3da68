/// What `brook topics apply` would change, computed without I/O from the file and what the
/// cluster reports, so it can be printed (dry run) and tested on its own.
public struct TopicPlan: Sendable, Equatable {
    public enum Change: Sendable, Equatable, CustomStringConvertible {
        case create(TopicSpec)
        case addPartitions(topic: String, from: Int32, to: Int32)
        case setConfigs(topic: String, [String: String])

        public var description: String {
            switch self {
            case .create(let t):
                let cfg = t.config.isEmpty ? "" : " " + t.config.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                return "+ create \(t.name) (\(t.partitions) partitions)\(cfg)"
            case .addPartitions(let topic, let from, let to):
                return "~ \(topic): partitions \(from) -> \(to)"
            case .setConfigs(let topic, let cfg):
                return "~ \(topic): " + cfg.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            }
        }
    }

    /// What the cluster has now for one topic: its partition count and its non-default configs.
    public struct Observed: Sendable, Equatable {
        public var partitions: Int32
        public var configs: [String: String]
        public init(partitions: Int32, configs: [String: String]) {
            self.partitions = partitions
            self.configs = configs
        }
    }

    public var changes: [Change]
    /// Topics the cluster has but the file does not name: reported, never deleted.
    public var unmanaged: [String]

    public var isEmpty: Bool { changes.isEmpty }

    /// - Throws: ``TopicsFileError/unsafe(_:)`` for a partition decrease (Kafka cannot), or an
    ///   increase on a keyed topic without `allowPartitionIncrease`.
    public static func make(file: TopicsFile, observed: [String: Observed], allowPartitionIncrease: Bool = false) throws -> TopicPlan {
        var changes: [Change] = []
        for spec in file.topics {
            guard let now = observed[spec.name] else {
                changes.append(.create(spec))
                continue
            }
            if spec.partitions < now.partitions {
                throw TopicsFileError.unsafe("topic '\(spec.name)' has \(now.partitions) partitions; the file asks for \(spec.partitions) and Kafka cannot remove partitions")
            }
            if spec.partitions > now.partitions {
                if spec.keyed && !allowPartitionIncrease {
                    throw TopicsFileError.unsafe("topic '\(spec.name)': going from \(now.partitions) to \(spec.partitions) partitions moves keys to other partitions; pass --allow-partition-increase (or mark the topic keyed: false) if that is intended")
                }
                changes.append(.addPartitions(topic: spec.name, from: now.partitions, to: spec.partitions))
            }
            let differing = spec.config.filter { now.configs[$0.key] != $0.value }
            if !differing.isEmpty { changes.append(.setConfigs(topic: spec.name, differing)) }
        }
        let named = Set(file.topics.map(\.name))
        let unmanaged = observed.keys.filter { !named.contains($0) && !$0.hasPrefix("__") }.sorted()
        return TopicPlan(changes: changes, unmanaged: unmanaged)
    }
}
