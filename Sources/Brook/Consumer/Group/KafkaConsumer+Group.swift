import BrookProtocol
import Logging
import NIOCore

/// Start over with a new JoinGroup at once (the member id or generation changed).
struct RejoinNow: Error {}

extension KafkaConsumer {
    // MARK: - failures

    /// A fatal group error: reported to the application, membership ends.
    func fail(_ error: KafkaConsumerError) {
        let first = state.withLock { s -> Bool in
            guard s.fatal == nil else { return false }
            s.fatal = error
            s.errors.append(error)
            s.group.ended()
            // The group's partitions are no longer this consumer's.
            if !s.manual { s.remove(Set(s.partitions.keys)) }
            return true
        }
        if first { logger.error("consumer group membership failed", metadata: [BrookLogKey.error: "\(error)"]) }
        dataSignal.signal()
        groupSignal.signal()
    }

    /// The coordinator no longer counts this member in its generation (the membership state
    /// already requested a rejoin): say so and wake the group task.
    func generationLost(_ code: ErrorCode, reason: String) {
        logger.warning("member is no longer in the group's generation", metadata: [BrookLogKey.reason: "\(reason)", BrookLogKey.error: "\(code.summary)"])
        groupSignal.signal()
    }

    /// Runs a rejoin the membership decided on: the rebalance starts over.
    func run(_ rejoin: Rejoin, reason: String, on conn: BrokerConnection) async throws -> Never {
        if let code = rejoin.lostGeneration { generationLost(code, reason: reason) }
        if let code = rejoin.warning {
            logger.warning("\(reason) refused; rejoining", metadata: [BrookLogKey.error: "\(code.summary)"])
        }
        if rejoin.rediscoverCoordinator { coordinatorUnknown(conn) }
        if rejoin.after > .zero { try await Task.sleep(for: rejoin.after) }
        throw RejoinNow()
    }

    /// Sends a request that may wait long (JoinGroup, SyncGroup); cancelling the task closes
    /// the connection so that the request ends at once.
    func sendCancellable<R: KafkaRequestMessage>(_ request: R, on conn: BrokerConnection, timeout: Duration) async throws -> R.Response {
        try await withTaskCancellationHandler {
            try await conn.send(request, timeout: timeout)
        } onCancel: {
            conn.close()
        }
    }

    var longRequestTimeout: Duration { configuration.group.rebalanceTimeout + configuration.client.requestTimeout }

    // MARK: - the group task

    func runGroupLoop() async {
        var lastMetadataCheck = ContinuousClock.now
        while !Task.isCancelled {
            let g = groupSignal.generation
            let (running, topics, rejoin, fatal, leader) = state.withLock { s in
                (s.lifecycle == .running, s.subscription, s.group.rejoinNeeded, s.fatal != nil, s.group.isLeader)
            }
            guard running, !fatal else { return }
            guard let topics else {
                await groupSignal.wait(since: g)
                continue
            }
            if rejoin {
                do {
                    try await rebalance(topics: topics)
                } catch is RejoinNow {
                    continue
                } catch is CancellationError {
                    return
                } catch let e as KafkaConsumerError {
                    if e.code == .closed { return }
                    fail(e)
                    return
                } catch {
                    if Task.isCancelled || !isRunning { return }
                    logger.warning("joining the group failed; retrying", metadata: [BrookLogKey.error: "\(error)"])
                    try? await Task.sleep(for: configuration.client.retryBackoff)
                }
                continue
            }
            let interval = configuration.client.metadataMaxAge
            if leader && ContinuousClock.now - lastMetadataCheck >= interval {
                lastMetadataCheck = .now
                await checkSubscribedTopics()
                continue
            }
            await groupSignal.wait(since: g, timeout: interval)
        }
    }

    /// One rebalance: give up partitions as the protocol requires, JoinGroup, assign (leader),
    /// SyncGroup, apply the assignment.
    func rebalance(topics: Set<String>) async throws {
        let release = state.withLock { s in
            s.group.rebalanceStarted(owned: Set(s.partitions.keys), subscription: topics)
        }
        switch release {
        case .none: break
        case .lose: await partitionsLost()
        case .revoke(let tps): await revoke(tps)
        }
        if Task.isCancelled || !isRunning { throw CancellationError() }
        let (join, leader): (JoinOutcome, Bool)
        do {
            (join, leader) = try await joinGroup(topics: topics)
        } catch {
            state.withLock { $0.group.joinAbandoned() }
            throw error
        }
        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if leader {
            do {
                assignments = try await computeAssignment(join)
            } catch {
                state.withLock { $0.group.syncAbandoned() }
                throw error
            }
        }
        let partitions = try await syncGroup(join, assignments: assignments)
        logger.info(
            "joined group",
            metadata: [
                "generation": "\(join.generationId)", "member": "\(join.memberId)", "leader": "\(join.isLeader)",
                "assignor": "\(join.protocolName)", "partitions": "\(partitions.sorted().map(\.description))",
            ])
        await applyAssignment(partitions)
    }

    /// JoinGroup until the coordinator answers with a generation: the outcome, and whether this
    /// member leads (computes the assignment).
    func joinGroup(topics: Set<String>) async throws -> (JoinOutcome, leader: Bool) {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        let sortedTopics = topics.sorted()
        while true {
            if Task.isCancelled || !isRunning { throw CancellationError() }
            let conn = try await coordinatorConnection()
            let (memberId, generation, owned) = state.withLock { s in (s.group.memberId, s.group.generation, s.partitions.keys.sorted()) }
            let cooperative = rebalanceProtocol == .cooperative
            var req = JoinGroupRequest()
            req.groupId = group
            req.sessionTimeoutMs = Int32(clamping: configuration.group.sessionTimeout.milliseconds)
            req.rebalanceTimeoutMs = Int32(clamping: configuration.group.rebalanceTimeout.milliseconds)
            req.memberId = memberId
            req.groupInstanceId = configuration.group.groupInstanceId
            req.protocolType = ConsumerProtocol.protocolType
            req.protocols = assignors.map { a in
                // Eager members own nothing when they join, and send no generation: so a static
                // member's metadata is the same after a restart (no rebalance).
                let sub = ConsumerProtocolSubscription(
                    topics: sortedTopics, userData: a.subscriptionUserData(generation: cooperative ? generation : -1),
                    ownedPartitions: cooperative ? owned : [], generationId: cooperative ? generation : -1,
                    rackId: configuration.group.rack)
                var p = JoinGroupRequest.JoinGroupRequestProtocol()
                p.name = a.name
                p.metadata = sub.encode()
                return p
            }
            if configuration.group.groupInstanceId != nil, (try? conn.version(for: .joinGroup)) ?? 0 < 5 {
                throw KafkaConsumerError.groupFailure("the broker does not support static membership (JoinGroup v5)")
            }
            state.withLock { $0.group.joinSent() }
            let resp: JoinGroupResponse
            do {
                resp = try await sendCancellable(req, on: conn, timeout: longRequestTimeout)
            } catch {
                coordinatorUnknown(conn)
                throw error
            }
            switch state.withLock({ $0.group.joinReceived(resp) }) {
            case .assignAndSync(let outcome):
                return (outcome, true)
            case .sync(let outcome):
                return (outcome, false)
            case .joinAgain(let after, let rediscoverCoordinator):
                if rediscoverCoordinator { coordinatorUnknown(conn) }
                if after > .zero { try await Task.sleep(for: after) }
            case .rejoin(let rejoin):
                try await run(rejoin, reason: "JoinGroup", on: conn)
            case .fail(let error):
                throw error
            }
        }
    }

    /// The leader's part: decode the members' subscriptions, run the assignor.
    func computeAssignment(_ join: JoinOutcome) async throws -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        guard let assignor = assignors.first(where: { $0.name == join.protocolName }) else {
            throw KafkaConsumerError.groupFailure("the group chose assignor '\(join.protocolName)', which this consumer does not have")
        }
        var members: [GroupMemberSubscription] = []
        for m in join.members {
            do {
                let sub = try ConsumerProtocolSubscription(decoding: m.metadata)
                members.append(GroupMemberSubscription(memberId: m.memberId, groupInstanceId: m.groupInstanceId, subscription: sub))
            } catch {
                logger.warning("undecodable subscription; the member gets nothing", metadata: [BrookLogKey.memberId: "\(m.memberId)", BrookLogKey.error: "\(error)"])
                members.append(GroupMemberSubscription(memberId: m.memberId, groupInstanceId: m.groupInstanceId, subscription: .init(version: 0, topics: [])))
            }
        }
        let allTopics = Set(members.flatMap(\.subscription.topics))
        let counts = try await partitionCounts(of: allTopics)
        let result = assignor.assign(members: members, partitionsPerTopic: counts)
        state.withLock { $0.group.leaderAssigned(topics: allTopics, partitionCounts: counts) }
        return members.map { m in
            var a = SyncGroupRequest.SyncGroupRequestAssignment()
            a.memberId = m.memberId
            a.assignment = ConsumerProtocolAssignment(
                version: min(max(m.subscription.version, 0), ConsumerProtocol.latestVersion), partitions: result[m.memberId] ?? []
            ).encode()
            return a
        }
    }

    /// Partition counts of the topics that exist.
    func partitionCounts(of topics: Set<String>) async throws -> [String: Int32] {
        guard !topics.isEmpty else { return [:] }
        let metadata = try await cluster.refreshMetadata(topics: Array(topics), allowAutoCreate: configuration.fetch.allowAutoCreateTopics)
        var counts: [String: Int32] = [:]
        for t in topics {
            if let tm = metadata.topics[t], tm.error == .none, !tm.partitions.isEmpty { counts[t] = Int32(tm.partitions.count) }
        }
        return counts
    }

    /// The leader rejoins when a subscribed topic appears or its partition count changes.
    func checkSubscribedTopics() async {
        let (topics, before) = state.withLock { ($0.group.leaderTopics, $0.group.leaderTopicCounts) }
        guard let counts = try? await partitionCounts(of: topics), counts != before else { return }
        logger.info("subscribed topics changed; rebalancing", metadata: [BrookLogKey.partitionCountsBefore: "\(before)", BrookLogKey.partitionCountsNow: "\(counts)"])
        state.withLock { $0.group.requestRejoin("partition counts changed") }
        groupSignal.signal()
    }

    /// SyncGroup (the leader sends the assignments): this member's partitions in the new
    /// generation.
    func syncGroup(_ join: JoinOutcome, assignments: [SyncGroupRequest.SyncGroupRequestAssignment]) async throws -> [TopicPartition] {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        let conn: BrokerConnection
        do {
            conn = try await coordinatorConnection()
        } catch {
            state.withLock { $0.group.syncAbandoned() }
            throw error
        }
        var req = SyncGroupRequest()
        req.groupId = group
        req.generationId = join.generationId
        req.memberId = join.memberId
        req.groupInstanceId = configuration.group.groupInstanceId
        req.protocolType = ConsumerProtocol.protocolType
        req.protocolName = join.protocolName
        req.assignments = assignments
        let resp: SyncGroupResponse
        do {
            resp = try await sendCancellable(req, on: conn, timeout: longRequestTimeout)
        } catch {
            state.withLock { $0.group.syncAbandoned() }
            coordinatorUnknown(conn)
            throw error
        }
        switch state.withLock({ $0.group.syncReceived(resp, join: join, now: .now) }) {
        case .assign(let partitions):
            return partitions
        case .rejoin(let rejoin):
            try await run(rejoin, reason: "SyncGroup", on: conn)
        case .fail(let error):
            throw error
        }
    }

    // MARK: - ownership changes

    func applyAssignment(_ partitions: [TopicPartition]) async {
        let target = Set(partitions)
        let owned = state.withLock { Set($0.partitions.keys) }
        let revoked = owned.subtracting(target)
        let added = target.subtracting(owned)
        if !revoked.isEmpty {
            await revoke(revoked)
            if rebalanceProtocol == .cooperative {
                // The revoked partitions go to their new owners in a follow-up rebalance.
                state.withLock { $0.group.requestRejoin("partitions revoked in a cooperative rebalance") }
                groupSignal.signal()
            }
        }
        state.withLock { $0.add(added, need: .committed) }
        if !added.isEmpty {
            logger.info("partitions assigned", metadata: [BrookLogKey.partitions: "\(added.sorted().map(\.description))"])
        }
        if let listener {
            await listener.partitionsAssigned(rebalanceProtocol == .eager ? target.sorted() : added.sorted(), consumer: self)
        }
        fetchSignal.signal()
        dataSignal.signal()
    }

    /// An orderly revocation: stop handing out records, wait for the record in processing,
    /// commit (auto-commit), tell the listener, drop the partitions.
    func revoke(_ tps: Set<TopicPartition>) async {
        guard !tps.isEmpty else { return }
        state.withLock { s in
            for tp in tps { s.partitions[tp]?.revoking = true }
            s.dropChunks { tps.contains($0.tp) }
        }
        let deadline = ContinuousClock.now + configuration.group.rebalanceTimeout
        while !Task.isCancelled && ContinuousClock.now < deadline {
            let g = progressSignal.generation
            let busy = state.withLock { s in s.inFlight.map { tps.contains($0.tp) } ?? false }
            if !busy { break }
            await progressSignal.wait(since: g, timeout: deadline - .now)
        }
        if configuration.offsets.enableAutoCommit {
            await autoCommit(tps)
        }
        logger.info("partitions revoked", metadata: [BrookLogKey.partitions: "\(tps.sorted().map(\.description))"])
        if let listener { await listener.partitionsRevoked(tps.sorted(), consumer: self) }
        state.withLock { $0.remove(tps) }
    }

    /// The partitions were lost (the member left the generation): no commit.
    func partitionsLost() async {
        let owned = state.withLock { s -> Set<TopicPartition> in
            guard !s.manual else { return [] }
            let owned = Set(s.partitions.keys)
            for tp in owned { s.partitions[tp]?.revoking = true }
            s.dropChunks { owned.contains($0.tp) }
            return owned
        }
        guard !owned.isEmpty else { return }
        logger.warning("partitions lost", metadata: [BrookLogKey.partitions: "\(owned.sorted().map(\.description))"])
        if let listener { await listener.partitionsLost(owned.sorted(), consumer: self) }
        state.withLock { $0.remove(owned) }
    }

    // MARK: - heartbeats

    /// Heartbeats on their own task: they keep the member alive however long the application
    /// takes per record.
    func runHeartbeats() async {
        guard let group = configuration.groupId else { return }
        let interval = configuration.group.heartbeatInterval
        let session = configuration.group.sessionTimeout
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let target = state.withLock { s in s.lifecycle == .running ? s.group.heartbeatTarget : nil }
            guard let (memberId, generation) = target else { continue }
            var conn: BrokerConnection?
            do {
                let c = try await coordinatorConnection()
                conn = c
                var req = HeartbeatRequest()
                req.groupId = group
                req.generationId = generation
                req.memberId = memberId
                req.groupInstanceId = configuration.group.groupInstanceId
                let resp = try await c.send(req, timeout: min(session, configuration.client.requestTimeout))
                let code = ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError
                switch state.withLock({ $0.group.heartbeatReceived(code, generation: generation, now: .now) }) {
                case .none:
                    break
                case .rejoin(let lostGeneration):
                    if let lostGeneration {
                        generationLost(lostGeneration, reason: "heartbeat")
                    } else {
                        groupSignal.signal()
                    }
                case .rediscoverCoordinator:
                    coordinatorUnknown(c)
                case .fail(let error):
                    fail(error)
                case .warn(let code):
                    logger.warning("heartbeat failed", metadata: [BrookLogKey.error: "\(code.summary)"])
                }
            } catch {
                logger.debug("heartbeat failed", metadata: [BrookLogKey.error: "\(error)"])
                coordinatorUnknown(conn)
            }
            if state.withLock({ $0.group.heartbeatOverdue(now: .now, sessionTimeout: session) }) {
                coordinatorUnknown()
            }
        }
    }

    // MARK: - leaving

    /// On close: commit (auto-commit), revoke, and LeaveGroup unless static.
    func leaveGroupOnClose() async {
        guard let group = configuration.groupId else { return }
        let (manual, generation, owned, leave) = state.withLock { s in
            (s.manual, s.group.generation, Set(s.partitions.keys), s.group.leaveRequested())
        }
        if manual {
            if configuration.offsets.enableAutoCommit { await autoCommit() }
            return
        }
        if !owned.isEmpty {
            if generation >= 0 {
                if configuration.offsets.enableAutoCommit { await autoCommit(force: true) }
                if let listener { await listener.partitionsRevoked(owned.sorted(), consumer: self) }
            } else if let listener {
                await listener.partitionsLost(owned.sorted(), consumer: self)
            }
        }
        let memberId: String
        switch leave {
        case .none:
            return
        case .stayAsStaticMember(let id):
            logger.info("static member closing without leaving the group", metadata: [BrookLogKey.memberId: "\(id)"])
            return
        case .sendLeaveGroup(let id):
            memberId = id
        }
        do {
            let conn = try await coordinatorConnection()
            var req = LeaveGroupRequest()
            req.groupId = group
            req.memberId = memberId
            var identity = LeaveGroupRequest.MemberIdentity()
            identity.memberId = memberId
            req.members = [identity]
            let resp = try await conn.send(req)
            var code = ErrorCode(rawValue: resp.errorCode) ?? .unknownServerError
            if code == .none, let m = resp.members.first { code = ErrorCode(rawValue: m.errorCode) ?? .unknownServerError }
            if code == .none {
                logger.info("left group", metadata: [BrookLogKey.memberId: "\(memberId)"])
            } else {
                logger.info("LeaveGroup answered \(code.summary)", metadata: [BrookLogKey.memberId: "\(memberId)"])
            }
        } catch {
            logger.warning("LeaveGroup failed", metadata: [BrookLogKey.error: "\(error)"])
        }
        state.withLock { $0.group.left() }
    }
}
