import BrookProtocol
import Logging

extension Broker {
    /// Replication factor and assignments may only name this node; see `createTopic` for the rest.
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
                    ctx.logger.info("created topic", metadata: [BrookLogKey.topic: "\(t.name)", BrookLogKey.partitionCount: "\(partitions)"])
                }
            } catch {
                res.errorCode = error.code.rawValue
                res.errorMessage = error.message
            }
            return res
        }
        return resp
    }
}
