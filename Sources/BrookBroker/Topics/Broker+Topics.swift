import BrookProtocol
import Foundation
import Logging
import Metrics

// The topic helpers every handler shares: lookups, creation (CreateTopics and auto-creation by
// Metadata and Produce), and the partition count metric.
extension Broker {
    func partition(_ topic: String, _ p: Int32) -> PartitionState? {
        partitions.withLock { $0[TopicPartition(topic: topic, partition: p)] }
    }

    func topic(named name: String) -> TopicMetadata? {
        catalog.withLock { $0.topics[name] }
    }

    func topic(id: KafkaUUID) -> TopicMetadata? {
        catalog.withLock { c in c.topics.values.first { $0.id == id } }
    }

    /// After partitions were created or deleted.
    func recordPartitionCount() {
        metrics.partitions.record(partitions.withLock { $0.count })
    }

    func autoCreateTopic(_ name: String, _ ctx: RequestContext) throws -> TopicMetadata {
        let (meta, _) = try createTopic(name: name, partitions: config.defaultPartitions, configs: [:], validateOnly: false)
        ctx.logger.info("auto-created topic", metadata: [BrookLogKey.topic: "\(name)", BrookLogKey.partitionCount: "\(meta.partitions)"])
        return meta
    }

    /// Creates a topic (or only validates). Throws `TopicError` with Kafka's code and message.
    func createTopic(name: String, partitions: Int32, configs: [String: String?], validateOnly: Bool) throws(TopicError) -> (TopicMetadata, Bool) {
        if let msg = validateTopicName(name) { throw TopicError(.invalidTopicException, msg) }
        if name.hasPrefix("__") && name != Self.offsetsTopic { /* allowed, like Kafka, but not internal */ }
        guard partitions > 0 else { throw TopicError(.invalidPartitions, "Number of partitions must be larger than 0.") }
        guard partitions <= 100_000 else { throw TopicError(.invalidPartitions, "Number of partitions \(partitions) is too large") }
        var clean: [String: String] = [:]
        for (k, v) in configs {
            if let err = TopicConfigCatalog.validate(name: k, value: v) { throw TopicError(.invalidConfig, err) }
            if let v { clean[k] = v }
        }
        // Creation is serialized by the catalog lock so two creators can't both win.
        let result: Result<(TopicMetadata, Bool), TopicError> = catalog.withLock { cat in
            if let existing = cat.topics[name] {
                return .failure(TopicError(.topicAlreadyExists, "Topic '\(existing.name)' already exists."))
            }
            let meta = TopicMetadata(name: name, id: .random(), partitions: partitions, configs: clean)
            if validateOnly { return .success((meta, false)) }
            let lc = Self.logConfig(for: meta, brokerConfigs: cat.brokerConfigs, defaults: config.topicDefaults)
            do {
                var created: [TopicPartition: PartitionState] = [:]
                for p in 0..<partitions {
                    let tp = TopicPartition(topic: name, partition: p)
                    let log = try logs.openOrCreate(topic: name, partition: p, config: lc)
                    created[tp] = try PartitionState(tp: tp, log: log, stateDirectory: producerStateDirectory, logger: logger)
                }
                cat.topics[name] = meta
                try cat.save(to: catalogURL)
                self.partitions.withLock { $0.merge(created) { a, _ in a } }
            } catch {
                return .failure(TopicError(.kafkaStorageError, "could not create topic: \(error)"))
            }
            return .success((meta, true))
        }
        let created = try result.get()
        recordPartitionCount()
        return created
    }

    var producerStateDirectory: URL { config.dataDirectory.appendingPathComponent("producer-state") }
}

struct TopicError: Error {
    var code: ErrorCode
    var message: String
    init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}
