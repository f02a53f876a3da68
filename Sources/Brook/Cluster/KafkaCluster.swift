import BrookProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The client's view of a Kafka cluster: bootstrap, the metadata cache, and one connection per
/// broker, reconnected with exponential backoff. Shared by producers, consumers and admin.
public actor KafkaCluster {
    public nonisolated let config: ClientConfiguration
    nonisolated let logger: Logger
    let group: any EventLoopGroup
    private var connections: [Int32: BrokerConnection] = [:]
    private var connecting: [Int32: Task<BrokerConnection, any Error>] = [:]
    private var bootstrapConnection: BrokerConnection?
    private var failures: [Int32: (count: Int, until: ContinuousClock.Instant)] = [:]
    private(set) public var metadata = ClusterMetadata()
    private var lastRefresh: ContinuousClock.Instant?
    private var knownTopics: Set<String> = []
    private var closed = false

    public init(config: ClientConfiguration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "brook.client")) {
        self.config = config
        self.group = eventLoopGroup
        self.logger = logger
    }

    /// Any live connection: to a known broker, else to a bootstrap server (tried in turn).
    public func anyConnection() async throws -> BrokerConnection {
        if closed { throw KafkaClientError.shutdown }
        if let c = connections.values.first(where: { $0.isActive }) { return c }
        if let b = bootstrapConnection, b.isActive { return b }
        var errors: [String] = []
        for addr in config.bootstrapServers.shuffled() {
            do {
                let c = try await BrokerConnection.connect(to: addr, config: config, eventLoopGroup: group, logger: logger)
                bootstrapConnection = c
                return c
            } catch let e as KafkaClientError where e.code == .unreachable {
                errors.append(e.message ?? "")
            } catch {
                errors.append("\(addr): \(error)")
            }
        }
        for (id, b) in metadata.brokers where connections[id] == nil {
            if let c = try? await connection(to: id) { _ = b; return c }
        }
        throw KafkaClientError.unreachable(errors.joined(separator: "; "))
    }

    /// The connection to broker `nodeId`, opening it if needed (honouring reconnect backoff).
    public func connection(to nodeId: Int32) async throws -> BrokerConnection {
        if closed { throw KafkaClientError.shutdown }
        if let c = connections[nodeId], c.isActive { return c }
        connections[nodeId] = nil
        if let t = connecting[nodeId] { return try await t.value }
        if metadata.brokers[nodeId] == nil { try await refreshMetadata() }
        guard let broker = metadata.brokers[nodeId] else {
            throw KafkaClientError.broker(.brokerNotAvailable, resource: "broker \(nodeId)", message: "not in cluster metadata")
        }
        if let f = failures[nodeId], ContinuousClock.now < f.until {
            try await Task.sleep(until: f.until)
        }
        let config = self.config
        let group = self.group
        let logger = self.logger
        let task = Task { try await BrokerConnection.connect(to: broker.address, nodeId: nodeId, config: config, eventLoopGroup: group, logger: logger) }
        connecting[nodeId] = task
        defer { connecting[nodeId] = nil }
        do {
            let c = try await task.value
            connections[nodeId] = c
            failures[nodeId] = nil
            return c
        } catch {
            let count = (failures[nodeId]?.count ?? 0) + 1
            failures[nodeId] = (count, ContinuousClock.now + backoff(attempt: count))
            throw error
        }
    }

    /// Exponential backoff with ±20% jitter between reconnect.backoff.ms and its max.
    nonisolated func backoff(attempt: Int) -> Duration {
        let base = config.reconnectBackoff * (1 << min(attempt - 1, 16))
        let capped = min(base, config.reconnectBackoffMax)
        return capped * Double.random(in: 0.8...1.2)
    }

    /// Metadata for `topics` (nil: every topic the client has asked about, or all when none).
    @discardableResult
    public func refreshMetadata(topics: [String]? = nil, allowAutoCreate: Bool = false) async throws -> ClusterMetadata {
        if let topics { knownTopics.formUnion(topics) }
        let wanted = topics ?? (knownTopics.isEmpty ? nil : Array(knownTopics))
        var lastError: (any Error)?
        for attempt in 0..<3 {
            do {
                let conn = try await anyConnection()
                var req = MetadataRequest()
                req.topics = wanted.map { names in
                    names.map { n in
                        var t = MetadataRequest.MetadataRequestTopic()
                        t.name = n
                        return t
                    }
                }
                req.allowAutoTopicCreation = allowAutoCreate
                let version = try conn.version(for: .metadata)
                if version == 0 && wanted == nil { req.topics = [] }
                let resp = try await conn.send(req)
                let fresh = ClusterMetadata(resp)
                metadata.merge(fresh, fullRefresh: wanted == nil)
                lastRefresh = .now
                // Forget connections to brokers that left the cluster.
                for id in connections.keys where metadata.brokers[id] == nil {
                    connections[id]?.close()
                    connections[id] = nil
                }
                return metadata
            } catch {
                lastError = error
                bootstrapConnection = nil
                if attempt < 2 { try await Task.sleep(for: config.retryBackoff * (attempt + 1)) }
            }
        }
        throw lastError ?? KafkaClientError.unreachable("metadata")
    }

    /// Cached metadata, refreshed when older than metadata.max.age.ms or missing `topic`.
    public func metadata(for topic: String, allowAutoCreate: Bool = false) async throws -> ClusterMetadata.Topic {
        if let t = metadata.topics[topic], t.error == .none, !t.partitions.isEmpty,
           let last = lastRefresh, ContinuousClock.now - last < config.metadataMaxAge {
            return t
        }
        try await refreshMetadata(topics: [topic], allowAutoCreate: allowAutoCreate)
        guard let t = metadata.topics[topic] else {
            throw KafkaClientError.broker(.unknownTopicOrPartition, resource: "topic \(topic)", message: nil)
        }
        if t.error != .none { throw KafkaClientError.broker(t.error, resource: "topic \(topic)", message: nil) }
        return t
    }

    /// Marks the cached metadata stale (after NOT_LEADER_OR_FOLLOWER and friends).
    public func invalidate() {
        lastRefresh = nil
    }

    /// Whether the cached metadata was marked stale (or never fetched): leaders read from it
    /// may be gone.
    public var isStale: Bool { lastRefresh == nil }

    /// Drops a connection that failed so the next use reconnects.
    public func connectionFailed(_ nodeId: Int32) {
        connections[nodeId]?.close()
        connections[nodeId] = nil
    }

    /// The coordinator of `key` (a group id): FindCoordinator, retried while it is loading.
    public func coordinator(forGroup group: String) async throws -> BrokerConnection {
        var lastError: (any Error)?
        for attempt in 0..<20 {
            do {
                let conn = try await anyConnection()
                var req = FindCoordinatorRequest()
                req.key = group
                req.coordinatorKeys = [group]
                req.keyType = 0
                let v = try conn.version(for: .findCoordinator)
                let resp = try await conn.send(req, version: v)
                let (code, nodeId, host, port, message): (Int16, Int32, String, Int32, String?) = v >= 4
                    ? (resp.coordinators.first?.errorCode ?? -1, resp.coordinators.first?.nodeId ?? -1,
                       resp.coordinators.first?.host ?? "", resp.coordinators.first?.port ?? -1, resp.coordinators.first?.errorMessage)
                    : (resp.errorCode, resp.nodeId, resp.host, resp.port, resp.errorMessage)
                try KafkaClientError.check(code, resource: "group \(group)", message: message)
                if metadata.brokers[nodeId] == nil {
                    metadata.brokers[nodeId] = .init(nodeId: nodeId, address: BrokerAddress(host: host, port: Int(port)), rack: nil)
                }
                return try await connection(to: nodeId)
            } catch let e as KafkaClientError where e.isRetriable {
                lastError = e
                try await Task.sleep(for: config.retryBackoff * min(attempt + 1, 10))
            }
        }
        throw lastError ?? KafkaClientError.unreachable("coordinator for \(group)")
    }

    public func close() {
        closed = true
        for c in connections.values { c.close() }
        bootstrapConnection?.close()
        connections.removeAll()
    }
}
