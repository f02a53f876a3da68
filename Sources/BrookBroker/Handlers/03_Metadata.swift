import BrookProtocol

extension Broker {
    func handleMetadata(_ r: MetadataRequest, _ ctx: RequestContext) -> MetadataResponse {
        var resp = MetadataResponse()
        var broker = MetadataResponse.MetadataResponseBroker()
        broker.nodeId = config.nodeId
        broker.host = advertisedHost
        broker.port = advertisedPort
        resp.brokers = [broker]
        resp.clusterId = config.clusterId
        resp.controllerId = config.nodeId
        // v0: an empty list means all topics; v1+: null means all.
        let wantsAll = r.topics == nil || (ctx.version == 0 && r.topics?.isEmpty == true)
        var topics: [MetadataResponse.MetadataResponseTopic] = []
        if wantsAll {
            let all = catalog.withLock { Array($0.topics.values) }.sorted { $0.name < $1.name }
            topics = all.map { describeTopic($0) }
        } else {
            let allowAuto = ctx.version < 4 || r.allowAutoTopicCreation
            for t in r.topics ?? [] {
                var meta: TopicMetadata?
                var name = t.name
                if let n = t.name {
                    meta = topic(named: n)
                    if meta == nil && allowAuto && config.autoCreateTopics && validateTopicName(n) == nil {
                        meta = try? autoCreateTopic(n, ctx)
                    }
                } else if t.topicId != .zero {
                    meta = topic(id: t.topicId)
                    name = meta?.name
                }
                if let meta {
                    topics.append(describeTopic(meta))
                } else {
                    var m = MetadataResponse.MetadataResponseTopic()
                    m.name = name
                    m.topicId = t.topicId
                    if let n = name, validateTopicName(n) != nil {
                        m.errorCode = ErrorCode.invalidTopicException.rawValue
                    } else {
                        m.errorCode = (name == nil ? ErrorCode.unknownTopicId : ErrorCode.unknownTopicOrPartition).rawValue
                    }
                    topics.append(m)
                }
            }
        }
        resp.topics = topics
        return resp
    }

    func describeTopic(_ t: TopicMetadata) -> MetadataResponse.MetadataResponseTopic {
        var m = MetadataResponse.MetadataResponseTopic()
        m.name = t.name
        m.topicId = t.id
        m.isInternal = t.isInternal
        m.partitions = (0..<t.partitions).map { p in
            var pm = MetadataResponse.MetadataResponsePartition()
            pm.partitionIndex = p
            pm.leaderId = config.nodeId
            pm.leaderEpoch = 0
            pm.replicaNodes = [config.nodeId]
            pm.isrNodes = [config.nodeId]
            return pm
        }
        return m
    }
}
