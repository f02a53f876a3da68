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

    // MARK: - OffsetCommit / OffsetFetch

    func commitOffsets(_ offsets: [TopicPartition: Int64]) async throws {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        var attempt = 0
        while true {
            attempt += 1
            let (memberId, generation, manual) = state.withLock { ($0.group.memberId, $0.group.generation, $0.manual) }
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
            } catch {
                try await run(state.withLock { $0.group.offsetRequestFailed(error, attempt: attempt) }, on: conn)
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
            let action = state.withLock { s in
                for (tp, o) in done { s.partitions[tp]?.committed = o }
                return s.group.commitReceived(firstError, attempt: attempt)
            }
            if case .done = action {
                logger.trace("committed offsets", metadata: [BrookLogKey.offsets: "\(done.map { "\($0.key)@\($0.value)" }.sorted())"])
                return
            }
            try await run(action, on: conn)
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
            } catch {
                try await run(state.withLock { $0.group.offsetRequestFailed(error, attempt: attempt) }, on: conn)
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
            let action = state.withLock { $0.group.offsetFetchReceived(code, attempt: attempt) }
            if case .done = action { return result }
            try await run(action, on: conn)
        }
    }

    /// Runs what the membership decided about an OffsetCommit or OffsetFetch that did not
    /// succeed: returns to retry, throws otherwise.
    private func run(_ action: GroupMembershipStateMachine.OffsetRequestAction, on conn: BrokerConnection) async throws {
        switch action {
        case .done:
            return
        case .retry(let after, let rediscoverCoordinator):
            if rediscoverCoordinator { coordinatorUnknown(conn) }
            try await Task.sleep(for: after)
        case .fail(let error):
            throw error
        case .failLostGeneration(let error, let code):
            logger.warning("member is no longer in the group's generation", metadata: [BrookLogKey.reason: "commit", BrookLogKey.error: "\(code.summary)"])
            groupSignal.signal()
            throw error
        case .failFenced(let membership, let thrown):
            fail(membership)
            throw thrown
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
        let allowed = force || state.withLock { s in s.manual || s.group.isInGeneration }
        guard allowed else { return }
        let offsets = pendingCommits(of: tps)
        guard !offsets.isEmpty else { return }
        do {
            try await commitOffsets(offsets)
        } catch {
            logger.warning("auto-commit failed", metadata: [BrookLogKey.error: "\(error)"])
        }
    }
}
