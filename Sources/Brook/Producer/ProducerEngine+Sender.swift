import BrookProtocol
import Logging
import NIOCore

/// One sender task per broker: it drains the ready batches of the partitions that broker leads
/// into produce requests, and feeds each answer to the state (``ProducerEngineState`` and its
/// ``IdempotenceStateMachine``), then runs what they decided.
extension ProducerEngine {
    func runSender(node: Int32, signal: AsyncSignal) async {
        await withDiscardingTaskGroup { group in
            var connectFailures = 0
            var lastSettled: AsyncSignal?
            while true {
                let (stop, work, wake): (Bool, Bool, ContinuousClock.Instant?) = state.withLock { s in
                    if s.stopped { return (true, false, nil) }
                    let (work, wake) = s.hasWork(node: node, now: .now)
                    return (false, work, wake)
                }
                if stop { return }
                if !work {
                    await signal.wait(until: wake)
                    continue
                }
                let conn: BrokerConnection
                do {
                    conn = try await cluster.connection(to: node)
                    connectFailures = 0
                } catch {
                    connectFailures += 1
                    state.withLock { $0.stats.connectFailures += 1 }
                    logger.debug("cannot connect to leader", metadata: [BrookLogKey.node: "\(node)", BrookLogKey.error: "\(error)"])
                    requestMetadata()
                    await signal.wait(until: .now + backoff(attempt: connectFailures))
                    continue
                }
                let batches = state.withLock { $0.drain(node: node) }
                if batches.isEmpty { continue }
                guard let started = startProduce(batches, node: node, connection: conn) else {
                    state.withLock { $0.nodeInFlight[node, default: 1] -= 1 }
                    continue
                }
                // Responses are settled in the order the requests went out: a later request's
                // success must not free a slot (and let new batches out) before an earlier
                // request's failure has turned its batches into retries, or the retry would come
                // after newer sequences and the broker could no longer place it.
                let previous = lastSettled
                let settled = AsyncSignal()
                lastSettled = settled
                group.addTask {
                    if let previous { await previous.wait(until: nil) }
                    await self.finishProduce(started, node: node)
                    self.state.withLock { $0.nodeInFlight[node, default: 1] -= 1 }
                    settled.signal()
                    signal.signal()
                }
            }
        }
    }

    /// A produce request written to the connection, its response still to come.
    ///
    /// `@unchecked Sendable`: its batches are in flight, so only the task awaiting this request
    /// touches them until it settles them under the lock.
    struct StartedProduce: @unchecked Sendable {
        var batches: [ProducerBatch]
        var future: EventLoopFuture<ByteBuffer>?
        var version: Int16 = 0
        var started: ContinuousClock.Instant
        var error: (any Error)?
    }

    /// Encodes the batches and writes the request, synchronously: the sender loop calls this so
    /// that a partition's requests reach the broker in sequence order.
    private func startProduce(_ batches: [ProducerBatch], node: Int32, connection: BrokerConnection) -> StartedProduce? {
        var sendable: [ProducerBatch] = []
        var encodeFailures: [(ProducerBatch, KafkaClientError)] = []
        for b in batches {
            do {
                try b.prepareForSend()
                sendable.append(b)
            } catch {
                encodeFailures.append((b, .protocolViolation("could not encode the record batch: \(error)")))
            }
        }
        if !encodeFailures.isEmpty {
            let done = state.withLock { s in
                encodeFailures.compactMap { (b, e) -> BatchCompletion? in
                    b.partition.inFlight -= 1
                    _ = s.idempotence.batchAbandoned(&b.partition.sequence, hadSequence: b.baseSequence >= 0)
                    return s.fail(b, e)
                }
            }
            deliver(done)
        }
        guard !sendable.isEmpty else { return nil }

        var request = ProduceRequest()
        request.acks = config.acks.rawValue
        request.timeoutMs = Int32(clamping: config.requestTimeout.milliseconds)
        var byTopic: [String: Int] = [:]
        for b in sendable {
            var pd = ProduceRequest.PartitionProduceData()
            pd.index = b.partition.id
            pd.records = b.bytes
            let name = b.partition.topic.name
            if let i = byTopic[name] {
                request.topicData[i].partitionData.append(pd)
            } else {
                var td = ProduceRequest.TopicProduceData()
                td.name = name
                td.partitionData = [pd]
                byTopic[name] = request.topicData.count
                request.topicData.append(td)
            }
            batchSizeRecorder.record(b.bytes?.readableBytes ?? 0)
        }
        do {
            let version = try connection.version(for: .produce)
            let future = connection.enqueue(request, version: version, expectsResponse: config.acks != .none,
                                            timeout: config.requestTimeout + .seconds(5))
            return StartedProduce(batches: sendable, future: future, version: version, started: .now)
        } catch {
            return StartedProduce(batches: sendable, started: .now, error: error)
        }
    }

    /// Awaits the response of a started request and settles its batches.
    private func finishProduce(_ started: StartedProduce, node: Int32) async {
        let sendable = started.batches
        var body: ByteBuffer
        do {
            if let e = started.error { throw e }
            body = try await started.future!.get()
        } catch {
            await transportFailure(sendable, node: node, error: error)
            return
        }
        requestLatency.recordNanoseconds((ContinuousClock.now - started.started).nanoseconds)
        if config.acks == .none {
            let done = state.withLock { s in
                sendable.compactMap { b -> BatchCompletion? in
                    b.partition.inFlight -= 1
                    return s.complete(b, Acknowledgement(baseOffset: -1, logAppendTime: -1))
                }
            }
            deliver(done)
            return
        }
        let response: ProduceResponse
        do {
            response = try ProduceResponse(from: &body, version: started.version)
        } catch {
            await transportFailure(sendable, node: node, error: KafkaClientError.protocolViolation("could not decode Produce v\(started.version) response: \(error)"))
            return
        }

        var results: [ObjectIdentifier: ProduceResponse.PartitionProduceResponse] = [:]
        var lookup: [String: [Int32: ProducerBatch]] = [:]
        for b in sendable { lookup[b.partition.topic.name, default: [:]][b.partition.id] = b }
        for t in response.responses {
            for pr in t.partitionResponses {
                if let b = lookup[t.name]?[pr.index] { results[ObjectIdentifier(b)] = pr }
            }
        }
        var needMetadata = false
        var needIdentity = false
        var logs: [(ProducerBatch, ErrorCode, String?, Bool)] = []
        let done: [BatchCompletion] = state.withLock { s in
            var out: [BatchCompletion] = []
            for b in sendable {
                b.partition.inFlight -= 1
                guard let pr = results[ObjectIdentifier(b)] else {
                    let e = KafkaClientError.protocolViolation("produce response lacks \(b.partition.topic.name)-\(b.partition.id)")
                    if let r = s.produceFailed(b, code: .unknownServerError, error: e, definitelyNotWritten: false,
                                               backoff: backoff(attempt: b.attempts + 1),
                                               needMetadata: &needMetadata, needIdentity: &needIdentity) {
                        out.append(r)
                    }
                    continue
                }
                let code = ErrorCode(rawValue: pr.errorCode) ?? .unknownServerError
                if code == .none {
                    if let r = s.complete(b, Acknowledgement(baseOffset: pr.baseOffset, logAppendTime: pr.logAppendTimeMs)) { out.append(r) }
                    continue
                }
                let e = KafkaClientError.broker(code, resource: "\(b.partition.topic.name)-\(b.partition.id)", message: pr.errorMessage)
                // A duplicate was acknowledged earlier: the offset is the broker's if it still knows it.
                let r = s.produceFailed(b, code: code, error: e, definitelyNotWritten: true,
                                        backoff: backoff(attempt: b.attempts + 1),
                                        needMetadata: &needMetadata, needIdentity: &needIdentity,
                                        duplicate: Acknowledgement(baseOffset: pr.baseOffset >= 0 ? pr.baseOffset : -1,
                                                                   logAppendTime: pr.logAppendTimeMs))
                if code != .duplicateSequenceNumber { logs.append((b, code, pr.errorMessage, r == nil)) }
                if let r { out.append(r) }
            }
            return out
        }
        for (b, code, message, retrying) in logs {
            let meta: Logger.Metadata = [
                BrookLogKey.topic: "\(b.partition.topic.name)", BrookLogKey.partition: "\(b.partition.id)", BrookLogKey.offset: "-1",
                BrookLogKey.error: "\(code.name)", BrookLogKey.records: "\(b.recordCount)", BrookLogKey.attempt: "\(b.attempts)",
                BrookLogKey.sequence: "\(b.baseSequence)", BrookLogKey.producerId: "\(b.producerId)",
                BrookLogKey.message: "\(message ?? "")", BrookLogKey.node: "\(node)",
            ]
            if retrying { logger.debug("produce failed, will retry", metadata: meta) } else { logger.warning("produce failed", metadata: meta) }
        }
        if needIdentity { maintenanceSignal.signal() }
        if needMetadata { requestMetadata() }
        deliver(done)
    }

    private func transportFailure(_ batches: [ProducerBatch], node: Int32, error: any Error) async {
        let e = (error as? KafkaClientError) ?? .connectionClosed("\(error)")
        logger.debug("produce request failed", metadata: [BrookLogKey.node: "\(node)", BrookLogKey.error: "\(e)", "batches": "\(batches.count)"])
        await cluster.connectionFailed(node)
        var needMetadata = true
        var needIdentity = false
        let done = state.withLock { s in
            s.stats.transportFailures += 1
            return batches.compactMap { b -> BatchCompletion? in
                b.partition.inFlight -= 1
                return s.produceFailed(b, code: nil, error: e, definitelyNotWritten: false,
                                       backoff: backoff(attempt: b.attempts + 1),
                                       needMetadata: &needMetadata, needIdentity: &needIdentity)
            }
        }
        if needIdentity { maintenanceSignal.signal() }
        requestMetadata()
        deliver(done)
    }
}
