import BrookProtocol

/// A snapshot of the cluster as the last Metadata response described it.
public struct ClusterMetadata: Sendable {
    public struct Broker: Sendable, Hashable {
        public var nodeId: Int32
        public var address: BrokerAddress
        public var rack: String?
    }

    public struct Partition: Sendable, Hashable {
        public var id: Int32
        public var leader: Int32
        public var leaderEpoch: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
        public var error: ErrorCode
    }

    public struct Topic: Sendable {
        public var name: String
        public var id: KafkaUUID
        public var isInternal: Bool
        public var error: ErrorCode
        /// Indexed by partition id.
        public var partitions: [Partition]
    }

    public var clusterId: String?
    public var controllerId: Int32
    public var brokers: [Int32: Broker]
    public var topics: [String: Topic]

    public init(clusterId: String? = nil, controllerId: Int32 = -1, brokers: [Int32: Broker] = [:], topics: [String: Topic] = [:]) {
        self.clusterId = clusterId
        self.controllerId = controllerId
        self.brokers = brokers
        self.topics = topics
    }

    init(_ r: MetadataResponse) {
        clusterId = r.clusterId
        controllerId = r.controllerId
        brokers = [:]
        for b in r.brokers {
            brokers[b.nodeId] = Broker(nodeId: b.nodeId, address: BrokerAddress(host: b.host, port: Int(b.port)), rack: b.rack)
        }
        topics = [:]
        for t in r.topics {
            guard let name = t.name else { continue }
            let parts = t.partitions.map {
                Partition(id: $0.partitionIndex, leader: $0.leaderId, leaderEpoch: $0.leaderEpoch, replicas: $0.replicaNodes,
                          isr: $0.isrNodes, error: ErrorCode(rawValue: $0.errorCode) ?? .unknownServerError)
            }.sorted { $0.id < $1.id }
            topics[name] = Topic(name: name, id: t.topicId, isInternal: t.isInternal,
                                 error: ErrorCode(rawValue: t.errorCode) ?? .unknownServerError, partitions: parts)
        }
    }

    /// Merges a response about some topics into this snapshot.
    mutating func merge(_ other: ClusterMetadata, fullRefresh: Bool) {
        clusterId = other.clusterId ?? clusterId
        controllerId = other.controllerId
        if !other.brokers.isEmpty { brokers = other.brokers }
        if fullRefresh {
            topics = other.topics
        } else {
            for (k, v) in other.topics { topics[k] = v }
        }
    }

    public func leader(topic: String, partition: Int32) -> Int32? {
        guard let t = topics[topic], Int(partition) < t.partitions.count else { return nil }
        let p = t.partitions[Int(partition)]
        return p.leader >= 0 ? p.leader : nil
    }
}
