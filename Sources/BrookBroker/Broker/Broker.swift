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
    let metrics: BrokerMetrics

    public static let offsetsTopic = "__consumer_offsets"

    public init(config: BrokerConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        metrics = BrokerMetrics()
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
                initialRebalanceDelayMs: config.groupInitialRebalanceDelay.milliseconds,
                minSessionTimeoutMs: Int32(clamping: config.groupMinSessionTimeout.milliseconds),
                maxSessionTimeoutMs: Int32(clamping: config.groupMaxSessionTimeout.milliseconds),
                offsetsRetentionMs: config.offsetsRetention.milliseconds),
            logger: logger)
        metrics.partitions.record(parts.count)
    }

    /// Loads group state and starts the background work (retention, group timers).
    public func start() async throws {
        try await groups.load()
        let retention = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: config.retentionCheckInterval)
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
            logger.error("closing logs failed", metadata: [BrookLogKey.error: "\(error)"])
        }
        try? await committer.shutdown()
        logger.info("broker stopped", metadata: [BrookLogKey.partitionCount: "\(all.count)"])
    }

    func setListeningPort(_ port: Int) {
        listeningPort.withLock { $0 = port }
    }

    var advertisedHost: String {
        config.advertisedHost ?? (config.host == "0.0.0.0" ? "127.0.0.1" : config.host)
    }

    var advertisedPort: Int32 { Int32(listeningPort.withLock { $0 }) }

    func runRetention() {
        let (result, failures) = logs.runMaintenance(now: currentTimeMillis())
        for (tp, error) in failures {
            logger.warning("log maintenance failed", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(error)"])
        }
        if result.deletedSegments > 0 {
            logger.info("retention deleted segments", metadata: [BrookLogKey.segments: "\(result.deletedSegments)", BrookLogKey.bytes: "\(result.deletedBytes)"])
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
                var r = supportedApiVersions()
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
        metrics.requests[api]?.increment()
        let ctx = RequestContext(header: header, api: api, connection: connection)
        return await dispatch(request, ctx)
    }

    func frameResponse<R: KafkaResponseMessage>(_ r: R, version: Int16, correlationId: Int32) -> ByteBuffer {
        var buf = ByteBufferAllocator().buffer(capacity: 128)
        buf.writeInteger(Int32(0))
        ResponseHeader(correlationId: correlationId).encode(into: &buf, headerVersion: R.apiKey.responseHeaderVersion(version))
        r.encode(into: &buf, version: version)
        buf.setInteger(Int32(buf.readableBytes - 4), at: buf.readerIndex)
        metrics.bytesOut.increment(by: Int64(buf.readableBytes))
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

    /// One case per API key, in key order; each handler lives in `Handlers/NN_ApiName.swift`.
    /// Handlers that answer at once are wrapped in `respond`; those that wait (durability,
    /// long polls, rebalances) return a deferred outcome or are run by `later`.
    private func dispatch(_ request: AnyRequest, _ ctx: RequestContext) async -> RequestOutcome {
        switch request {
        case .produce(let r): // 0
            return handleProduce(r, ctx)
        case .fetch(let r): // 1
            return handleFetch(r, ctx)
        case .listOffsets(let r): // 2
            return respond(handleListOffsets(r, ctx), ctx)
        case .metadata(let r): // 3
            return respond(handleMetadata(r, ctx), ctx)
        case .offsetCommit(let r): // 8
            return later(ctx) { await self.handleOffsetCommit(r, ctx) }
        case .offsetFetch(let r): // 9
            return respond(handleOffsetFetch(r, ctx), ctx)
        case .findCoordinator(let r): // 10
            return respond(handleFindCoordinator(r, ctx), ctx)
        case .joinGroup(let r): // 11
            return later(ctx) { await self.handleJoinGroup(r, ctx) }
        case .heartbeat(let r): // 12
            return respond(handleHeartbeat(r, ctx), ctx)
        case .leaveGroup(let r): // 13
            return later(ctx) { await self.handleLeaveGroup(r, ctx) }
        case .syncGroup(let r): // 14
            return later(ctx) { await self.handleSyncGroup(r, ctx) }
        case .describeGroups(let r): // 15
            return respond(handleDescribeGroups(r, ctx), ctx)
        case .listGroups(let r): // 16
            return respond(handleListGroups(r, ctx), ctx)
        case .saslHandshake(let r): // 17
            return respond(handleSaslHandshake(r, ctx), ctx)
        case .apiVersions(let r): // 18
            return respond(handleApiVersions(r, ctx), ctx)
        case .createTopics(let r): // 19
            return respond(handleCreateTopics(r, ctx), ctx)
        case .deleteTopics(let r): // 20
            return later(ctx) { await self.handleDeleteTopics(r, ctx) }
        case .deleteRecords(let r): // 21
            return respond(handleDeleteRecords(r, ctx), ctx)
        case .initProducerId(let r): // 22
            return respond(handleInitProducerId(r, ctx), ctx)
        case .describeConfigs(let r): // 32
            return respond(handleDescribeConfigs(r, ctx), ctx)
        case .alterConfigs(let r): // 33
            return respond(handleAlterConfigs(r, ctx), ctx)
        case .saslAuthenticate(let r): // 36
            return respond(handleSaslAuthenticate(r, ctx), ctx)
        case .createPartitions(let r): // 37
            return respond(handleCreatePartitions(r, ctx), ctx)
        case .deleteGroups(let r): // 42
            return later(ctx) { await self.handleDeleteGroups(r, ctx) }
        case .incrementalAlterConfigs(let r): // 44
            return respond(handleIncrementalAlterConfigs(r, ctx), ctx)
        case .offsetDelete(let r): // 47
            return later(ctx) { await self.handleOffsetDelete(r, ctx) }
        case .describeCluster(let r): // 60
            return respond(handleDescribeCluster(r, ctx), ctx)
        }
    }
}

func elapsedNanos(since start: ContinuousClock.Instant) -> Int64 {
    let d = ContinuousClock.now - start
    return d.nanoseconds
}
