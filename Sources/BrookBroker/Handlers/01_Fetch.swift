import BrookProtocol
import Metrics
import NIOCore

extension Broker {
    func handleFetch(_ r: FetchRequest, _ ctx: RequestContext) -> RequestOutcome {
        let started = ContinuousClock.now
        // Resolve names (v0–12) or ids (v13+) once.
        var wanted: [(topicName: String?, topicId: KafkaUUID, partition: Int32, offset: Int64, maxBytes: Int32, state: PartitionState?, error: ErrorCode)] = []
        for t in r.topics {
            let meta = ctx.version >= 13 ? topic(id: t.topicId) : topic(named: t.topic)
            for p in t.partitions {
                let state = meta.flatMap { partition($0.name, p.partition) }
                var err: ErrorCode = .none
                if state == nil {
                    err = (ctx.version >= 13 && meta == nil) ? .unknownTopicId : .unknownTopicOrPartition
                }
                wanted.append((meta?.name ?? t.topic, meta?.id ?? t.topicId, p.partition, p.fetchOffset, p.partitionMaxBytes, state, err))
            }
        }
        let maxBytes = ctx.version >= 3 ? Int(max(r.maxBytes, 0)) : Int.max
        let minBytes = Int(r.minBytes)
        let maxWait = Int64(max(r.maxWaitMs, 0))
        let snapshot = wanted

        @Sendable func collect() -> (FetchResponse, Int) {
            var resp = FetchResponse()
            var remaining = maxBytes
            var total = 0
            var topics: [FetchResponse.FetchableTopicResponse] = []
            for w in snapshot {
                var pd = FetchResponse.PartitionData()
                pd.partitionIndex = w.partition
                pd.records = ByteBuffer()
                if let state = w.state {
                    let hw = state.highWatermark
                    pd.highWatermark = hw
                    pd.lastStableOffset = hw
                    pd.logStartOffset = state.logStartOffset
                    if w.offset < state.logStartOffset || w.offset > hw {
                        // An offset past the high watermark but within the log is not yet durable.
                        if w.offset > state.logEndOffset || w.offset < state.logStartOffset {
                            pd.errorCode = ErrorCode.offsetOutOfRange.rawValue
                        }
                    } else if w.offset < hw && remaining > 0 {
                        do {
                            let limit = min(Int(max(w.maxBytes, 0)), remaining)
                            let data = try state.read(from: w.offset, maxBytes: limit, minOneBatch: total == 0)
                            pd.records = data
                            total += data.readableBytes
                            remaining -= data.readableBytes
                        } catch {
                            pd.errorCode = ErrorCode.kafkaStorageError.rawValue
                        }
                    }
                } else {
                    pd.errorCode = w.error.rawValue
                    pd.highWatermark = -1
                }
                if let last = topics.last, last.topic == w.topicName, last.topicId == w.topicId {
                    topics[topics.count - 1].partitions.append(pd)
                } else {
                    var tr = FetchResponse.FetchableTopicResponse()
                    tr.topic = w.topicName ?? ""
                    tr.topicId = w.topicId
                    tr.partitions = [pd]
                    topics.append(tr)
                }
            }
            resp.responses = topics
            return (resp, total)
        }

        let (first, bytes) = collect()
        if bytes >= minBytes || maxWait == 0 || bytes > 0 && bytes >= minBytes {
            metrics.fetchBytes.increment(by: Int64(bytes))
            return respond(first, ctx)
        }
        return later(ctx) { [metrics] in
            let deadline = ContinuousClock.now.advanced(by: .milliseconds(maxWait))
            var result = first
            while true {
                let wake = Wakeup()
                for w in snapshot { w.state?.register(wake) }
                // Re-check after registering so an append in between is not missed.
                let (again, n) = collect()
                result = again
                if n >= minBytes || n > 0 && ContinuousClock.now >= deadline { for w in snapshot { w.state?.unregister(wake) }; break }
                let left = ContinuousClock.now.duration(to: deadline)
                if left <= .zero { for w in snapshot { w.state?.unregister(wake) }; break }
                let ms = left.milliseconds
                await wake.wait(timeoutMs: max(1, ms))
                for w in snapshot { w.state?.unregister(wake) }
                if !ctx.connection.isOpen { break }
                if ContinuousClock.now >= deadline {
                    result = collect().0
                    break
                }
            }
            var bytesOut = 0
            for t in result.responses { for p in t.partitions { bytesOut += p.records?.readableBytes ?? 0 } }
            metrics.fetchBytes.increment(by: Int64(bytesOut))
            metrics.fetchLatency.recordNanoseconds(elapsedNanos(since: started))
            return result
        }
    }
}
