import BrookProtocol

/// Picks the partition of each record (`partitioner.class`): an explicit partition as given,
/// keyed records by murmur2 of the key (hashed by the caller, outside the producer's lock) or
/// the custom function, keyless ones sticky (one partition until about `batch.size` bytes went
/// there, as KIP-480) or round robin.
///
/// Its per-topic state (the sticky partition, the round-robin cursor) lives in ``TopicState``
/// under the producer's lock.
struct Partitioner: Sendable {
    enum Kind: Sendable {
        case sticky
        case roundRobin
        case custom(@Sendable (ProducerRecord, Int32) -> Int32)
    }

    let kind: Kind
    /// Bytes after which a sticky partition is replaced.
    let batchSize: Int

    init(_ partitioner: ProducerConfiguration.Partitioner, batchSize: Int) {
        switch partitioner {
        case .default: kind = .sticky
        case .roundRobin: kind = .roundRobin
        case .custom(let f): kind = .custom(f)
        }
        self.batchSize = batchSize
    }

    /// The record's partition among `count` (> 0), and whether it is the sticky choice (then
    /// ``noteSticky(_:bytes:)`` must count the bytes appended).
    @inline(__always)
    func partition(for record: ProducerRecord, keyHash: Int32?, topic: TopicState,
                   count: Int32) -> Result<(id: Int32, sticky: Bool), KafkaClientError> {
        if let p = record.partition {
            guard p >= 0 && p < count else {
                return .failure(.broker(.unknownTopicOrPartition, resource: "\(record.topic)-\(p)",
                                        message: "the topic has \(count) partitions"))
            }
            return .success((p, false))
        }
        if let keyHash { return .success(((keyHash & 0x7fff_ffff) % count, false)) }
        switch kind {
        case .sticky:
            if topic.sticky < 0 || topic.sticky >= count {
                topic.sticky = pickSticky(topic, count: count, avoiding: -1)
                topic.stickyBytes = 0
            }
            return .success((topic.sticky, true))
        case .roundRobin:
            topic.roundRobin &+= 1
            let available = topic.available
            return .success((available.isEmpty ? Int32(topic.roundRobin % Int(count)) : available[topic.roundRobin % available.count], false))
        case .custom(let f):
            let p = f(record, count) % count
            return .success((p < 0 ? p + count : p, false))
        }
    }

    /// Counts bytes appended to the sticky partition; moves on after about `batch.size`.
    @inline(__always)
    func noteSticky(_ topic: TopicState, bytes: Int) {
        topic.stickyBytes += bytes
        if topic.stickyBytes >= batchSize {
            topic.sticky = pickSticky(topic, count: Int32(topic.partitions.count), avoiding: topic.sticky)
            topic.stickyBytes = 0
        }
    }

    /// A random partition with a leader (any if none has), other than `avoiding` when possible.
    private func pickSticky(_ topic: TopicState, count: Int32, avoiding: Int32) -> Int32 {
        let candidates = topic.available.isEmpty ? Array(0..<count) : topic.available
        if candidates.count == 1 { return candidates[0] }
        while true {
            let p = candidates.randomElement()!
            if p != avoiding { return p }
        }
    }
}
