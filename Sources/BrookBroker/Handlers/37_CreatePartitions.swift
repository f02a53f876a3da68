import BrookProtocol
import Logging

extension Broker {
    /// Partitions are only added; the catalogue lock serializes this with topic creation.
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
                ctx.logger.info("added partitions", metadata: [BrookLogKey.topic: "\(t.name)", BrookLogKey.count: "\(t.count)"])
            }
            return res
        }
        recordPartitionCount()
        return resp
    }
}
