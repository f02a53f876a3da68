import BrookProtocol
import Logging

extension Broker {
    /// Deferred: the groups' offsets of a deleted topic are dropped (tombstones written)
    /// before the answer.
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
                    ctx.logger.error("deleting partition files failed", metadata: [BrookLogKey.topic: "\(p.tp.topic)", BrookLogKey.partition: "\(p.tp.partition)", BrookLogKey.error: "\(error)"])
                }
                p.deleteFiles()
            }
            await groups.removeOffsets(forTopic: meta.name)
            ctx.logger.info("deleted topic", metadata: [BrookLogKey.topic: "\(meta.name)"])
            results.append(res)
        }
        resp.responses = results
        recordPartitionCount()
        return resp
    }
}
