import BrookProtocol
import Foundation
import Logging
import Metrics

extension Broker {
    func handleCreateTopics(_ r: CreateTopicsRequest, _ ctx: RequestContext) -> CreateTopicsResponse {
        var resp = CreateTopicsResponse()
        resp.topics = r.topics.map { t in
            var res = CreateTopicsResponse.CreatableTopicResult()
            res.name = t.name
            do throws(TopicError) {
                if t.replicationFactor != -1 && t.replicationFactor != 1 {
                    throw TopicError(.invalidReplicationFactor, "Replication factor: \(t.replicationFactor) larger than available brokers: 1.")
                }
                var partitions = t.numPartitions == -1 ? config.defaultPartitions : t.numPartitions
                if !t.assignments.isEmpty {
                    if t.numPartitions != -1 { throw TopicError(.invalidRequest, "Both numPartitions and replica assignments were set") }
                    for a in t.assignments where a.brokerIds != [config.nodeId] {
                        throw TopicError(.invalidReplicaAssignment, "Replica assignment for partition \(a.partitionIndex) names brokers other than \(config.nodeId)")
                    }
                    partitions = Int32(t.assignments.count)
                }
                var configs: [String: String?] = [:]
                for c in t.configs { configs[c.name] = c.value }
                let (meta, created) = try createTopic(name: t.name, partitions: partitions, configs: configs, validateOnly: r.validateOnly)
                res.topicId = created ? meta.id : .zero
                res.numPartitions = meta.partitions
                res.replicationFactor = 1
                res.configs = describeTopicConfigs(meta, keys: nil, synonyms: false, version: 0).map { c in
                    var cc = CreateTopicsResponse.CreatableTopicConfigs()
                    cc.name = c.name
                    cc.value = c.value
                    cc.readOnly = c.readOnly
                    cc.configSource = c.configSource
                    cc.isSensitive = false
                    return cc
                }
                if created {
                    ctx.logger.info("created topic", metadata: [LogKeys.topic: "\(t.name)", "partitions": "\(partitions)"])
                }
            } catch {
                res.errorCode = error.code.rawValue
                res.errorMessage = error.message
            }
            return res
        }
        return resp
    }

    func handleDeleteTopics(_ r: DeleteTopicsRequest, _ ctx: RequestContext) async -> DeleteTopicsResponse {
        var resp = DeleteTopicsResponse()
        var targets: [(name: String?, id: KafkaUUID)] = []
        if ctx.version >= 6 {
            targets = r.topics.map { ($0.name, $0.topicId) }
        } else {
            targets = r.topicNames.map { ($0, .zero) }
        }
        var results: [DeleteTopicsResponse.DeletableTopicResult] = []
        for target in targets {
            var res = DeleteTopicsResponse.DeletableTopicResult()
            res.name = target.name
            res.topicId = target.id
            let meta = target.name.flatMap { topic(named: $0) } ?? (target.id != .zero ? topic(id: target.id) : nil)
            guard let meta else {
                res.errorCode = (target.name == nil ? ErrorCode.unknownTopicId : ErrorCode.unknownTopicOrPartition).rawValue
                results.append(res)
                continue
            }
            res.name = meta.name
            res.topicId = meta.id
            if meta.isInternal {
                res.errorCode = ErrorCode.topicAuthorizationFailed.rawValue
                res.errorMessage = "internal topic \(meta.name) cannot be deleted"
                results.append(res)
                continue
            }
            let removed: [PartitionState] = catalog.withLock { cat in
                cat.topics[meta.name] = nil
                try? cat.save(to: catalogURL)
                return partitions.withLock { parts in
                    (0..<meta.partitions).compactMap { parts.removeValue(forKey: TopicPartition(topic: meta.name, partition: $0)) }
                }
            }
            for p in removed {
                do {
                    try logs.deleteLog(topic: p.tp.topic, partition: p.tp.partition)
                } catch {
                    ctx.logger.error("deleting partition files failed", metadata: [LogKeys.topic: "\(p.tp.topic)", LogKeys.partition: "\(p.tp.partition)", "error": "\(error)"])
                }
                p.deleteFiles()
            }
            await groups.removeOffsets(forTopic: meta.name)
            ctx.logger.info("deleted topic", metadata: [LogKeys.topic: "\(meta.name)"])
            results.append(res)
        }
        resp.responses = results
        Metrics.Gauge(label: "brook_broker_partitions").record(partitions.withLock { $0.count })
        return resp
    }

    func handleCreatePartitions(_ r: CreatePartitionsRequest, _ ctx: RequestContext) -> CreatePartitionsResponse {
        var resp = CreatePartitionsResponse()
        resp.results = r.topics.map { t in
            var res = CreatePartitionsResponse.CreatePartitionsTopicResult()
            res.name = t.name
            let outcome: Result<Void, TopicError> = catalog.withLock { cat in
                guard var meta = cat.topics[t.name] else {
                    return .failure(TopicError(.unknownTopicOrPartition, "Topic \(t.name) does not exist"))
                }
                if meta.isInternal { return .failure(TopicError(.invalidRequest, "Cannot add partitions to internal topic \(t.name)")) }
                guard t.count > meta.partitions else {
                    return .failure(TopicError(.invalidPartitions, "Topic currently has \(meta.partitions) partitions, which is higher than or equal to the requested \(t.count)."))
                }
                if let a = t.assignments, a.count != Int(t.count - meta.partitions) {
                    return .failure(TopicError(.invalidReplicaAssignment, "Increasing the number of partitions by \(t.count - meta.partitions) but \(a.count) assignments provided."))
                }
                if r.validateOnly { return .success(()) }
                let lc = Self.logConfig(for: meta, brokerConfigs: cat.brokerConfigs, defaults: config.topicDefaults)
                do {
                    var created: [TopicPartition: PartitionState] = [:]
                    for p in meta.partitions..<t.count {
                        let tp = TopicPartition(topic: t.name, partition: p)
                        let log = try logs.openOrCreate(topic: t.name, partition: p, config: lc)
                        created[tp] = try PartitionState(tp: tp, log: log, stateDirectory: producerStateDirectory, logger: logger)
                    }
                    meta.partitions = t.count
                    cat.topics[t.name] = meta
                    try cat.save(to: catalogURL)
                    partitions.withLock { $0.merge(created) { a, _ in a } }
                } catch {
                    return .failure(TopicError(.kafkaStorageError, "\(error)"))
                }
                return .success(())
            }
            if case .failure(let e) = outcome {
                res.errorCode = e.code.rawValue
                res.errorMessage = e.message
            } else if !r.validateOnly {
                ctx.logger.info("added partitions", metadata: [LogKeys.topic: "\(t.name)", "count": "\(t.count)"])
            }
            return res
        }
        Metrics.Gauge(label: "brook_broker_partitions").record(partitions.withLock { $0.count })
        return resp
    }

    func handleDeleteRecords(_ r: DeleteRecordsRequest, _ ctx: RequestContext) -> DeleteRecordsResponse {
        var resp = DeleteRecordsResponse()
        resp.topics = r.topics.map { t in
            var tr = DeleteRecordsResponse.DeleteRecordsTopicResult()
            tr.name = t.name
            tr.partitions = t.partitions.map { p in
                var pr = DeleteRecordsResponse.DeleteRecordsPartitionResult()
                pr.partitionIndex = p.partitionIndex
                guard let state = partition(t.name, p.partitionIndex), topic(named: t.name)?.isInternal == false else {
                    pr.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    pr.lowWatermark = -1
                    return pr
                }
                let target = p.offset == -1 ? state.highWatermark : p.offset
                guard target >= 0, target <= state.highWatermark else {
                    pr.errorCode = ErrorCode.offsetOutOfRange.rawValue
                    pr.lowWatermark = state.logStartOffset
                    return pr
                }
                do {
                    try state.log.deleteRecords(before: target)
                    pr.lowWatermark = state.logStartOffset
                } catch {
                    pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                    pr.lowWatermark = state.logStartOffset
                }
                return pr
            }
            return tr
        }
        return resp
    }

    func handleDescribeCluster(_ r: DescribeClusterRequest, _ ctx: RequestContext) -> DescribeClusterResponse {
        var resp = DescribeClusterResponse()
        resp.clusterId = config.clusterId
        resp.controllerId = config.nodeId
        resp.endpointType = r.endpointType
        var b = DescribeClusterResponse.DescribeClusterBroker()
        b.brokerId = config.nodeId
        b.host = advertisedHost
        b.port = advertisedPort
        resp.brokers = [b]
        return resp
    }

    func handleFindCoordinator(_ r: FindCoordinatorRequest, _ ctx: RequestContext) -> FindCoordinatorResponse {
        var resp = FindCoordinatorResponse()
        let supported = r.keyType == 0
        if ctx.version >= 4 {
            resp.coordinators = r.coordinatorKeys.map { key in
                var c = FindCoordinatorResponse.Coordinator()
                c.key = key
                if supported {
                    c.nodeId = config.nodeId
                    c.host = advertisedHost
                    c.port = advertisedPort
                } else {
                    c.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
                    c.errorMessage = "transactions are not supported"
                    c.nodeId = -1
                    c.port = -1
                }
                return c
            }
        } else if supported {
            resp.nodeId = config.nodeId
            resp.host = advertisedHost
            resp.port = advertisedPort
        } else {
            resp.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
            resp.errorMessage = "transactions are not supported"
            resp.nodeId = -1
            resp.port = -1
        }
        return resp
    }

    func handleInitProducerId(_ r: InitProducerIdRequest, _ ctx: RequestContext) -> InitProducerIdResponse {
        var resp = InitProducerIdResponse()
        if r.transactionalId != nil {
            resp.errorCode = ErrorCode.transactionalIdAuthorizationFailed.rawValue
            ctx.logger.warning("transactional producer refused: transactions are not supported")
            return resp
        }
        if r.producerId >= 0 && r.producerEpoch >= 0 && r.producerEpoch < Int16.max - 1 {
            // An idempotent producer bumping its epoch after a fatal-to-the-sequence error.
            resp.producerId = r.producerId
            resp.producerEpoch = r.producerEpoch + 1
            return resp
        }
        do {
            resp.producerId = try allocateProducerId()
            resp.producerEpoch = 0
        } catch {
            resp.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        return resp
    }

    func allocateProducerId() throws -> Int64 {
        let needBlock: Bool = producerIds.withLock { $0.next >= $0.limit }
        if needBlock {
            try catalog.withLock { cat in
                let start = cat.nextProducerIdBlock
                cat.nextProducerIdBlock = start + 1000
                try cat.save(to: catalogURL)
                producerIds.withLock { $0 = (start, start + 1000) }
            }
        }
        return producerIds.withLock { s in
            defer { s.next += 1 }
            return s.next
        }
    }
}
