import BrookProtocol
import NIOCore

/// Offsets (commit, fetch, delete, retention), the persisted view (what the offsets log
/// holds) and its compaction. Group administration is in `GroupCoordinatorState+Admin.swift`.
extension GroupCoordinatorState {
    // MARK: - OffsetCommit

    func commit(
        _ r: OffsetCommitRequest, version: Int16, now: Int64, waiter: CheckedContinuation<OffsetCommitResponse, Never>,
        _ effects: inout GroupEffects
    ) {
        var response = OffsetCommitResponse()
        response.topics = r.topics.map { t in
            var rt = OffsetCommitResponse.OffsetCommitResponseTopic()
            rt.name = t.name
            rt.partitions = t.partitions.map { p in
                var rp = OffsetCommitResponse.OffsetCommitResponsePartition()
                rp.partitionIndex = p.partitionIndex
                return rp
            }
            return rt
        }
        func failAll(_ e: ErrorCode) {
            for t in response.topics.indices {
                for p in response.topics[t].partitions.indices { response.topics[t].partitions[p].errorCode = e.rawValue }
            }
            effects.commits.append((waiter, response))
        }
        if let e = unavailableError { return failAll(e) }
        let generation = version >= 1 ? r.generationIdOrMemberEpoch : -1
        let memberId = version >= 1 ? r.memberId : ""
        let instanceId = version >= 7 ? r.groupInstanceId : nil
        let group: ClassicGroup
        if let g = groups[r.groupId] {
            group = g
        } else {
            // Unknown group: only a standalone consumer (no generation, no member) may commit,
            // which creates an Empty group that only stores offsets.
            guard generation < 0 else { return failAll(.illegalGeneration) }
            guard memberId.isEmpty, instanceId == nil else { return failAll(.unknownMemberId) }
            group = ClassicGroup(groupId: r.groupId, now: now)
            groups[r.groupId] = group
            recordGroupCount()
        }
        if let e = validateCommit(group, generation: generation, memberId: memberId, instanceId: instanceId) { return failAll(e) }
        switch group.state {
        case .dead:
            return failAll(.coordinatorNotAvailable)
        case .completingRebalance:
            // A valid member that has its JoinGroup response but not yet its assignment.
            return failAll(.rebalanceInProgress)
        case .stable, .preparingRebalance:
            // During PreparingRebalance commits are still accepted: the member learns about the
            // rebalance from its next heartbeat.
            if let m = group.member(memberId) { m.heartbeatDeadline = now + Int64(m.sessionTimeoutMs) }
        case .empty:
            break
        }
        var records: [ConsumerOffsets.Record] = []
        var partitions: [GroupTopicPartition] = []
        var slots: [(Int, Int)] = []
        for (ti, t) in r.topics.enumerated() {
            for (pi, p) in t.partitions.enumerated() {
                let metadata = p.committedMetadata ?? ""
                if metadata.utf8.count > config.offsetMetadataMaxBytes {
                    response.topics[ti].partitions[pi].errorCode = ErrorCode.offsetMetadataTooLarge.rawValue
                    continue
                }
                let timestamp = (version == 1 && p.commitTimestamp >= 0) ? p.commitTimestamp : now
                let value = OffsetCommitValue(
                    offset: p.committedOffset, leaderEpoch: version >= 6 ? p.committedLeaderEpoch : -1,
                    metadata: metadata, commitTimestamp: timestamp)
                let tp = GroupTopicPartition(topic: t.name, partition: p.partitionIndex)
                records.append(.offsetCommit(.init(group: r.groupId, topic: t.name, partition: p.partitionIndex), value))
                partitions.append(tp)
                slots.append((ti, pi))
            }
        }
        guard !records.isEmpty else {
            effects.commits.append((waiter, response))
            return
        }
        for tp in partitions { group.pendingOffsetCommits[tp, default: 0] += 1 }
        metrics.offsetCommits.increment(by: records.count)
        enqueue(
            OffsetsLogWrite(
                records: records,
                completion: .offsetCommit(group: r.groupId, partitions: partitions, response: response, slots: slots, waiter: waiter)),
            &effects)
    }

    /// Kafka's rules: a commit naming a member or generation must come from a current member of
    /// the current generation; an anonymous commit (generation -1, no member) only into a group
    /// without members.
    private func validateCommit(_ group: ClassicGroup, generation: Int32, memberId: String, instanceId: String?) -> ErrorCode? {
        if group.is(.dead) { return .coordinatorNotAvailable }
        if generation >= 0 || !memberId.isEmpty || instanceId != nil {
            if let instanceId {
                if group.staticMemberId(instanceId) == nil { return .unknownMemberId }
                if group.isStaticMemberFenced(instanceId: instanceId, memberId: memberId) { return .fencedInstanceId }
            } else if !group.has(memberId) {
                return .unknownMemberId
            }
            if generation != group.generationId { return .illegalGeneration }
            return nil
        }
        return group.is(.empty) ? nil : .unknownMemberId
    }

    // MARK: - OffsetFetch

    typealias FetchedTopic = (name: String, partitions: [(partition: Int32, value: OffsetCommitValue?)])

    /// Committed offsets of a group: the requested partitions (nil for unknown ones), or all of
    /// them when `topics` is nil.
    func fetchGroup(_ groupId: String, topics: [(String, [Int32])]?) -> [FetchedTopic] {
        let group = groups[groupId]
        if let topics {
            return topics.map { name, partitions in
                (name, partitions.map { p in (p, group?.offsets[GroupTopicPartition(topic: name, partition: p)]) })
            }
        }
        guard let group else { return [] }
        var byTopic: [String: [(partition: Int32, value: OffsetCommitValue?)]] = [:]
        for (tp, v) in group.offsets.sorted(by: { $0.key < $1.key }) {
            byTopic[tp.topic, default: []].append((tp.partition, v))
        }
        return byTopic.keys.sorted().map { ($0, byTopic[$0]!) }
    }

    func fetch(_ r: OffsetFetchRequest, version: Int16) -> OffsetFetchResponse {
        var response = OffsetFetchResponse()
        if version >= 8 {
            response.groups = r.groups.map { g in
                var rg = OffsetFetchResponse.OffsetFetchResponseGroup()
                rg.groupId = g.groupId
                if let e = unavailableError {
                    rg.errorCode = e.rawValue
                    return rg
                }
                rg.topics = fetchGroup(g.groupId, topics: g.topics?.map { ($0.name, $0.partitionIndexes) }).map { t in
                    var rt = OffsetFetchResponse.OffsetFetchResponseTopics()
                    rt.name = t.name
                    rt.partitions = t.partitions.map { p in
                        var rp = OffsetFetchResponse.OffsetFetchResponsePartitions()
                        rp.partitionIndex = p.partition
                        rp.committedOffset = p.value?.offset ?? -1
                        rp.committedLeaderEpoch = p.value?.leaderEpoch ?? -1
                        rp.metadata = p.value?.metadata ?? ""
                        return rp
                    }
                    return rt
                }
                return rg
            }
            return response
        }
        // v0–1 cannot ask for all topics.
        let requested = (version >= 2 ? r.topics : (r.topics ?? [])).map { $0.map { ($0.name, $0.partitionIndexes) } }
        if let e = unavailableError {
            if version >= 2 {
                response.errorCode = e.rawValue
            } else {
                response.topics = fetchGroup("", topics: requested ?? []).map { t in
                    var rt = OffsetFetchResponse.OffsetFetchResponseTopic()
                    rt.name = t.name
                    rt.partitions = t.partitions.map { p in
                        var rp = OffsetFetchResponse.OffsetFetchResponsePartition()
                        rp.partitionIndex = p.partition
                        rp.committedOffset = -1
                        rp.metadata = ""
                        rp.errorCode = e.rawValue
                        return rp
                    }
                    return rt
                }
            }
            return response
        }
        response.topics = fetchGroup(r.groupId, topics: requested).map { t in
            var rt = OffsetFetchResponse.OffsetFetchResponseTopic()
            rt.name = t.name
            rt.partitions = t.partitions.map { p in
                var rp = OffsetFetchResponse.OffsetFetchResponsePartition()
                rp.partitionIndex = p.partition
                rp.committedOffset = p.value?.offset ?? -1
                rp.committedLeaderEpoch = p.value?.leaderEpoch ?? -1
                rp.metadata = p.value?.metadata ?? ""
                return rp
            }
            return rt
        }
        return response
    }

    // MARK: - OffsetDelete / deleted topics

    func deleteOffsets(_ r: OffsetDeleteRequest, now: Int64, waiter: CheckedContinuation<Void, Never>, _ effects: inout GroupEffects) -> OffsetDeleteResponse {
        var response = OffsetDeleteResponse()
        func done(_ e: ErrorCode) -> OffsetDeleteResponse {
            response.errorCode = e.rawValue
            effects.acks.append(waiter)
            return response
        }
        if let e = unavailableError { return done(e) }
        guard let g = groups[r.groupId], !g.is(.dead) else { return done(.groupIdNotFound) }
        var subscribed: (String) -> Bool = { _ in false }
        switch g.state {
        case .empty, .dead:
            break
        case .preparingRebalance, .completingRebalance, .stable:
            guard g.protocolType == ConsumerProtocol.protocolType else { return done(.nonEmptyGroup) }
            let topics = g.subscribedTopics()
            subscribed = { topics?.contains($0) ?? true }
        }
        var records: [ConsumerOffsets.Record] = []
        response.topics = r.topics.map { t in
            var rt = OffsetDeleteResponse.OffsetDeleteResponseTopic()
            rt.name = t.name
            let isSubscribed = subscribed(t.name)
            rt.partitions = t.partitions.map { p in
                var rp = OffsetDeleteResponse.OffsetDeleteResponsePartition()
                rp.partitionIndex = p.partitionIndex
                if isSubscribed {
                    rp.errorCode = ErrorCode.groupSubscribedToTopic.rawValue
                } else if g.offsets.removeValue(forKey: GroupTopicPartition(topic: t.name, partition: p.partitionIndex)) != nil {
                    records.append(.offsetCommit(.init(group: r.groupId, topic: t.name, partition: p.partitionIndex), nil))
                }
                return rp
            }
            return rt
        }
        finishTombstones(records, waiter: waiter, &effects)
        return response
    }

    /// Drops every group's offsets of a deleted topic.
    func removeOffsets(forTopic topic: String, waiter: CheckedContinuation<Void, Never>, _ effects: inout GroupEffects) {
        var records: [ConsumerOffsets.Record] = []
        for g in groups.values {
            for tp in g.offsets.keys where tp.topic == topic {
                g.offsets.removeValue(forKey: tp)
                records.append(.offsetCommit(.init(group: g.groupId, topic: topic, partition: tp.partition), nil))
            }
        }
        finishTombstones(records, waiter: waiter, &effects)
    }

    /// Answers `waiter` once `records` (tombstones) are written; at once when there are none.
    func finishTombstones(_ records: [ConsumerOffsets.Record], waiter: CheckedContinuation<Void, Never>, _ effects: inout GroupEffects) {
        if records.isEmpty {
            effects.acks.append(waiter)
        } else {
            enqueue(OffsetsLogWrite(records: records, completion: .ack(waiter)), &effects)
        }
    }

    // MARK: - retention

    /// Kafka's expiry rules (KIP-211): offsets of a group with members expire only for topics no
    /// member subscribes to; once the group is empty, all its offsets expire `offsetsRetentionMs`
    /// after it became empty; standalone consumers' offsets expire that long after their commit.
    func expiredOffsets(_ g: ClassicGroup, now: Int64) -> [GroupTopicPartition] {
        let retention = config.offsetsRetentionMs
        func expired(_ v: OffsetCommitValue, base: Int64) -> Bool {
            // Only version 1 carries a per-commit expiry; -1 elsewhere.
            if v.expireTimestamp >= 0 { return now >= v.expireTimestamp }
            return now - base >= retention
        }
        let candidates = g.offsets.filter { g.pendingOffsetCommits[$0.key] == nil }
        if g.protocolType == nil {
            return candidates.filter { expired($0.value, base: $0.value.commitTimestamp) }.map(\.key)
        }
        if g.is(.empty) {
            return candidates.filter { expired($0.value, base: g.stateTimestamp ?? $0.value.commitTimestamp) }.map(\.key)
        }
        if g.protocolType == ConsumerProtocol.protocolType && g.is(.stable), let subscribed = g.subscribedTopics() {
            return candidates.filter { !subscribed.contains($0.key.topic) && expired($0.value, base: $0.value.commitTimestamp) }
                .map(\.key)
        }
        return []
    }

    /// Expires offsets, then removes groups left empty with no offsets (Kafka's cleanup).
    func expireOffsetsAndCleanup(now: Int64, _ effects: inout GroupEffects) {
        guard now >= nextRetentionCheck else { return }
        nextRetentionCheck = now + config.offsetsRetentionCheckIntervalMs
        var records: [ConsumerOffsets.Record] = []
        var expiredCount = 0
        for id in groups.keys.sorted() {
            guard let g = groups[id] else { continue }
            for tp in expiredOffsets(g, now: now).sorted() {
                g.offsets.removeValue(forKey: tp)
                records.append(.offsetCommit(.init(group: id, topic: tp.topic, partition: tp.partition), nil))
                expiredCount += 1
            }
            if g.is(.empty) && g.isEmptyOfMembers && g.offsets.isEmpty && g.pendingMembers.isEmpty && g.pendingOffsetCommits.isEmpty {
                g.transition(to: .dead, now: now)
                groups.removeValue(forKey: id)
                if g.persistedMetadata != nil || g.generationId > 0 || g.protocolType != nil {
                    records.append(.groupMetadata(group: id, nil))
                }
                logger.debug("removed empty group", metadata: [BrookLogKey.group: "\(id)"])
            }
        }
        if expiredCount > 0 {
            metrics.expiredOffsets.increment(by: expiredCount)
            logger.info("expired committed offsets", metadata: [BrookLogKey.count: "\(expiredCount)"])
        }
        recordGroupCount()
        if !records.isEmpty { enqueue(OffsetsLogWrite(records: records, completion: .none), &effects) }
    }

    // MARK: - the persisted view

    /// Applies one record of the offsets log to the in-memory view of it — the same function for
    /// loading and for writes once durable, so memory always equals a replay of the log. Writes
    /// are applied in log order, after the append returned.
    func applyPersisted(_ record: ConsumerOffsets.Record, now: Int64, loading: Bool) {
        switch record {
        case .offsetCommit(let k, let v):
            let tp = GroupTopicPartition(topic: k.topic, partition: k.partition)
            if let v {
                let g: ClassicGroup
                if let existing = groups[k.group] {
                    g = existing
                } else {
                    g = ClassicGroup(groupId: k.group, now: now)
                    groups[k.group] = g
                }
                g.offsets[tp] = v
            } else {
                groups[k.group]?.offsets.removeValue(forKey: tp)
            }
        case .groupMetadata(let id, let v):
            if let v {
                if let g = groups[id] {
                    g.persistedMetadata = v
                } else if loading {
                    let g = ClassicGroup(groupId: id, now: now)
                    g.persistedMetadata = v
                    groups[id] = g
                }
            } else {
                groups[id]?.persistedMetadata = nil
            }
        }
    }

    /// After replaying the log: groups with metadata get their members back (Stable, sessions
    /// restarting now); groups with neither metadata nor offsets are dropped.
    func finishLoad(now: Int64) {
        for (id, g) in groups {
            if let v = g.persistedMetadata {
                g.restore(from: v, now: now)
            } else if g.offsets.isEmpty {
                groups.removeValue(forKey: id)
            }
        }
        isLoaded = true
        nextRetentionCheck = now + config.offsetsRetentionCheckIntervalMs
        recordGroupCount()
    }

    /// Runs the completions of writes, in the order they were appended.
    func completeWrites(_ jobs: [OffsetsLogWrite], success: Bool, now: Int64, _ effects: inout GroupEffects) {
        for job in jobs {
            if success {
                for record in job.records { applyPersisted(record, now: now, loading: false) }
            }
            switch job.completion {
            case .none:
                break
            case .ack(let w):
                effects.acks.append(w)
            case .offsetCommit(let groupId, let partitions, var response, let slots, let waiter):
                if let g = groups[groupId] {
                    for tp in partitions {
                        if let n = g.pendingOffsetCommits[tp], n > 1 {
                            g.pendingOffsetCommits[tp] = n - 1
                        } else {
                            g.pendingOffsetCommits.removeValue(forKey: tp)
                        }
                    }
                }
                if !success {
                    for (t, p) in slots { response.topics[t].partitions[p].errorCode = ErrorCode.coordinatorNotAvailable.rawValue }
                }
                effects.commits.append((waiter, response))
            case .syncAssignment(let groupId, let generation, let assignments):
                guard let g = groups[groupId], g.is(.completingRebalance), g.generationId == generation else { break }
                if success {
                    setAndPropagateAssignment(g, assignments, now: now, &effects)
                    g.transition(to: .stable, now: now)
                } else {
                    resetAndPropagateAssignmentError(g, .coordinatorNotAvailable, &effects)
                    maybePrepareRebalance(g, now: now, reason: "failed to persist the assignment", &effects)
                }
            case .staticMemberRejoin(let groupId, let generation, let memberId, let leaderId):
                guard let g = groups[groupId], let m = g.member(memberId), let w = m.joinWaiter else { break }
                // A rebalance that started meanwhile answers the join itself.
                if g.is(.preparingRebalance) { break }
                m.joinWaiter = nil
                if success && g.generationId == generation {
                    effects.resume(w, currentGenerationResult(g, for: m, includeMembers: false, leaderId: leaderId))
                } else {
                    effects.resume(w, .failure(.coordinatorNotAvailable, memberId: memberId))
                }
            }
        }
    }

    // MARK: - compaction

    /// Live keys of the log: one per committed offset and per group with metadata.
    var liveRecordCount: Int64 {
        groups.values.reduce(Int64(0)) { $0 + Int64($1.offsets.count) + ($1.persistedMetadata == nil ? 0 : 1) }
    }

    func shouldCompact(logRecords: Int64) -> Bool {
        guard logRecords > config.compactionThresholdRecords else { return false }
        return Double(logRecords) > config.compactionRatio * Double(liveRecordCount)
    }

    /// The latest value of every live key (what log compaction would keep, minus tombstones).
    func snapshotRecords() -> [ConsumerOffsets.Record] {
        var records: [ConsumerOffsets.Record] = []
        records.reserveCapacity(Int(liveRecordCount))
        for id in groups.keys.sorted() {
            guard let g = groups[id] else { continue }
            if let v = g.persistedMetadata { records.append(.groupMetadata(group: id, v)) }
            for (tp, v) in g.offsets.sorted(by: { $0.key < $1.key }) {
                records.append(.offsetCommit(.init(group: id, topic: tp.topic, partition: tp.partition), v))
            }
        }
        return records
    }
}
