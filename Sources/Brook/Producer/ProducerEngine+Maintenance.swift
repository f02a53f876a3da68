import BrookProtocol
import Logging

/// Metadata, the producer id and delivery timeouts: the maintenance task's work.
extension ProducerEngine {
    /// Fetches the topic's metadata (creating it if the cluster auto-creates topics), waiting
    /// at most max.block.ms while it has no partitions or leaders yet.
    func ensureTopic(_ name: String) async throws {
        let deadline = ContinuousClock.now + config.maxBlock
        var attempt = 0
        while true {
            if state.withLock({ $0.topics[name].map { !$0.partitions.isEmpty } ?? false }) { return }
            do {
                let t = try await cluster.metadata(for: name, allowAutoCreate: true)
                if !t.partitions.isEmpty {
                    install([t])
                    return
                }
                throw KafkaClientError.broker(.leaderNotAvailable, resource: "topic \(name)", message: "no partitions yet")
            } catch let e as KafkaClientError where e.isRetriable {
                attempt += 1
                if ContinuousClock.now >= deadline {
                    throw KafkaClientError.timedOut("topic \(name) not available after max.block.ms (\(config.maxBlock)): \(e)")
                }
                await cluster.invalidate()
                try await Task.sleep(for: backoff(attempt: attempt))
            }
        }
    }

    /// Updates partitions and leaders; starts senders for brokers that became leaders.
    func install(_ updated: [ClusterMetadata.Topic]) {
        let wake: [AsyncSignal] = state.withLock { s in
            var newNodes: [Int32] = []
            for t in updated {
                let topic = s.topics[t.name] ?? {
                    let created = TopicState(name: t.name, clientId: config.client.clientId)
                    s.topics[t.name] = created
                    return created
                }()
                while topic.partitions.count < t.partitions.count {
                    topic.partitions.append(PartitionState(topic: topic, id: Int32(topic.partitions.count)))
                }
                var available: [Int32] = []
                for p in t.partitions where Int(p.id) < topic.partitions.count {
                    let part = topic.partitions[Int(p.id)]
                    let leader = (p.error == .none || p.leader >= 0) ? p.leader : -1
                    if leader != part.leader {
                        if part.leader >= 0 {
                            s.nodePartitions[part.leader]?.removeAll { $0 === part }
                        }
                        part.leader = leader
                        if leader >= 0 {
                            s.nodePartitions[leader, default: []].append(part)
                            if s.senders[leader] == nil && !s.stopped { newNodes.append(leader) }
                        }
                    }
                    if leader >= 0 { available.append(p.id) }
                }
                topic.available = available
            }
            for node in Set(newNodes) {
                let signal = AsyncSignal()
                let task = Task { await self.runSender(node: node, signal: signal) }
                s.senders[node] = SenderHandle(signal: signal, task: task)
            }
            return s.senderSignals
        }
        for s in wake { s.signal() }
    }

    func requestMetadata() {
        state.withLock { $0.metadataRequested = true }
        maintenanceSignal.signal()
    }

    private func refreshMetadata() async throws {
        let names: [String] = state.withLock { s in
            s.metadataRequested = false
            return Array(s.topics.keys)
        }
        guard !names.isEmpty else { return }
        await cluster.invalidate()
        let md = try await cluster.refreshMetadata(topics: names)
        install(names.compactMap { md.topics[$0] })
        // Still leaderless partitions with data: ask again (after a backoff).
        state.withLock { s in
            if s.topics.values.contains(where: { t in t.partitions.contains { $0.leader < 0 && !$0.isIdle } }) {
                s.metadataRequested = true
            }
        }
    }

    func runMaintenance() async {
        var metadataFailures = 0
        var lastMetadata = ContinuousClock.now - .seconds(10)
        while true {
            let (stop, needIdentity, needMetadata) = state.withLock { s in
                (s.stopped, s.idempotence.needsIdentity, s.metadataRequested)
            }
            if stop { return }
            if needIdentity { await obtainIdentity() }
            if needMetadata && ContinuousClock.now - lastMetadata >= backoff(attempt: metadataFailures + 1) {
                lastMetadata = .now
                do {
                    try await refreshMetadata()
                    metadataFailures = 0
                } catch {
                    metadataFailures += 1
                    state.withLock { $0.metadataRequested = true }
                    logger.debug("metadata refresh failed", metadata: [BrookLogKey.error: "\(error)"])
                }
            }
            expireBatches()
            await maintenanceSignal.wait(until: .now + .milliseconds(100))
        }
    }

    /// InitProducerId for an idempotent producer (a fresh producer id; sequences start at 0).
    private func obtainIdentity() async {
        var attempt = 0
        while !state.withLock({ $0.stopped }) {
            do {
                let conn = try await cluster.anyConnection()
                var req = InitProducerIdRequest()
                req.transactionalId = nil
                req.transactionTimeoutMs = Int32.max
                req.producerId = -1
                req.producerEpoch = -1
                let resp = try await conn.send(req)
                if resp.errorCode != 0 {
                    let code = ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError
                    throw KafkaClientError.broker(code, resource: "InitProducerId", message: nil)
                }
                let signals: [AsyncSignal] = state.withLock { s in
                    s.idempotence.identityAssigned(ProducerIdentity(producerId: resp.producerId, epoch: resp.producerEpoch))
                    s.stats.identities += 1
                    return s.senderSignals
                }
                logger.debug("producer id assigned", metadata: [
                    BrookLogKey.producerId: "\(resp.producerId)", BrookLogKey.producerEpoch: "\(resp.producerEpoch)",
                ])
                for s in signals { s.signal() }
                return
            } catch let e as KafkaClientError where !e.isRetriable && e.errorCode != nil {
                logger.error("InitProducerId failed; the idempotent producer cannot send", metadata: [BrookLogKey.error: "\(e)"])
                let failed = state.withLock { s in
                    s.idempotence.identityFailed(e)
                    return s.failAll(e)
                }
                deliver(failed)
                return
            } catch {
                attempt += 1
                logger.debug("InitProducerId failed, retrying", metadata: [BrookLogKey.error: "\(error)"])
                try? await Task.sleep(for: backoff(attempt: attempt))
            }
        }
    }

    /// Fails batches whose delivery.timeout.ms passed while not in flight.
    private func expireBatches() {
        var needIdentity = false
        let done = state.withLock { $0.expire(now: .now, needIdentity: &needIdentity) }
        guard !done.isEmpty else { return }
        for c in done {
            let b = c.batch
            guard case .failure(let e) = c.result else { continue }
            logger.warning("records expired", metadata: [
                BrookLogKey.topic: "\(b.partition.topic.name)", BrookLogKey.partition: "\(b.partition.id)", BrookLogKey.offset: "-1",
                BrookLogKey.records: "\(b.recordCount)", BrookLogKey.error: "\(e)",
            ])
        }
        deliver(done)
        maintenanceSignal.signal()
    }
}
