import Brook
import BrookProtocol
import Logging
import NIOCore

extension Pipeline {
    /// Takes fetched batches while there is room in flight; at the bound, pauses the assigned
    /// partitions (the consumer stops fetching them) until the lanes have drained below three
    /// quarters of it. Returns the consumer's fatal error, if that is what ended it.
    func fetchLoop(_ consumer: KafkaConsumer) async -> (any Error)? {
        var iterator = consumer.batches.makeAsyncIterator()
        var wakeups = self.wakeups.makeAsyncIterator()
        let maxRecords = configuration.maxInFlightRecords
        let maxBytes = configuration.maxInFlightBytes
        while true {
            let (stopping, over, paused) = state.withLock { s in
                (s.stopping, s.inFlightRecords >= maxRecords || s.inFlightBytes >= maxBytes, !s.pausedForBackpressure.isEmpty)
            }
            if stopping { return nil }
            if over {
                let owned = consumer.assignment()
                consumer.pause(Array(owned))
                state.withLock { $0.pausedForBackpressure.formUnion(owned) }
                if !paused { logger.debug("in-flight bound reached: partitions paused", metadata: [BrookLogKey.partitions: "\(owned.count)"]) }
                _ = await wakeups.next()
                continue
            }
            if paused {
                let resume = state.withLock { s -> [TopicPartition]? in
                    guard s.inFlightRecords <= maxRecords * 3 / 4, s.inFlightBytes <= maxBytes / 4 * 3 else { return nil }
                    let r = s.pausedForBackpressure.filter { s.partitions[$0]?.fenced != true }
                    s.pausedForBackpressure = []
                    return Array(r)
                }
                guard let resume else {
                    _ = await wakeups.next()
                    continue
                }
                consumer.resume(resume)
            }
            let batch: ConsumerRecordBatch?
            do {
                batch = try await iterator.next()
            } catch let e as KafkaConsumerError where e.isFatal {
                logger.error("consumer failed", metadata: [BrookLogKey.error: "\(e)"])
                return e
            } catch {
                // Reported by the consumer but not the end of it (e.g. no offset for a partition):
                // keep going with the others.
                logger.error("consumer error", metadata: [BrookLogKey.error: "\(error)"])
                try? await Task.sleep(for: configuration.consumer.client.retryBackoff)
                continue
            }
            guard let batch else { return nil }
            accept(batch)
        }
    }

    /// Decodes a fetched batch and queues its records on their lanes; starts idle lanes.
    func accept(_ batch: ConsumerRecordBatch) {
        let lanesPer = configuration.lanesPerPartition
        var items: [(Int, PipelineItem<Value>)] = []
        items.reserveCapacity(batch.records.count)
        let fetchedAt = ContinuousClock.now
        let nowMs = currentTimeMillis()
        let fetchedStage = metrics.stage(.fetched)
        for r in batch.records {
            fetchedStage.record(sinceTimestampMs: r.timestamp, nowMs: nowMs)
            let decoded: Result<Value, RecordError>
            do {
                decoded = .success(try decoder(r.value ?? ByteBuffer()))
            } catch let e as RecordError {
                decoded = .failure(RecordError(offset: r.offset, kind: .nonRetryable, type: e.type, message: e.message))
            } catch {
                decoded = .failure(RecordError(offset: r.offset, kind: .nonRetryable, type: "DecodeError", message: "\(error)"))
            }
            let bytes = (r.key?.readableBytes ?? 0) + (r.value?.readableBytes ?? 0)
            let lane: Int
            if lanesPer == 1 {
                lane = 0
            } else if let k = r.key {
                lane = Int((Murmur2.hash(k.readableBytesView) & 0x7fff_ffff) % Int32(lanesPer))
            } else {
                lane = Int(r.offset % Int64(lanesPer))
            }
            items.append((lane, PipelineItem(record: r, decoded: decoded, bytes: bytes, fetchedAt: fetchedAt)))
        }
        let start = state.withLock { s -> [(LaneID, UInt64)] in
            guard !s.stopping, var c = s.partitions[batch.topicPartition], !c.fenced, !c.revoking else { return [] }
            if c.loading {
                c.rewind = min(c.rewind ?? Int64.max, batch.records.first?.offset ?? batch.nextOffset)
                s.partitions[batch.topicPartition] = c
                return []
            }
            c.tracker.accept(batch.records.map(\.offset), timestamps: batch.records.map(\.timestamp), next: batch.nextOffset)
            s.partitions[batch.topicPartition] = c
            var touched: Set<LaneID> = []
            for (lane, item) in items {
                let id = LaneID(tp: batch.topicPartition, index: lane, epoch: c.epoch)
                s.lanes[id, default: LaneQueue()].items.append(item)
                s.inFlightRecords += 1
                s.inFlightBytes += item.bytes
                touched.insert(id)
            }
            var start: [(LaneID, UInt64)] = []
            for id in touched where s.lanes[id]?.running == false {
                s.lanes[id]?.running = true
                s.workers += 1
                start.append((id, c.epoch))
            }
            return start
        }
        for (id, epoch) in start {
            Task { await self.runLane(id, epoch: epoch) }
        }
    }
}

extension KafkaConsumerError {
    /// Errors after which the consumer cannot go on.
    var isFatal: Bool {
        switch code {
        case .fenced, .groupFailure, .closed, .invalidConfiguration, .noGroup: return true
        // noOffset, commitFailed, notAssigned, and any kind added later: the consumer goes on.
        default: return false
        }
    }
}
