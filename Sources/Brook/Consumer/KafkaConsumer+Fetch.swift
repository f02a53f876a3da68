import BrookProtocol
import Logging
import NIOCore

extension KafkaConsumer {
    /// Keeps positions resolved, leaders known, and one fetch loop per leader broker.
    func runFetchManager() async {
        await withTaskGroup(of: Void.self) { group in
            var loops: Set<Int32> = []
            var pendingRounds = 0
            while !Task.isCancelled && isRunning {
                let g = fetchSignal.generation
                var retrySoon = false
                do {
                    try await resolveLeaders()
                    try await resolvePositions()
                } catch is CancellationError {
                    break
                } catch {
                    logger.debug("resolving positions or leaders failed; retrying", metadata: [BrookLogKey.error: "\(error)"])
                    retrySoon = true
                }
                let leaders = state.withLock { s in Set(s.partitions.values.compactMap(\.leader)) }
                for node in leaders where !loops.contains(node) {
                    loops.insert(node)
                    group.addTask { await self.fetchLoop(node: node) }
                }
                let pending = state.withLock { s in s.partitions.values.contains { $0.leader == nil || $0.need != nil } }
                if retrySoon || pending {
                    // Back off while leaders or offsets stay unknown (e.g. a deleted topic).
                    pendingRounds += 1
                    try? await Task.sleep(for: configuration.client.retryBackoff * min(pendingRounds, 10))
                } else {
                    pendingRounds = 0
                    await fetchSignal.wait(since: g, timeout: .seconds(5))
                }
            }
            group.cancelAll()
        }
    }

    /// Finds the leader of every assigned partition that has none (from cached metadata, else a
    /// refresh).
    func resolveLeaders() async throws {
        let missing = state.withLock { s in s.partitions.filter { $0.value.leader == nil }.map(\.key) }
        guard !missing.isEmpty else { return }
        var metadata = await cluster.metadata
        // After NOT_LEADER_OR_FOLLOWER the cache still names the old leader: refresh first.
        if await cluster.isStale || missing.contains(where: { metadata.leader(topic: $0.topic, partition: $0.partition) == nil }) {
            metadata = try await cluster.refreshMetadata(topics: Array(Set(missing.map(\.topic))))
        }
        let found = state.withLock { s -> Bool in
            var found = false
            for tp in missing {
                if let leader = metadata.leader(topic: tp.topic, partition: tp.partition), s.partitions[tp] != nil {
                    s.partitions[tp]!.leader = leader
                    found = true
                }
            }
            return found
        }
        if found { fetchSignal.signal() }
    }

    /// Committed offsets (OffsetFetch) and resets (ListOffsets) for partitions without a position.
    func resolvePositions() async throws {
        let policy = configuration.offsets.autoOffsetReset
        let hasGroup = configuration.groupId != nil
        let (committedNeeded, resets) = state.withLock { s -> ([(TopicPartition, UInt64)], [(TopicPartition, UInt64, AutoOffsetReset)]) in
            var c: [(TopicPartition, UInt64)] = []
            var r: [(TopicPartition, UInt64, AutoOffsetReset)] = []
            for (tp, p) in s.partitions where !p.revoking {
                switch p.need {
                case .committed?:
                    if hasGroup { c.append((tp, p.epoch)) } else { r.append((tp, p.epoch, policy)) }
                case .reset(let policy)?:
                    r.append((tp, p.epoch, policy))
                case nil:
                    break
                }
            }
            return (c, r)
        }
        var resets2 = resets
        if !committedNeeded.isEmpty {
            let committed = try await fetchCommittedOffsets(committedNeeded.map(\.0))
            let more = state.withLock { s -> [(TopicPartition, UInt64, AutoOffsetReset)] in
                var more: [(TopicPartition, UInt64, AutoOffsetReset)] = []
                for (tp, epoch) in committedNeeded {
                    guard let p = s.partitions[tp], p.epoch == epoch, p.need == .committed else { continue }
                    if let offset = committed[tp], offset >= 0 {
                        s.resolve(tp, epoch: epoch, offset: offset, committed: offset)
                    } else {
                        s.partitions[tp]?.need = .reset(policy)
                        more.append((tp, epoch, policy))
                    }
                }
                return more
            }
            resets2 += more
            if committed.count > 0 { fetchSignal.signal() }
            for (tp, offset) in committed {
                logger.debug("committed offset", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.offset: "\(offset)"])
            }
        }
        if resets2.isEmpty { return }
        var failures: [(TopicPartition, UInt64)] = []
        var byTimestamp: [Int64: [(TopicPartition, UInt64)]] = [:]
        for (tp, epoch, policy) in resets2 {
            switch policy {
            case .earliest: byTimestamp[-2, default: []].append((tp, epoch))
            case .latest: byTimestamp[-1, default: []].append((tp, epoch))
            case .error: failures.append((tp, epoch))
            }
        }
        if !failures.isEmpty {
            state.withLock { s in
                for (tp, epoch) in failures {
                    guard let p = s.partitions[tp], p.epoch == epoch, p.need != nil else { continue }
                    p.need = nil
                    p.failed = true
                    s.errors.append(KafkaConsumerError.noOffset(tp))
                }
            }
            dataSignal.signal()
        }
        for (timestamp, tps) in byTimestamp {
            let offsets = try await listOffsets(tps.map(\.0), timestamp: timestamp)
            state.withLock { s in
                for (tp, epoch) in tps {
                    if let o = offsets[tp] {
                        s.resolve(tp, epoch: epoch, offset: o)
                        logger.debug("offset reset", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.offset: "\(o)", BrookLogKey.timestamp: "\(timestamp)"])
                    }
                }
            }
        }
        fetchSignal.signal()
    }

    /// ListOffsets (-2 earliest, -1 latest, else by time) at each partition's leader.
    func listOffsets(_ tps: [TopicPartition], timestamp: Int64) async throws -> [TopicPartition: Int64] {
        let leaders = state.withLock { s in tps.map { ($0, s.partitions[$0]?.leader) } }
        var byLeader: [Int32: [TopicPartition]] = [:]
        for (tp, leader) in leaders {
            if let leader { byLeader[leader, default: []].append(tp) }
        }
        var result: [TopicPartition: Int64] = [:]
        for (node, tps) in byLeader {
            let conn = try await cluster.connection(to: node)
            var req = ListOffsetsRequest()
            req.replicaId = -1
            req.isolationLevel = 0
            var byTopic: [String: [Int32]] = [:]
            for tp in tps { byTopic[tp.topic, default: []].append(tp.partition) }
            req.topics = byTopic.map { topic, parts in
                var t = ListOffsetsRequest.ListOffsetsTopic()
                t.name = topic
                t.partitions = parts.map { p in
                    var lp = ListOffsetsRequest.ListOffsetsPartition()
                    lp.partitionIndex = p
                    lp.timestamp = timestamp
                    lp.maxNumOffsets = 1
                    return lp
                }
                return t
            }
            let version = try conn.version(for: .listOffsets)
            let resp: ListOffsetsResponse
            do {
                resp = try await conn.send(req, version: max(version, 1))
            } catch {
                await cluster.connectionFailed(node)
                throw error
            }
            var stale = false
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition(topic: t.name, partition: p.partitionIndex)
                    let code = ErrorCode(rawValue: p.errorCode) ?? .unknownServerError
                    if code == .none {
                        result[tp] = p.offset
                    } else if code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable
                        || code == .fencedLeaderEpoch || code == .unknownLeaderEpoch
                    {
                        stale = true
                        state.withLock { $0.partitions[tp]?.leader = nil }
                    } else {
                        logger.warning("ListOffsets failed", metadata: [BrookLogKey.topic: "\(tp.topic)", BrookLogKey.partition: "\(tp.partition)", BrookLogKey.error: "\(code.summary)"])
                    }
                }
            }
            if stale { await cluster.invalidate() }
        }
        return result
    }

    /// One broker's fetch pipeline: a fetcher that sends fetches while there is prefetch room
    /// and reads only the batch headers of each response, and a decoder that decodes the
    /// responses in order meanwhile. The next fetch of a partition goes out as soon as its next
    /// position is known, rather than after its records are decoded.
    func fetchLoop(node: Int32) async {
        let (scans, queue) = AsyncStream.makeStream(of: (FetchPlan, FetchScan).self)
        let decoding = FetchDecoding(checkCRCs: configuration.fetch.checkCRCs, logger: logger)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.decodeLoop(scans, decoding) }
            // The fetcher runs on its connection's event loop (see EventLoopTaskExecutor); a
            // connection made later may land on another loop, which costs only a hop.
            let loop = (try? await cluster.connection(to: node))?.channel.eventLoop ?? cluster.group.next()
            await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                await fetcher(node: node, decoding: decoding, queue: queue)
            }
            queue.finish()
        }
    }

    private func fetcher(node: Int32, decoding: FetchDecoding, queue: AsyncStream<(FetchPlan, FetchScan)>.Continuation) async {
        let fetchConfig = configuration.fetch
        let policy = configuration.offsets.autoOffsetReset
        var failures = 0
        while !Task.isCancelled {
            let g = fetchSignal.generation
            guard let plan = state.withLock({ $0.planFetch(node: node, config: fetchConfig) }) else {
                if !isRunning { return }
                await fetchSignal.wait(since: g, timeout: .seconds(5))
                continue
            }
            do {
                let conn = try await cluster.connection(to: node)
                let version = try min(conn.version(for: .fetch), 12)
                let resp = try await conn.send(
                    fetchRequest(plan, config: fetchConfig), version: version, timeout: configuration.client.requestTimeout + fetchConfig.maxWait)
                if resp.errorCode != 0 {
                    throw KafkaClientError.broker(ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError, resource: "fetch from broker \(node)", message: nil)
                }
                let scan = decoding.scan(resp, plan: plan)
                let (errors, refresh) = state.withLock { $0.applyScan(plan, scan, policy: policy) }
                queue.yield((plan, scan))
                if errors { dataSignal.signal() }
                if refresh {
                    await cluster.invalidate()
                    fetchSignal.signal()
                }
                failures = 0
            } catch {
                failures += 1
                let leaderUnknown: Bool
                if let e = error as? KafkaClientError, e.code == .broker {
                    leaderUnknown = true
                } else {
                    leaderUnknown = failures >= 3
                    await cluster.connectionFailed(node)
                }
                state.withLock { $0.abandonFetch(plan, leaderUnknown: leaderUnknown) }
                if leaderUnknown {
                    await cluster.invalidate()
                    fetchSignal.signal()
                }
                if !isRunning { return }
                logger.debug("fetch failed", metadata: [BrookLogKey.broker: "\(node)", BrookLogKey.error: "\(error)"])
                try? await Task.sleep(for: configuration.client.retryBackoff * min(failures, 10))
            }
        }
    }

    /// Decodes scanned responses in the order they arrived and queues their records.
    private func decodeLoop(_ scans: AsyncStream<(FetchPlan, FetchScan)>, _ decoding: FetchDecoding) async {
        for await (plan, scan) in scans {
            let (decoded, compressed, decompressed) = decoding.decode(scan, plan: plan)
            let data = state.withLock { $0.applyDecoded(plan, scan, decoded, compressed: compressed, decompressed: decompressed) }
            if data { dataSignal.signal() }
            // The reservation became buffered records (prefetch room may differ) and compressed
            // partitions can be fetched again.
            fetchSignal.signal()
        }
    }

    private func fetchRequest(_ plan: FetchPlan, config: ConsumerConfiguration.Fetch) -> FetchRequest {
        var req = FetchRequest()
        req.replicaId = -1
        req.maxWaitMs = Int32(clamping: config.maxWait.milliseconds)
        req.minBytes = config.minBytes
        req.maxBytes = plan.maxBytes
        req.isolationLevel = 0
        req.sessionId = 0
        req.sessionEpoch = -1
        var topics: [FetchRequest.FetchTopic] = []
        for e in plan.entries {
            var p = FetchRequest.FetchPartition()
            p.partition = e.tp.partition
            p.fetchOffset = e.offset
            p.partitionMaxBytes = plan.partitionMaxBytes
            p.currentLeaderEpoch = -1
            p.logStartOffset = -1
            if let last = topics.last, last.topic == e.tp.topic {
                topics[topics.count - 1].partitions.append(p)
            } else {
                var t = FetchRequest.FetchTopic()
                t.topic = e.tp.topic
                t.partitions = [p]
                topics.append(t)
            }
        }
        req.topics = topics
        return req
    }
}
