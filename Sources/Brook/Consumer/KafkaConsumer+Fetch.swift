import BrookProtocol
import Logging
import NIOCore

/// One partition of a fetch request, with the epoch it was planned under.
struct FetchPlanEntry {
    var tp: TopicPartition
    var epoch: UInt64
    var offset: Int64
}

struct FetchPlan {
    var entries: [FetchPlanEntry]
    var maxBytes: Int32
    var partitionMaxBytes: Int32
    var reserved: Int
}

/// What a fetch response said about one partition, decoded outside the lock.
enum FetchOutcome: Sendable {
    case data(DecodedChunk?, highWatermark: Int64, logStartOffset: Int64)
    case outOfRange
    case leaderChanged(ErrorCode)
    case failed(any Error)
    case retry(ErrorCode)
}

extension ConsumerState {
    /// Partitions led by `node` that can be fetched now, within the prefetch budget.
    mutating func planFetch(node: Int32, config: ConsumerConfiguration.Fetch) -> FetchPlan? {
        guard lifecycle == .running else { return nil }
        guard prefetchHasRoom(bound: config.maxPrefetchBytes) else { return nil }
        let budget = config.maxPrefetchBytes - bufferedBytes - reservedBytes
        var tps = partitions.compactMap { tp, p in p.leader == node && p.isFetchable ? tp : nil }
        guard !tps.isEmpty else { return nil }
        tps.sort()
        // Rotate the order so that partitions take turns being first (the first one always
        // gets at least one batch; the response's byte limit may starve the last ones).
        fetchRotation &+= 1
        let shift = fetchRotation % tps.count
        tps = Array(tps[shift...] + tps[..<shift])
        // Brokers share the room left: each fetch may decode up to its reservation (plus one
        // batch), and asks for what that should compress to.
        let leaders = Set(partitions.values.compactMap { $0.isFetchable || $0.fetching ? $0.leader : nil }).count
        let reserved = max(budget / max(leaders, 1), 1)
        let maxBytes = Int32(clamping: min(Int(config.maxBytes), max(Int(Double(reserved) / expansion), 1)))
        let partitionMax = min(config.maxPartitionBytes, maxBytes)
        var entries: [FetchPlanEntry] = []
        entries.reserveCapacity(tps.count)
        for tp in tps {
            let p = partitions[tp]!
            p.fetching = true
            entries.append(FetchPlanEntry(tp: tp, epoch: p.epoch, offset: p.fetchPosition!))
        }
        reservedBytes += reserved
        return FetchPlan(entries: entries, maxBytes: maxBytes, partitionMaxBytes: partitionMax, reserved: reserved)
    }

    /// Applies a fetch's outcomes. Returns (records arrived, metadata refresh needed).
    mutating func applyFetch(
        _ plan: FetchPlan, _ outcomes: [TopicPartition: FetchOutcome], policy: AutoOffsetReset,
        compressed: Int, decompressed: Int
    ) -> (data: Bool, refresh: Bool) {
        reservedBytes -= plan.reserved
        if compressed > 0 {
            let ratio = max(Double(decompressed) / Double(compressed), 1)
            expansion = expansion * 0.7 + ratio * 0.3
        }
        var data = false
        var refresh = false
        for e in plan.entries {
            guard let p = partitions[e.tp], p.epoch == e.epoch else { continue }
            p.fetching = false
            guard let outcome = outcomes[e.tp] else { continue }
            switch outcome {
            case .data(let chunk, let hw, let logStart):
                if hw >= 0 { p.highWatermark = hw }
                if logStart >= 0 { p.logStartOffset = logStart }
                if let chunk {
                    p.fetchPosition = chunk.nextOffset
                    chunks.append(FetchedChunk(chunk, partition: p))
                    bufferedBytes += chunk.bytes
                    data = true
                }
            case .outOfRange:
                p.epoch = nextEpoch()
                p.position = nil
                p.fetchPosition = nil
                p.need = .reset(policy)
                if inFlight?.tp == e.tp { inFlight = nil }
                dropChunks { $0.tp == e.tp }
                refresh = true
            case .leaderChanged:
                p.leader = nil
                refresh = true
            case .failed(let error):
                p.failed = true
                errors.append(error)
                data = true
            case .retry:
                break
            }
        }
        return (data, refresh)
    }

    /// Clears the in-flight marks of a fetch that failed as a whole.
    mutating func abandonFetch(_ plan: FetchPlan, leaderUnknown: Bool) {
        reservedBytes -= plan.reserved
        for e in plan.entries {
            guard let p = partitions[e.tp], p.epoch == e.epoch else { continue }
            p.fetching = false
            if leaderUnknown { p.leader = nil }
        }
    }
}

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
                    logger.debug("resolving positions or leaders failed; retrying", metadata: ["error": "\(error)"])
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
                logger.debug("committed offset", metadata: ["kafka.topic": "\(tp.topic)", "kafka.partition": "\(tp.partition)", "kafka.offset": "\(offset)"])
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
                        logger.debug("offset reset", metadata: ["kafka.topic": "\(tp.topic)", "kafka.partition": "\(tp.partition)", "kafka.offset": "\(o)", "timestamp": "\(timestamp)"])
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
                        logger.warning("ListOffsets failed", metadata: ["kafka.topic": "\(tp.topic)", "kafka.partition": "\(tp.partition)", "error": "\(code.summary)"])
                    }
                }
            }
            if stale { await cluster.invalidate() }
        }
        return result
    }

    /// One broker's fetch loop: fetches the partitions it leads, as long as there is prefetch room.
    func fetchLoop(node: Int32) async {
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
                var req = FetchRequest()
                req.replicaId = -1
                req.maxWaitMs = Int32(clamping: consumerMillis(fetchConfig.maxWait))
                req.minBytes = fetchConfig.minBytes
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
                let resp = try await conn.send(req, version: version, timeout: configuration.client.requestTimeout + fetchConfig.maxWait)
                if resp.errorCode != 0 {
                    throw KafkaClientError.broker(ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError, resource: "fetch from broker \(node)", message: nil)
                }
                let (outcomes, compressed, decompressed) = decodeFetch(resp, plan: plan)
                let (data, refresh) = state.withLock { s in
                    s.applyFetch(plan, outcomes, policy: policy, compressed: compressed, decompressed: decompressed)
                }
                if data { dataSignal.signal() }
                if refresh {
                    await cluster.invalidate()
                    fetchSignal.signal()
                }
                failures = 0
            } catch {
                failures += 1
                let leaderUnknown: Bool
                if let e = error as? KafkaClientError, case .broker = e {
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
                logger.debug("fetch failed", metadata: ["kafka.broker": "\(node)", "error": "\(error)"])
                try? await Task.sleep(for: configuration.client.retryBackoff * min(failures, 10))
            }
        }
    }

    /// Decodes (and decompresses) the records of a fetch response into chunks.
    func decodeFetch(_ resp: FetchResponse, plan: FetchPlan) -> ([TopicPartition: FetchOutcome], compressed: Int, decompressed: Int) {
        var offsets: [TopicPartition: Int64] = [:]
        for e in plan.entries { offsets[e.tp] = e.offset }
        let epochs = Dictionary(plan.entries.map { ($0.tp, $0.epoch) }, uniquingKeysWith: { a, _ in a })
        var outcomes: [TopicPartition: FetchOutcome] = [:]
        var compressed = 0
        var decompressed = 0
        let checkCRCs = configuration.fetch.checkCRCs
        // Decompressed bytes this fetch may add to the prefetch buffer: batches beyond it are
        // dropped (and fetched again later), except the first, so that there is progress.
        var room = plan.reserved
        var decodedAny = false
        for t in resp.responses {
            for pd in t.partitions {
                let tp = TopicPartition(topic: t.topic, partition: pd.partitionIndex)
                guard let fetchOffset = offsets[tp], let epoch = epochs[tp] else { continue }
                let code = ErrorCode(rawValue: pd.errorCode) ?? .unknownServerError
                switch code {
                case .none:
                    break
                case .offsetOutOfRange:
                    logger.info("fetch offset out of range; resetting", metadata: ["kafka.topic": "\(tp.topic)", "kafka.partition": "\(tp.partition)", "kafka.offset": "\(fetchOffset)"])
                    outcomes[tp] = .outOfRange
                    continue
                case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch, .unknownLeaderEpoch,
                    .kafkaStorageError, .replicaNotAvailable, .unknownTopicId, .offsetNotAvailable:
                    outcomes[tp] = .leaderChanged(code)
                    continue
                default:
                    if code.isRetriable {
                        outcomes[tp] = .retry(code)
                    } else {
                        outcomes[tp] = .failed(KafkaClientError.broker(code, resource: "\(tp)", message: nil))
                    }
                    continue
                }
                guard let records = pd.records, records.readableBytes > 0 else {
                    outcomes[tp] = .data(nil, highWatermark: pd.highWatermark, logStartOffset: pd.logStartOffset)
                    continue
                }
                do {
                    let (chunk, c, d) = try decodeChunk(
                        tp, epoch: epoch, fetchOffset: fetchOffset, records: records, highWatermark: pd.highWatermark,
                        checkCRCs: checkCRCs, room: &room, decodedAny: &decodedAny)
                    compressed += c
                    decompressed += d
                    outcomes[tp] = .data(chunk, highWatermark: pd.highWatermark, logStartOffset: pd.logStartOffset)
                } catch {
                    logger.error("undecodable records", metadata: ["kafka.topic": "\(tp.topic)", "kafka.partition": "\(tp.partition)", "kafka.offset": "\(fetchOffset)", "error": "\(error)"])
                    outcomes[tp] = .failed(error)
                }
            }
        }
        return (outcomes, compressed, decompressed)
    }

    /// The records at or after `fetchOffset` in `records` (skipping control batches), with
    /// their decompressed size.
    func decodeChunk(
        _ tp: TopicPartition, epoch: UInt64, fetchOffset: Int64, records: ByteBuffer, highWatermark: Int64, checkCRCs: Bool,
        room: inout Int, decodedAny: inout Bool
    ) throws -> (DecodedChunk?, compressed: Int, decompressed: Int) {
        var iterator = RecordBatchIterator(records)
        var out: [ConsumerRecord] = []
        var next = fetchOffset
        var bytes = 0
        var compressed = 0
        var decompressed = 0
        var sawBatch = false
        while let batch = try iterator.next() {
            let h = batch.header
            guard h.nextOffset > fetchOffset else { continue }
            if h.isControl {
                sawBatch = true
                next = max(next, h.nextOffset)
                continue
            }
            if room <= 0 && decodedAny { break }
            sawBatch = true
            next = max(next, h.nextOffset)
            if checkCRCs { try batch.verifyCRC() }
            var payload = try batch.uncompressedPayload()
            let n = Int(max(h.recordCount, 0))
            // The decoded records cost memory too (~100 B each beyond their bytes): count them,
            // so that the prefetch bound holds for small records as well; the expansion ratio
            // includes them, so fetches ask for what fits once decoded.
            let footprint = payload.readableBytes + n * MemoryLayout<ConsumerRecord>.stride
            bytes += footprint
            room -= footprint
            decodedAny = true
            compressed += batch.bytes.readableBytes
            decompressed += footprint + RecordBatchHeader.size
            let type = h.timestampType
            if out.capacity < out.count + n {
                // Geometric growth: reserving exactly per batch would copy the array every batch.
                out.reserveCapacity(max(out.count + n, out.capacity * 2))
            }
            for _ in 0..<n {
                let r = try Record.decode(from: &payload)
                let offset = h.baseOffset &+ Int64(r.offsetDelta)
                guard offset >= fetchOffset else { continue }
                out.append(
                    ConsumerRecord(
                        topic: tp.topic, partition: tp.partition, offset: offset, timestamp: h.timestamp(delta: r.timestampDelta),
                        timestampType: type, key: r.key, value: r.value, headers: r.headers, leaderEpoch: h.partitionLeaderEpoch))
            }
        }
        // Only a partial batch (larger than the size limit): nothing yet.
        guard sawBatch else { return (nil, 0, 0) }
        let chunk = DecodedChunk(tp: tp, epoch: epoch, records: out, nextOffset: next, bytes: bytes, highWatermark: highWatermark)
        return (chunk, compressed, decompressed)
    }
}
