import BrookProtocol
import Logging
import NIOCore

extension KafkaConsumer {
    // MARK: - public commit API

    /// Commits the position of every assigned partition: the offset after the last record handed
    /// out (including the one being processed). Throws ``KafkaConsumerError/commitFailed(_:)`` if
    /// the group rebalanced meanwhile.
    public func commit() async throws {
        let offsets = state.withLock { s in
            s.partitions.compactMapValues { p -> Int64? in
                guard !p.revoking, let pos = p.position, pos != p.committed else { return nil }
                return pos
            }
        }
        try await commit(offsets: offsets)
    }

    /// Commits these offsets (each the offset of the *next* record to consume, as in Kafka).
    public func commit(offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        try await commitOffsets(offsets)
    }

    /// The group's committed offsets of these partitions (nil where none).
    public func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await fetchCommittedOffsets(partitions)
    }

    // MARK: - coordinator connection

    /// A dedicated connection to the group coordinator (its own socket, so that JoinGroup and
    /// heartbeats never wait behind fetch long-polls).
    func coordinatorConnection() async throws -> BrokerConnection {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        if let c = state.withLock({ $0.coordinator }), c.isActive { return c }
        if state.withLock({ $0.lifecycle == .closed }) { throw KafkaConsumerError.closed }
        let shared = try await cluster.coordinator(forGroup: group)
        let conn = try await BrokerConnection.connect(
            to: shared.address, nodeId: shared.nodeId, config: configuration.client, eventLoopGroup: cluster.group, logger: logger)
        let (winner, loser) = state.withLock { s -> (BrokerConnection, BrokerConnection?) in
            if let c = s.coordinator, c.isActive { return (c, conn) }
            s.coordinator = conn
            return (conn, nil)
        }
        loser?.close()
        logger.debug("group coordinator", metadata: ["kafka.broker": "\(shared.nodeId) \(shared.address)"])
        return winner
    }

    /// Forgets the coordinator (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, connection failures).
    func coordinatorUnknown(_ conn: BrokerConnection? = nil) {
        let old = state.withLock { s -> BrokerConnection? in
            guard let c = s.coordinator, conn == nil || c === conn else { return nil }
            s.coordinator = nil
            return c
        }
        old?.close()
    }

    // MARK: - OffsetCommit / OffsetFetch

    func commitOffsets(_ offsets: [TopicPartition: Int64]) async throws {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        var attempt = 0
        while true {
            attempt += 1
            let (memberId, generation, manual) = state.withLock { ($0.memberId, $0.generation, $0.manual) }
            let conn = try await coordinatorConnection()
            var req = OffsetCommitRequest()
            req.groupId = group
            // A manually assigned consumer commits as a standalone consumer (no generation).
            req.generationIdOrMemberEpoch = manual ? -1 : generation
            req.memberId = manual ? "" : memberId
            req.groupInstanceId = manual ? nil : configuration.group.groupInstanceId
            req.retentionTimeMs = -1
            var byTopic: [String: [OffsetCommitRequest.OffsetCommitRequestPartition]] = [:]
            for (tp, offset) in offsets {
                var p = OffsetCommitRequest.OffsetCommitRequestPartition()
                p.partitionIndex = tp.partition
                p.committedOffset = offset
                p.committedLeaderEpoch = -1
                p.commitTimestamp = -1
                p.committedMetadata = ""
                byTopic[tp.topic, default: []].append(p)
            }
            req.topics = byTopic.sorted { $0.key < $1.key }.map { name, parts in
                var t = OffsetCommitRequest.OffsetCommitRequestTopic()
                t.name = name
                t.partitions = parts.sorted { $0.partitionIndex < $1.partitionIndex }
                return t
            }
            let resp: OffsetCommitResponse
            do {
                resp = try await conn.send(req)
            } catch let e as KafkaClientError where e.isRetriable && attempt < 5 {
                coordinatorUnknown(conn)
                try await Task.sleep(for: configuration.client.retryBackoff)
                continue
            }
            var firstError: ErrorCode = .none
            var done: [TopicPartition: Int64] = [:]
            for t in resp.topics {
                for p in t.partitions {
                    let tp = TopicPartition(topic: t.name, partition: p.partitionIndex)
                    let code = ErrorCode(rawValue: p.errorCode) ?? .unknownServerError
                    if code == .none {
                        if let o = offsets[tp] { done[tp] = o }
                    } else if firstError == .none {
                        firstError = code
                    }
                }
            }
            state.withLock { s in
                for (tp, o) in done { s.partitions[tp]?.committed = o }
            }
            switch firstError {
            case .none:
                logger.trace("committed offsets", metadata: ["offsets": "\(done.map { "\($0.key)@\($0.value)" }.sorted())"])
                return
            case .notCoordinator, .coordinatorNotAvailable, .requestTimedOut:
                guard attempt < 5 else { throw KafkaClientError.broker(firstError, resource: "group \(group)", message: "OffsetCommit") }
                coordinatorUnknown(conn)
                try await Task.sleep(for: configuration.client.retryBackoff)
            case .coordinatorLoadInProgress:
                guard attempt < 10 else { throw KafkaClientError.broker(firstError, resource: "group \(group)", message: "OffsetCommit") }
                try await Task.sleep(for: configuration.client.retryBackoff * attempt)
            case .rebalanceInProgress:
                throw KafkaConsumerError.commitFailed("the group is rebalancing (REBALANCE_IN_PROGRESS)")
            case .illegalGeneration, .unknownMemberId:
                memberFailed(firstError, reason: "commit")
                throw KafkaConsumerError.commitFailed("the group moved on without this member (\(firstError.name))")
            case .fencedInstanceId:
                fail(.fenced("group instance id \(configuration.group.groupInstanceId ?? "") is used by another consumer"))
                throw KafkaConsumerError.fenced("commit refused: FENCED_INSTANCE_ID")
            default:
                throw KafkaClientError.broker(firstError, resource: "group \(group)", message: "OffsetCommit")
            }
        }
    }

    func fetchCommittedOffsets(_ tps: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        guard !tps.isEmpty else { return [:] }
        var attempt = 0
        while true {
            attempt += 1
            let conn = try await coordinatorConnection()
            var req = OffsetFetchRequest()
            req.groupId = group
            var byTopic: [String: [Int32]] = [:]
            for tp in tps { byTopic[tp.topic, default: []].append(tp.partition) }
            req.topics = byTopic.sorted { $0.key < $1.key }.map { name, parts in
                var t = OffsetFetchRequest.OffsetFetchRequestTopic()
                t.name = name
                t.partitionIndexes = parts.sorted()
                return t
            }
            req.requireStable = false
            let version = try min(conn.version(for: .offsetFetch), 7)
            let resp: OffsetFetchResponse
            do {
                resp = try await conn.send(req, version: max(version, 1))
            } catch let e as KafkaClientError where e.isRetriable && attempt < 5 {
                coordinatorUnknown(conn)
                try await Task.sleep(for: configuration.client.retryBackoff)
                continue
            }
            var code = ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError
            var result: [TopicPartition: Int64] = [:]
            for t in resp.topics {
                for p in t.partitions {
                    let pc = ErrorCode(rawValue: p.errorCode) ?? .unknownServerError
                    if pc != .none {
                        if code == .none { code = pc }
                        continue
                    }
                    if p.committedOffset >= 0 { result[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset }
                }
            }
            switch code {
            case .none:
                return result
            case .notCoordinator, .coordinatorNotAvailable:
                guard attempt < 5 else { throw KafkaClientError.broker(code, resource: "group \(group)", message: "OffsetFetch") }
                coordinatorUnknown(conn)
                try await Task.sleep(for: configuration.client.retryBackoff)
            case .coordinatorLoadInProgress, .unstableOffsetCommit:
                guard attempt < 20 else { throw KafkaClientError.broker(code, resource: "group \(group)", message: "OffsetFetch") }
                try await Task.sleep(for: configuration.client.retryBackoff * min(attempt, 5))
            default:
                throw KafkaClientError.broker(code, resource: "group \(group)", message: "OffsetFetch")
            }
        }
    }

    // MARK: - auto-commit

    /// Processed positions not committed yet (of partitions not being revoked).
    func pendingCommits(of tps: Set<TopicPartition>? = nil) -> [TopicPartition: Int64] {
        state.withLock { s in
            var out: [TopicPartition: Int64] = [:]
            for (tp, p) in s.partitions where tps?.contains(tp) ?? !p.revoking {
                if let processed = p.processed, processed != p.committed { out[tp] = processed }
            }
            return out
        }
    }

    func runAutoCommit() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.offsets.autoCommitInterval)
            } catch {
                return
            }
            await autoCommit()
        }
    }

    /// Commits processed positions if the consumer is in a generation (or manually assigned).
    func autoCommit(_ tps: Set<TopicPartition>? = nil, force: Bool = false) async {
        let allowed = force || state.withLock { s in s.manual || (s.phase == .stable && s.generation >= 0) }
        guard allowed else { return }
        let offsets = pendingCommits(of: tps)
        guard !offsets.isEmpty else { return }
        do {
            try await commitOffsets(offsets)
        } catch {
            logger.warning("auto-commit failed", metadata: ["error": "\(error)"])
        }
    }
}
