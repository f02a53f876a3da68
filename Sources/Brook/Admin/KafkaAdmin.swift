import BrookProtocol
import Logging
import NIOCore

/// Topic, config, group and offset administration against any Kafka cluster.
///
/// Every broker error comes back as `KafkaClientError.broker(code, resource:, message:)`, naming
/// Kafka's error code and the topic, partition or group it is about.
public final class KafkaAdmin: Sendable {
    /// The connections and metadata cache this admin uses (shareable with producers and consumers).
    public let cluster: KafkaCluster

    /// Creates an admin client with its own connections; call ``close()`` when done.
    ///
    /// ```swift
    /// let admin = KafkaAdmin(config: ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: 9092)]))
    /// try await admin.createTopics([.init(name: "payments", partitions: 6)])
    /// await admin.close()
    /// ```
    public init(config: ClientConfiguration, logger: Logger = Logger(label: "brook.admin")) {
        cluster = KafkaCluster(config: config, logger: logger)
    }

    /// Creates an admin client over a cluster shared with other clients.
    public init(cluster: KafkaCluster) {
        self.cluster = cluster
    }

    /// Closes the cluster's connections (also those of clients sharing it).
    public func close() async {
        await cluster.close()
    }

    /// The controller (where topic changes go); any broker for a single-node cluster.
    private func controller() async throws -> BrokerConnection {
        let md = try await cluster.refreshMetadata()
        if md.controllerId >= 0, let c = try? await cluster.connection(to: md.controllerId) { return c }
        return try await cluster.anyConnection()
    }

    // MARK: topics

    /// A topic to create: partitions and replication factor -1 take the broker's defaults.
    public struct NewTopic: Sendable {
        public var name: String
        public var partitions: Int32
        public var replicationFactor: Int16
        /// Topic configs such as `retention.ms` or `cleanup.policy`.
        public var configs: [String: String]
        public init(name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1, configs: [String: String] = [:]) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.configs = configs
        }
    }

    /// CreateTopics at the controller. Throws ``KafkaClientError/broker(_:resource:message:)``
    /// for the first topic that failed (e.g. `topicAlreadyExists`, `invalidConfig`);
    /// `validateOnly` checks without creating.
    public func createTopics(_ topics: [NewTopic], validateOnly: Bool = false, timeoutMs: Int32 = 30000) async throws {
        var req = CreateTopicsRequest()
        req.timeoutMs = timeoutMs
        req.validateOnly = validateOnly
        req.topics = topics.map { t in
            var c = CreateTopicsRequest.CreatableTopic()
            c.name = t.name
            c.numPartitions = t.partitions
            c.replicationFactor = t.replicationFactor
            c.configs = t.configs.sorted { $0.key < $1.key }.map { k, v in
                var cfg = CreateTopicsRequest.CreatableTopicConfig()
                cfg.name = k
                cfg.value = v
                return cfg
            }
            return c
        }
        let resp = try await controller().send(req)
        for r in resp.topics { try KafkaClientError.check(r.errorCode, resource: "topic \(r.name)", message: r.errorMessage) }
    }

    /// DeleteTopics at the controller, by name. Throws for the first topic that failed
    /// (e.g. `unknownTopicOrPartition`).
    public func deleteTopics(_ names: [String], timeoutMs: Int32 = 30000) async throws {
        let conn = try await controller()
        var req = DeleteTopicsRequest()
        req.timeoutMs = timeoutMs
        if try conn.version(for: .deleteTopics) >= 6 {
            req.topics = names.map { n in
                var t = DeleteTopicsRequest.DeleteTopicState()
                t.name = n
                return t
            }
        } else {
            req.topicNames = names
        }
        let resp = try await conn.send(req)
        for r in resp.responses { try KafkaClientError.check(r.errorCode, resource: "topic \(r.name ?? "\(r.topicId)")", message: r.errorMessage) }
    }

    /// CreatePartitions: grows `topic` to `totalCount` partitions (partitions cannot shrink).
    public func createPartitions(topic: String, totalCount: Int32, validateOnly: Bool = false) async throws {
        var req = CreatePartitionsRequest()
        var t = CreatePartitionsRequest.CreatePartitionsTopic()
        t.name = topic
        t.count = totalCount
        t.assignments = nil
        req.topics = [t]
        req.timeoutMs = 30000
        req.validateOnly = validateOnly
        let resp = try await controller().send(req)
        for r in resp.results { try KafkaClientError.check(r.errorCode, resource: "topic \(r.name)", message: r.errorMessage) }
    }

    /// Every topic with its partitions (internal topics included when asked).
    public func listTopics(includeInternal: Bool = false) async throws -> [ClusterMetadata.Topic] {
        // Ask for every topic (not just the ones this client has looked at).
        let conn = try await cluster.anyConnection()
        var req = MetadataRequest()
        req.topics = try conn.version(for: .metadata) == 0 ? [] : nil
        req.allowAutoTopicCreation = false
        let md = ClusterMetadata(try await conn.send(req))
        return md.topics.values.filter { $0.error == .none && (includeInternal || !$0.isInternal) }.sorted { $0.name < $1.name }
    }

    /// Fresh metadata of one topic: partitions, leaders, replicas. Throws
    /// ``KafkaClientError/broker(_:resource:message:)`` with `unknownTopicOrPartition` when it
    /// does not exist.
    public func describeTopic(_ name: String) async throws -> ClusterMetadata.Topic {
        try await cluster.refreshMetadata(topics: [name])
        return try await cluster.metadata(for: name)
    }

    // MARK: configs

    /// The kind of resource a config belongs to (Kafka's `ConfigResource.Type`).
    public enum ResourceType: Int8, Sendable {
        case topic = 2
        case broker = 4
    }

    /// One config of a topic or broker, as DescribeConfigs reports it.
    public struct ConfigEntry: Sendable, Hashable {
        public var name: String
        public var value: String?
        /// The config has its default value (not set on the resource or the broker).
        public var isDefault: Bool
        public var readOnly: Bool
        /// Kafka's `ConfigSource`: 1 dynamic topic, 2 dynamic broker, 4 static broker, 5 default, ….
        public var source: Int8
    }

    /// DescribeConfigs: every config of the resource, or only `keys`.
    public func describeConfigs(_ type: ResourceType, name: String, keys: [String]? = nil) async throws -> [ConfigEntry] {
        var req = DescribeConfigsRequest()
        var r = DescribeConfigsRequest.DescribeConfigsResource()
        r.resourceType = type.rawValue
        r.resourceName = name
        r.configurationKeys = keys
        req.resources = [r]
        let resp = try await controller().send(req)
        guard let result = resp.results.first else { throw KafkaClientError.protocolViolation("empty DescribeConfigs response") }
        try KafkaClientError.check(result.errorCode, resource: "\(type) \(name)", message: result.errorMessage)
        return result.configs.map {
            ConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault || $0.configSource == 5, readOnly: $0.readOnly, source: $0.configSource)
        }
    }

    /// How ``alterConfigs(_:name:_:validateOnly:)`` changes a config: set it, delete it (back to
    /// its default), or append to / subtract from a list-valued config.
    public enum ConfigOperation: Int8, Sendable {
        case set = 0, delete = 1, append = 2, subtract = 3
    }

    /// IncrementalAlterConfigs: changes only the named configs.
    public func alterConfigs(_ type: ResourceType, name: String, _ changes: [(name: String, op: ConfigOperation, value: String?)], validateOnly: Bool = false) async throws {
        var req = IncrementalAlterConfigsRequest()
        var r = IncrementalAlterConfigsRequest.AlterConfigsResource()
        r.resourceType = type.rawValue
        r.resourceName = name
        r.configs = changes.map { c in
            var a = IncrementalAlterConfigsRequest.AlterableConfig()
            a.name = c.name
            a.configOperation = c.op.rawValue
            a.value = c.value
            return a
        }
        req.resources = [r]
        req.validateOnly = validateOnly
        let resp = try await controller().send(req)
        for x in resp.responses { try KafkaClientError.check(x.errorCode, resource: "\(type) \(name)", message: x.errorMessage) }
    }

    // MARK: offsets

    /// Which offset ``listOffsets(topic:partitions:spec:)`` asks for: the log start, the log end,
    /// or the earliest offset whose timestamp is at or after the given time (milliseconds).
    public enum OffsetSpec: Sendable, Hashable {
        case earliest
        case latest
        case timestamp(Int64)
        var raw: Int64 {
            switch self {
            case .earliest: return -2
            case .latest: return -1
            case .timestamp(let t): return t
            }
        }
    }

    /// ListOffsets for every partition of `topic` (or the given partitions), asked of each leader.
    public func listOffsets(topic: String, partitions: [Int32]? = nil, spec: OffsetSpec) async throws -> [Int32: Int64] {
        let t = try await cluster.metadata(for: topic)
        let wanted = partitions ?? t.partitions.map(\.id)
        var byLeader: [Int32: [Int32]] = [:]
        for p in wanted {
            guard Int(p) < t.partitions.count else {
                throw KafkaClientError.broker(.unknownTopicOrPartition, resource: "\(topic)-\(p)", message: nil)
            }
            byLeader[t.partitions[Int(p)].leader, default: []].append(p)
        }
        var result: [Int32: Int64] = [:]
        for (leader, parts) in byLeader {
            let conn = try await cluster.connection(to: leader)
            var req = ListOffsetsRequest()
            req.replicaId = -1
            var lt = ListOffsetsRequest.ListOffsetsTopic()
            lt.name = topic
            lt.partitions = parts.map { p in
                var x = ListOffsetsRequest.ListOffsetsPartition()
                x.partitionIndex = p
                x.timestamp = spec.raw
                x.maxNumOffsets = 1
                return x
            }
            req.topics = [lt]
            let v = try conn.version(for: .listOffsets)
            let resp = try await conn.send(req, version: v)
            for rt in resp.topics {
                for rp in rt.partitions {
                    try KafkaClientError.check(rp.errorCode, resource: "\(topic)-\(rp.partitionIndex)")
                    result[rp.partitionIndex] = v == 0 ? (rp.oldStyleOffsets.first ?? -1) : rp.offset
                }
            }
        }
        return result
    }

    /// DeleteRecords: moves each partition's log start offset to the given offset (records
    /// before it are gone); returns the new low watermarks.
    public func deleteRecords(topic: String, before offsets: [Int32: Int64]) async throws -> [Int32: Int64] {
        let t = try await cluster.metadata(for: topic)
        var byLeader: [Int32: [Int32: Int64]] = [:]
        for (p, o) in offsets {
            guard Int(p) < t.partitions.count else { throw KafkaClientError.broker(.unknownTopicOrPartition, resource: "\(topic)-\(p)", message: nil) }
            byLeader[t.partitions[Int(p)].leader, default: [:]][p] = o
        }
        var low: [Int32: Int64] = [:]
        for (leader, parts) in byLeader {
            var req = DeleteRecordsRequest()
            req.timeoutMs = 30000
            var dt = DeleteRecordsRequest.DeleteRecordsTopic()
            dt.name = topic
            dt.partitions = parts.map { p, o in
                var x = DeleteRecordsRequest.DeleteRecordsPartition()
                x.partitionIndex = p
                x.offset = o
                return x
            }
            req.topics = [dt]
            let resp = try await cluster.connection(to: leader).send(req)
            for rt in resp.topics {
                for rp in rt.partitions {
                    try KafkaClientError.check(rp.errorCode, resource: "\(topic)-\(rp.partitionIndex)")
                    low[rp.partitionIndex] = rp.lowWatermark
                }
            }
        }
        return low
    }

    // MARK: groups

    /// A consumer group as ListGroups reports it.
    public struct GroupListing: Sendable, Hashable {
        public var groupId: String
        public var protocolType: String
        public var state: String
    }

    /// Every group on every broker of the cluster, sorted by id.
    public func listGroups() async throws -> [GroupListing] {
        let md = try await cluster.refreshMetadata()
        var out: [GroupListing] = []
        for id in md.brokers.keys.sorted() {
            let resp = try await cluster.connection(to: id).send(ListGroupsRequest())
            try KafkaClientError.check(resp.errorCode, resource: "broker \(id)")
            out += resp.groups.map { GroupListing(groupId: $0.groupId, protocolType: $0.protocolType, state: $0.groupState) }
        }
        return out.sorted { $0.groupId < $1.groupId }
    }

    /// A member of a group, as DescribeGroups reports it.
    public struct GroupMember: Sendable, Hashable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var host: String
        /// Partitions assigned to the member (decoded from the consumer protocol assignment).
        public var assignment: [String: [Int32]]
    }

    /// A group's state (`Stable`, `Empty`, `PreparingRebalance`, …), protocol and members.
    public struct GroupDescription: Sendable {
        public var groupId: String
        public var state: String
        public var protocolType: String
        public var protocolName: String
        public var members: [GroupMember]
    }

    /// DescribeGroups at the group's coordinator.
    public func describeGroup(_ group: String) async throws -> GroupDescription {
        var req = DescribeGroupsRequest()
        req.groups = [group]
        let resp = try await cluster.coordinator(forGroup: group).send(req)
        guard let g = resp.groups.first else { throw KafkaClientError.protocolViolation("empty DescribeGroups response") }
        try KafkaClientError.check(g.errorCode, resource: "group \(group)")
        return GroupDescription(
            groupId: g.groupId, state: g.groupState, protocolType: g.protocolType, protocolName: g.protocolData,
            members: g.members.map {
                GroupMember(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, clientId: $0.clientId, host: $0.clientHost,
                            assignment: g.protocolType == "consumer" ? ConsumerAssignmentDecoder.partitions($0.memberAssignment) : [:])
            })
    }

    /// DeleteGroups: removes empty groups and their committed offsets. Throws
    /// `nonEmptyGroup` for a group that still has members.
    public func deleteGroups(_ groups: [String]) async throws {
        for g in groups {
            var req = DeleteGroupsRequest()
            req.groupsNames = [g]
            let resp = try await cluster.coordinator(forGroup: g).send(req)
            for r in resp.results { try KafkaClientError.check(r.errorCode, resource: "group \(r.groupId)") }
        }
    }

    /// Committed offsets of `group` (all partitions it has committed when `topics` is nil).
    public func groupOffsets(_ group: String, topics: [String]? = nil) async throws -> [String: [Int32: Int64]] {
        let conn = try await cluster.coordinator(forGroup: group)
        var req = OffsetFetchRequest()
        let v = try conn.version(for: .offsetFetch)
        var out: [String: [Int32: Int64]] = [:]
        var partitionsOf: [String: [Int32]] = [:]
        for n in topics ?? [] { partitionsOf[n] = try await cluster.metadata(for: n).partitions.map(\.id) }
        if v >= 8 {
            var g = OffsetFetchRequest.OffsetFetchRequestGroup()
            g.groupId = group
            g.topics = topics.map { names in
                names.map { n in
                    var t = OffsetFetchRequest.OffsetFetchRequestTopics()
                    t.name = n
                    t.partitionIndexes = partitionsOf[n] ?? []
                    return t
                }
            }
            req.groups = [g]
            let resp = try await conn.send(req, version: v)
            for rg in resp.groups {
                try KafkaClientError.check(rg.errorCode, resource: "group \(group)")
                for t in rg.topics {
                    for p in t.partitions where p.committedOffset >= 0 {
                        try KafkaClientError.check(p.errorCode, resource: "\(t.name)-\(p.partitionIndex)")
                        out[t.name, default: [:]][p.partitionIndex] = p.committedOffset
                    }
                }
            }
        } else {
            req.groupId = group
            req.topics = topics.map { names in
                names.map { n in
                    var t = OffsetFetchRequest.OffsetFetchRequestTopic()
                    t.name = n
                    t.partitionIndexes = partitionsOf[n] ?? []
                    return t
                }
            }
            let resp = try await conn.send(req, version: v)
            try KafkaClientError.check(resp.errorCode, resource: "group \(group)")
            for t in resp.topics {
                for p in t.partitions where p.committedOffset >= 0 {
                    out[t.name, default: [:]][p.partitionIndex] = p.committedOffset
                }
            }
        }
        return out
    }

    /// Lag per partition: log end offset minus committed offset, for every committed partition.
    public struct PartitionLag: Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        /// The group's committed offset; nil when it has committed none for this partition.
        public var committed: Int64?
        public var logEndOffset: Int64
        /// `logEndOffset - committed` (never negative); nil without a committed offset.
        public var lag: Int64? { committed.map { max(0, logEndOffset - $0) } }
    }

    /// Committed offset, log end offset and lag of every partition of `topics` (or of every
    /// topic the group committed), like kafka-consumer-groups --describe.
    public func groupLag(_ group: String, topics: [String]? = nil) async throws -> [PartitionLag] {
        let committed = try await groupOffsets(group, topics: topics)
        var out: [PartitionLag] = []
        for topic in Set((topics ?? []) + committed.keys).sorted() {
            let ends = try await listOffsets(topic: topic, spec: .latest)
            for (p, end) in ends.sorted(by: { $0.key < $1.key }) {
                out.append(PartitionLag(topic: topic, partition: p, committed: committed[topic]?[p], logEndOffset: end))
            }
        }
        return out
    }

    /// Sets a group's committed offsets (the group must have no active members, as in Kafka's tool).
    public func alterGroupOffsets(_ group: String, offsets: [String: [Int32: Int64]]) async throws {
        let conn = try await cluster.coordinator(forGroup: group)
        var req = OffsetCommitRequest()
        req.groupId = group
        req.generationIdOrMemberEpoch = -1
        req.memberId = ""
        req.topics = offsets.sorted { $0.key < $1.key }.map { topic, parts in
            var t = OffsetCommitRequest.OffsetCommitRequestTopic()
            t.name = topic
            t.partitions = parts.sorted { $0.key < $1.key }.map { p, o in
                var x = OffsetCommitRequest.OffsetCommitRequestPartition()
                x.partitionIndex = p
                x.committedOffset = o
                x.committedMetadata = ""
                return x
            }
            return t
        }
        let resp = try await conn.send(req)
        for t in resp.topics {
            for p in t.partitions { try KafkaClientError.check(p.errorCode, resource: "group \(group) \(t.name)-\(p.partitionIndex)") }
        }
    }

    /// The cluster id, controller and brokers.
    public struct ClusterDescription: Sendable {
        public var clusterId: String?
        public var controllerId: Int32
        public var brokers: [ClusterMetadata.Broker]
    }

    /// DescribeCluster where the broker supports it, else from metadata.
    public func describeCluster() async throws -> ClusterDescription {
        let conn = try await cluster.anyConnection()
        if conn.supports(.describeCluster) {
            let resp = try await conn.send(DescribeClusterRequest())
            try KafkaClientError.check(resp.errorCode, resource: "cluster", message: resp.errorMessage)
            return ClusterDescription(clusterId: resp.clusterId, controllerId: resp.controllerId, brokers: resp.brokers.map {
                .init(nodeId: $0.brokerId, address: BrokerAddress(host: $0.host, port: Int($0.port)), rack: $0.rack)
            })
        }
        let md = try await cluster.refreshMetadata()
        return ClusterDescription(clusterId: md.clusterId, controllerId: md.controllerId, brokers: md.brokers.values.sorted { $0.nodeId < $1.nodeId })
    }
}

/// Reads the partitions out of a "consumer" protocol assignment (version, [topic [partition]], user data).
enum ConsumerAssignmentDecoder {
    static func partitions(_ bytes: ByteBuffer) -> [String: [Int32]] {
        var b = bytes
        guard b.readableBytes >= 2, (try? b.readKafkaInt(Int16.self)) != nil else { return [:] }
        var out: [String: [Int32]] = [:]
        guard let n = try? b.readKafkaLength(compact: false, wide: true, field: "topics", minBytesPerElement: 2), n > 0 else { return [:] }
        for _ in 0..<n {
            guard let topic = try? b.readKafkaString(compact: false),
                  let pc = try? b.readKafkaLength(compact: false, wide: true, field: "partitions", minBytesPerElement: 4) else { return out }
            var parts: [Int32] = []
            for _ in 0..<max(pc, 0) {
                guard let p = try? b.readKafkaInt(Int32.self) else { return out }
                parts.append(p)
            }
            out[topic] = parts
        }
        return out
    }
}
