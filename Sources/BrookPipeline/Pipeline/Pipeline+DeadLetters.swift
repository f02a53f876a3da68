import Brook
import BrookProtocol
import Logging
import NIOCore

/// Dead-lettering, parking and releasing keys: every write is acknowledged before the record
/// counts as finished, so the offset that caused it is never committed ahead of it.
extension Pipeline {
    /// Dead-letters a failed record and quarantines its key; a record whose key is already
    /// quarantined (by an earlier one) is parked instead.
    func deadLetterOrPark(_ item: PipelineItem<Value>, error: RecordError, attempts: Int, tp: TopicPartition, epoch: UInt64) async -> Bool {
        if configuration.deadLetter.quarantine, case .park(let entry) = quarantine.decide(item.record) {
            return await park(item, entry, tp: tp, epoch: epoch)
        }
        let ok = await persist(tp: tp, epoch: epoch) { producer, writer in
            try await writer.send(item.record, errorType: error.type, message: error.message, attempts: attempts, reason: .failed)
            if self.configuration.deadLetter.quarantine, let key = item.record.key {
                let entry = QuarantineEntry(
                    partition: item.record.partition, lastOffset: item.offset, errorType: error.type,
                    blockedRun: ReplayMarker(item.record.headers)?.runId)
                try await self.quarantine.set(topic: item.record.topic, key: key, entry, producer: producer)
            }
        }
        if ok {
            state.withLock { $0.deadLettered += 1 }
            metrics.topic(tp.topic).deadLetters.increment()
            logger.warning("record dead-lettered", metadata: recordMetadata(item.record, error, attempt: attempts))
        }
        return ok
    }

    /// Parks a record behind its quarantined key: to the DLT marked `parked`, and the key's
    /// entry moves to this record (it must be replayed before the key is released).
    func park(_ item: PipelineItem<Value>, _ entry: QuarantineEntry, tp: TopicPartition, epoch: UInt64) async -> Bool {
        let ok = await persist(tp: tp, epoch: epoch) { producer, writer in
            try await writer.send(
                item.record, errorType: entry.errorType,
                message: "parked behind \(item.record.topic)-\(entry.partition)@\(entry.lastOffset)", attempts: 0, reason: .parked)
            var next = entry
            next.lastOffset = item.offset
            if let run = ReplayMarker(item.record.headers)?.runId, entry.blockedRun == nil { next.blockedRun = run }
            try await self.quarantine.set(topic: item.record.topic, key: item.record.key!, next, producer: producer)
        }
        if ok {
            state.withLock { $0.parked += 1 }
            metrics.topic(tp.topic).parked.increment()
            logger.info("record parked behind its quarantined key", metadata: BrookLogKey.metadata(item.record))
        }
        return ok
    }

    /// Releases the keys whose last dead-lettered record has just been applied as a replay.
    func releaseReplayedKeys(_ applied: [PipelineItem<Value>], tp: TopicPartition, epoch: UInt64) async -> Bool {
        guard configuration.deadLetter.quarantine else { return true }
        for item in applied {
            guard let marker = ReplayMarker(item.record.headers), let key = item.record.key,
                let entry = quarantine.entry(topic: item.record.topic, key: key),
                entry.partition == marker.ofPartition, entry.lastOffset == marker.ofOffset
            else { continue }
            let ok = await persist(tp: tp, epoch: epoch) { producer, _ in
                try await self.quarantine.set(topic: item.record.topic, key: key, nil, producer: producer)
            }
            guard ok else { return false }
            logger.info("quarantine released after replay", metadata: BrookLogKey.metadata(item.record))
        }
        return true
    }

    /// Runs a DLT/quarantine write, retrying with backoff while the partition is still ours.
    func persist(tp: TopicPartition, epoch: UInt64, _ write: (KafkaProducer, DeadLetterWriter) async throws -> Void) async -> Bool {
        guard let producer = clients.withLock({ $0?.producer }) else { return false }
        let writer = DeadLetterWriter(producer: producer, suffix: configuration.deadLetter.topicSuffix, group: configuration.group)
        var attempt = 0
        while true {
            do {
                try await write(producer, writer)
                return true
            } catch {
                attempt += 1
                logger.warning("dead-letter write failed, retrying", metadata: [BrookLogKey.error: "\(error)", BrookLogKey.attempt: "\(attempt)"])
                guard await backoff(attempt, tp: tp, epoch: epoch) else { return false }
            }
        }
    }
}
