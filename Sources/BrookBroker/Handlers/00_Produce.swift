import BrookProtocol
import Logging
import Metrics
import NIOCore

extension Broker {
    func handleProduce(_ r: ProduceRequest, _ ctx: RequestContext) -> RequestOutcome {
        let started = ContinuousClock.now
        let acks = r.acks
        var results: [(topic: String, partition: Int32, error: ErrorCode, message: String?, outcome: AppendOutcome?, lat: Int64)] = []
        var durableWaits: [(PartitionState, Int64)] = []
        if r.transactionalId != nil {
            for t in r.topicData {
                for p in t.partitionData {
                    results.append((t.name, p.index, .transactionalIdAuthorizationFailed, "transactions are not supported by Brook's broker", nil, -1))
                }
            }
        } else {
            for t in r.topicData {
                var meta = topic(named: t.name)
                if meta == nil && config.autoCreateTopics && validateTopicName(t.name) == nil {
                    meta = try? autoCreateTopic(t.name, ctx)
                }
                for p in t.partitionData {
                    guard acks == -1 || acks == 0 || acks == 1 else {
                        results.append((t.name, p.index, .invalidRequiredAcks, nil, nil, -1))
                        continue
                    }
                    guard ctx.version >= 3 else {
                        // Magic 0/1 message sets are gone from Kafka 4.0 too.
                        results.append((t.name, p.index, .unsupportedVersion, "produce v0-2 (message format v0/v1) is not supported", nil, -1))
                        continue
                    }
                    guard let meta, !(meta.isInternal), let part = partition(t.name, p.index) else {
                        let code: ErrorCode = (meta?.isInternal ?? false) ? .invalidTopicException : .unknownTopicOrPartition
                        results.append((t.name, p.index, code, nil, nil, -1))
                        continue
                    }
                    let maxMessageBytes = Int(effectiveConfig(meta, "max.message.bytes")) ?? 1_048_588
                    let logAppendTime = effectiveConfig(meta, "message.timestamp.type") == "LogAppendTime" ? currentTimeMillis() : nil
                    guard let records = p.records, records.readableBytes > 0 else {
                        results.append((t.name, p.index, .invalidRecord, "no records", nil, -1))
                        continue
                    }
                    do throws(ProduceValidationError) {
                        let compacted = effectiveConfig(meta, "cleanup.policy").contains("compact")
                        let info = try validateProduceBatches(records, maxMessageBytes: maxMessageBytes, requireKeys: compacted)
                        let outcome = try mapAppendError { () throws(ErrorCode) in
                            try part.append(records, info: info, logAppendTime: logAppendTime)
                        }
                        results.append((t.name, p.index, .none, nil, outcome, logAppendTime ?? -1))
                        if !outcome.duplicate {
                            durableWaits.append((part, outcome.lastOffset))
                            metrics.recordsIn.increment(by: Int64(info.reduce(0) { $0 + Int($1.recordCount) }))
                        } else {
                            ctx.logger.info("duplicate produce retry ignored", metadata: [
                                BrookLogKey.topic: "\(t.name)", BrookLogKey.partition: "\(p.index)", BrookLogKey.offset: "\(outcome.firstOffset)",
                            ])
                        }
                    } catch {
                        if error.code != .outOfOrderSequenceNumber && error.code != .duplicateSequenceNumber {
                            ctx.logger.warning("produce rejected", metadata: [
                                BrookLogKey.topic: "\(t.name)", BrookLogKey.partition: "\(p.index)", BrookLogKey.error: "\(error.code.name)", BrookLogKey.reason: "\(error.message ?? "")",
                            ])
                        }
                        results.append((t.name, p.index, error.code, error.message, nil, -1))
                    }
                }
            }
        }
        let done = results
        let build: @Sendable () -> ProduceResponse = { [self] in
            var resp = ProduceResponse()
            var byTopic: [String: [ProduceResponse.PartitionProduceResponse]] = [:]
            var order: [String] = []
            for res in done {
                var pr = ProduceResponse.PartitionProduceResponse()
                pr.index = res.partition
                pr.errorCode = res.error.rawValue
                pr.errorMessage = res.message
                pr.baseOffset = res.outcome?.firstOffset ?? -1
                pr.logAppendTimeMs = res.lat
                pr.logStartOffset = partition(res.topic, res.partition)?.logStartOffset ?? -1
                if byTopic[res.topic] == nil { order.append(res.topic) }
                byTopic[res.topic, default: []].append(pr)
            }
            resp.responses = order.map { name in
                var tr = ProduceResponse.TopicProduceResponse()
                tr.name = name
                tr.partitionResponses = byTopic[name] ?? []
                return tr
            }
            return resp
        }
        let waits = durableWaits
        if acks == 0 {
            // No response, but data must still become visible.
            if config.flushPolicy == .os || waits.isEmpty {
                for (p, last) in waits { p.advanceHighWatermark(to: last + 1) }
            } else {
                Task { [committer] in
                    for (p, last) in waits {
                        try? await committer.waitDurable(p.log, upTo: last)
                        p.advanceHighWatermark(to: last + 1)
                    }
                }
            }
            return .respond(nil)
        }
        if config.flushPolicy == .os || waits.isEmpty {
            for (p, last) in waits { p.advanceHighWatermark(to: last + 1) }
            metrics.produceLatency.recordNanoseconds(elapsedNanos(since: started))
            return respond(build(), ctx)
        }
        return later(ctx) { [committer, metrics] in
            var failed: [TopicPartition] = []
            for (p, last) in waits {
                do {
                    try await committer.waitDurable(p.log, upTo: last)
                    p.advanceHighWatermark(to: last + 1)
                } catch {
                    ctx.logger.error("fsync failed", metadata: [BrookLogKey.topic: "\(p.tp.topic)", BrookLogKey.partition: "\(p.tp.partition)", BrookLogKey.error: "\(error)"])
                    failed.append(p.tp)
                }
            }
            var resp = build()
            if !failed.isEmpty {
                for i in resp.responses.indices {
                    for j in resp.responses[i].partitionResponses.indices {
                        let tp = TopicPartition(topic: resp.responses[i].name, partition: resp.responses[i].partitionResponses[j].index)
                        if failed.contains(tp) {
                            resp.responses[i].partitionResponses[j].errorCode = ErrorCode.kafkaStorageError.rawValue
                        }
                    }
                }
            }
            metrics.produceLatency.recordNanoseconds(elapsedNanos(since: started))
            return resp
        }
    }

    private func mapAppendError(_ body: () throws(ErrorCode) -> AppendOutcome) throws(ProduceValidationError) -> AppendOutcome {
        do {
            return try body()
        } catch {
            throw ProduceValidationError(code: error, message: nil)
        }
    }
}

struct ProduceValidationError: Error {
    var code: ErrorCode
    var message: String?
}

/// Checks every batch of a produce request before anything is appended: framing, magic, CRC,
/// size limit, and record-level consistency, so a malformed batch is refused whole.
///
/// - Parameter requireKeys: the topic is compacted, where Kafka refuses records without a key.
func validateProduceBatches(_ records: ByteBuffer, maxMessageBytes: Int, requireKeys: Bool = false) throws(ProduceValidationError) -> [BatchInfo] {
    var index = records.readerIndex
    let end = records.writerIndex
    var infos: [BatchInfo] = []
    while index < end {
        guard end - index >= RecordBatchHeader.size else {
            throw ProduceValidationError(code: .corruptMessage, message: "truncated record batch header")
        }
        let h: RecordBatchHeader
        do {
            h = try RecordBatchHeader(parsing: records, at: index)
        } catch {
            throw ProduceValidationError(code: .corruptMessage, message: "\(error)")
        }
        guard h.magic == 2 else {
            throw ProduceValidationError(code: .unsupportedForMessageFormat, message: "record batch magic \(h.magic) is not supported")
        }
        guard h.batchLength >= RecordBatchHeader.minimumBatchLength, index + h.totalSize <= end else {
            throw ProduceValidationError(code: .corruptMessage, message: "record batch length \(h.batchLength) exceeds the request")
        }
        if h.totalSize > maxMessageBytes {
            throw ProduceValidationError(code: .messageTooLarge, message: "batch of \(h.totalSize) bytes exceeds max.message.bytes \(maxMessageBytes)")
        }
        // The CRC covers attributes to the end of the batch.
        let crc = CRC32C.checksum(records, range: (index + RecordBatchHeader.attributesOffset)..<(index + h.totalSize))
        guard crc == h.crc else {
            throw ProduceValidationError(code: .corruptMessage, message: "record batch CRC mismatch")
        }
        guard h.recordCount > 0, h.lastOffsetDelta >= 0, h.lastOffsetDelta == h.recordCount - 1 else {
            throw ProduceValidationError(code: .invalidRecord, message: "record count \(h.recordCount) does not match last offset delta \(h.lastOffsetDelta)")
        }
        if h.isTransactional || h.isControl {
            throw ProduceValidationError(code: .invalidRecord, message: "transactional and control batches are not supported")
        }
        if h.isCompressed {
            do { try h.codec.checkAvailable() } catch {
                throw ProduceValidationError(code: .unsupportedCompressionType, message: "\(error)")
            }
        }
        // Record-level checks (every record decodes, deltas increase, counts match), as Kafka
        // does for client batches: a malformed record with a valid CRC is still refused.
        do {
            let batch = try RecordBatch(bytes: records.getSlice(at: index, length: h.totalSize)!)
            _ = try batch.validate(options: RecordBatchValidationOptions(fromClient: true))
            if requireKeys {
                var keyless = false
                try batch.forEachRecord { r in if r.key == nil { keyless = true } }
                if keyless { throw ProduceValidationError(code: .invalidRecord, message: "compacted topic cannot accept a record without a key") }
            }
        } catch let e as ProduceValidationError {
            throw e
        } catch {
            throw ProduceValidationError(code: .invalidRecord, message: "\(error)")
        }
        infos.append(BatchInfo(producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence,
                               lastOffsetDelta: h.lastOffsetDelta, recordCount: h.recordCount, maxTimestamp: h.maxTimestamp))
        index += h.totalSize
    }
    if infos.isEmpty { throw ProduceValidationError(code: .invalidRecord, message: "no record batches") }
    return infos
}
