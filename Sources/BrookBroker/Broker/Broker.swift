import BrookProtocol
import Foundation
import Logging
import Metrics
import NIOCore
import Synchronization

/// The embedded single-node broker: topics, partitions, producers and groups, answering Kafka
/// requests. `BrokerServer` feeds it frames; tests can also call `handle(frame:connection:)`.
public final class Broker: Sendable {
    public let config: BrokerConfig
    let logger: Logger
    let catalog: Mutex<CatalogFile>
    let catalogURL: URL
    let partitions: Mutex<[TopicPartition: PartitionState]>
    let logs: LogManager
    let committer: GroupCommitter
    let producerIds: Mutex<(next: Int64, limit: Int64)>
    let listeningPort: Mutex<Int>
    let groups: GroupCoordinator
    let background = Mutex<[Task<Void, Never>]>([])
    /// Made once: creating a metric looks it up in the registry under a lock.
    let requestCounters: [APIKey: Metrics.Counter] = Dictionary(
        uniqueKeysWithValues: APIKey.allCases.map { ($0, Metrics.Counter(label: "brook_broker_requests_total", dimensions: [("api", $0.name)])) })
    let bytesOutCounter = Metrics.Counter(label: "brook_broker_bytes_out_total")

    public static let offsetsTopic = "__consumer_offsets"

    public init(config: BrokerConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        try FileManager.default.createDirectory(at: config.dataDirectory, withIntermediateDirectories: true)
        catalogURL = config.dataDirectory.appendingPathComponent("catalog.json")
        var cat = try CatalogFile.load(from: catalogURL)
        logs = try LogManager(directory: config.dataDirectory.appendingPathComponent("logs"), logger: logger)
        committer = GroupCommitter()
        // Producer ids are handed out from a persisted block so a restart never reuses one.
        let start = cat.nextProducerIdBlock
        cat.nextProducerIdBlock = start + 1000
        try cat.save(to: catalogURL)
        producerIds = Mutex((start, start + 1000))
        listeningPort = Mutex(config.port)
        var parts: [TopicPartition: PartitionState] = [:]
        if cat.topics[Self.offsetsTopic] == nil {
            cat.topics[Self.offsetsTopic] = TopicMetadata(
                name: Self.offsetsTopic, id: .random(), partitions: 1,
                configs: ["cleanup.policy": "compact", "segment.bytes": "104857600"], isInternal: true)
            try cat.save(to: catalogURL)
        }
        catalog = Mutex(cat)
        let stateDir = config.dataDirectory.appendingPathComponent("producer-state")
        try FileManager.default.createDirectory(at: stateDir, withIntermediateDirectories: true)
        for (_, topic) in cat.topics {
            let logConfig = Self.logConfig(for: topic, brokerConfigs: cat.brokerConfigs, defaults: config.topicDefaults)
            for p in 0..<topic.partitions {
                let tp = TopicPartition(topic: topic.name, partition: p)
                let log = try logs.openOrCreate(topic: topic.name, partition: p, config: logConfig)
                parts[tp] = try PartitionState(tp: tp, log: log, stateDirectory: stateDir, logger: logger)
            }
        }
        partitions = Mutex(parts)
        let offsetsPartition = parts[TopicPartition(topic: Self.offsetsTopic, partition: 0)]!
        groups = GroupCoordinator(
            offsetsLog: BrokerOffsetsLog(partition: offsetsPartition, committer: committer, policy: config.flushPolicy),
            config: GroupCoordinatorConfig(
                initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
                minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
                maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
                offsetsRetentionMs: config.offsetsRetentionMs),
            logger: logger)
        Metrics.Gauge(label: "brook_broker_partitions").record(parts.count)
    }

    /// Loads group state and starts the background work (retention, group timers).
    public func start() async throws {
        try await groups.load()
        let retention = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(config.retentionCheckIntervalMs))
                if Task.isCancelled { break }
                self.runRetention()
            }
        }
        let groupLoop = Task { [groups] in await groups.run() }
        background.withLock { $0 = [retention, groupLoop] }
    }

    /// Flushes every log and writes producer-state snapshots so the next start is quick.
    public func shutdown() async {
        for t in background.withLock({ $0 }) { t.cancel() }
        groups.shutdown()
        let all = partitions.withLock { Array($0.values) }
        for p in all {
            p.closeForShutdown()
        }
        do {
            try logs.close()
        } catch {
            logger.error("closing logs failed", metadata: ["error": "\(error)"])
        }
        try? await committer.shutdown()
        logger.info("broker stopped", metadata: ["partitions": "\(all.count)"])
    }

    func setListeningPort(_ port: Int) {
        listeningPort.withLock { $0 = port }
    }

    var advertisedHost: String {
        config.advertisedHost ?? (config.host == "0.0.0.0" ? "127.0.0.1" : config.host)
    }

    var advertisedPort: Int32 { Int32(listeningPort.withLock { $0 }) }

    func partition(_ topic: String, _ p: Int32) -> PartitionState? {
        partitions.withLock { $0[TopicPartition(topic: topic, partition: p)] }
    }

    func topic(named name: String) -> TopicMetadata? {
        catalog.withLock { $0.topics[name] }
    }

    func topic(id: KafkaUUID) -> TopicMetadata? {
        catalog.withLock { c in c.topics.values.first { $0.id == id } }
    }

    func runRetention() {
        let (result, failures) = logs.runMaintenance(now: nowMs())
        for (tp, error) in failures {
            logger.warning("log maintenance failed", metadata: [LogKeys.topic: "\(tp.topic)", LogKeys.partition: "\(tp.partition)", "error": "\(error)"])
        }
        if result.deletedSegments > 0 {
            logger.info("retention deleted segments", metadata: ["segments": "\(result.deletedSegments)", "bytes": "\(result.deletedBytes)"])
        }
        for p in partitions.withLock({ Array($0.values) }) {
            p.saveProducerSnapshot()
        }
    }

    // MARK: request dispatch

    /// Decodes one frame and answers it. Never throws: malformed input closes the connection.
    public func handle(frame: ByteBuffer, connection: Connection) async -> RequestOutcome {
        var buf = frame
        let header: RequestHeader
        do {
            header = try RequestHeader.decode(from: &buf)
        } catch {
            return .close("malformed request header: \(error)")
        }
        guard let api = APIKey(rawValue: header.apiKey) else {
            return .close("unknown API key \(header.apiKey)")
        }
        guard api.versions.contains(header.apiVersion) else {
            if api == .apiVersions {
                // Answer v0 with our ranges so the client can retry with a version we support.
                var r = apiVersionsResponse()
                r.errorCode = ErrorCode.unsupportedVersion.rawValue
                return .respond(frameResponse(r, version: 0, correlationId: header.correlationId))
            }
            return .close("unsupported version \(header.apiVersion) of \(api.name) (supported \(api.versions))")
        }
        let request: AnyRequest
        do {
            request = try AnyRequest.decode(apiKey: api, version: header.apiVersion, from: &buf)
        } catch {
            return .close("malformed \(api.name) v\(header.apiVersion) request: \(error)")
        }
        requestCounters[api]?.increment()
        let ctx = RequestContext(header: header, api: api, connection: connection)
        return await dispatch(request, ctx)
    }

    func frameResponse<R: KafkaResponseMessage>(_ r: R, version: Int16, correlationId: Int32) -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 128)
        buf.writeInteger(Int32(0))
        ResponseHeader(correlationId: correlationId).encode(into: &buf, headerVersion: R.apiKey.responseHeaderVersion(version))
        r.encode(into: &buf, version: version)
        buf.setInteger(Int32(buf.readableBytes - 4), at: buf.readerIndex)
        bytesOutCounter.increment(by: Int64(buf.readableBytes))
        return buf
    }

    func respond<R: KafkaResponseMessage>(_ r: R, _ ctx: RequestContext) -> RequestOutcome {
        .respond(frameResponse(r, version: ctx.version, correlationId: ctx.header.correlationId))
    }

    func later<R: KafkaResponseMessage>(_ ctx: RequestContext, _ work: @escaping @Sendable () async -> R) -> RequestOutcome {
        .deferred { [self] in
            let r = await work()
            return self.frameResponse(r, version: ctx.version, correlationId: ctx.header.correlationId)
        }
    }

    private func dispatch(_ request: AnyRequest, _ ctx: RequestContext) async -> RequestOutcome {
        switch request {
        case .apiVersions:
            return respond(apiVersionsResponse(), ctx)
        case .metadata(let r):
            return respond(handleMetadata(r, ctx), ctx)
        case .produce(let r):
            return handleProduce(r, ctx)
        case .fetch(let r):
            return handleFetch(r, ctx)
        case .listOffsets(let r):
            return respond(handleListOffsets(r, ctx), ctx)
        case .createTopics(let r):
            return respond(handleCreateTopics(r, ctx), ctx)
        case .deleteTopics(let r):
            return later(ctx) { await self.handleDeleteTopics(r, ctx) }
        case .createPartitions(let r):
            return respond(handleCreatePartitions(r, ctx), ctx)
        case .describeConfigs(let r):
            return respond(handleDescribeConfigs(r, ctx), ctx)
        case .alterConfigs(let r):
            return respond(handleAlterConfigs(r, ctx), ctx)
        case .incrementalAlterConfigs(let r):
            return respond(handleIncrementalAlterConfigs(r, ctx), ctx)
        case .deleteRecords(let r):
            return respond(handleDeleteRecords(r, ctx), ctx)
        case .describeCluster(let r):
            return respond(handleDescribeCluster(r, ctx), ctx)
        case .initProducerId(let r):
            return respond(handleInitProducerId(r, ctx), ctx)
        case .findCoordinator(let r):
            return respond(handleFindCoordinator(r, ctx), ctx)
        case .joinGroup(let r):
            let clientId = ctx.header.clientId ?? ""
            let host = ctx.connection.clientHost
            return later(ctx) { await self.groups.joinGroup(r, version: ctx.version, clientId: clientId, clientHost: host) }
        case .syncGroup(let r):
            return later(ctx) { await self.groups.syncGroup(r, version: ctx.version) }
        case .heartbeat(let r):
            return respond(groups.heartbeat(r, version: ctx.version), ctx)
        case .leaveGroup(let r):
            return later(ctx) { await self.groups.leaveGroup(r, version: ctx.version) }
        case .offsetCommit(let r):
            return later(ctx) { await self.groups.commitOffsets(r, version: ctx.version) }
        case .offsetFetch(let r):
            return respond(groups.fetchOffsets(r, version: ctx.version), ctx)
        case .listGroups(let r):
            return respond(groups.listGroups(r, version: ctx.version), ctx)
        case .describeGroups(let r):
            return respond(groups.describeGroups(r, version: ctx.version), ctx)
        case .deleteGroups(let r):
            return later(ctx) { await self.groups.deleteGroups(r, version: ctx.version) }
        case .offsetDelete(let r):
            return later(ctx) { await self.groups.deleteOffsets(r, version: ctx.version) }
        case .saslHandshake:
            var r = SaslHandshakeResponse()
            r.errorCode = ErrorCode.unsupportedSaslMechanism.rawValue
            r.mechanisms = []
            return respond(r, ctx)
        case .saslAuthenticate:
            var r = SaslAuthenticateResponse()
            r.errorCode = ErrorCode.illegalSaslState.rawValue
            r.errorMessage = "SASL is not enabled on this listener"
            return respond(r, ctx)
        }
    }
}

/// One request's header and connection, passed to handlers.
struct RequestContext: Sendable {
    let header: RequestHeader
    let api: APIKey
    let connection: Connection
    var version: Int16 { header.apiVersion }
    var logger: Logger {
        var l = connection.logger
        l[metadataKey: LogKeys.clientId] = "\(header.clientId ?? "")"
        l[metadataKey: LogKeys.api] = "\(api.name)"
        return l
    }
}

func nowMs() -> Int64 {
    currentTimeMillis()
}

func elapsedNanos(since start: ContinuousClock.Instant) -> Int64 {
    let d = ContinuousClock.now - start
    return d.nanoseconds
}
