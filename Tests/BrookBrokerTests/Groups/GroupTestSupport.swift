import BrookProtocol
import Logging
import NIOCore
import Synchronization
import Testing

@testable import BrookBroker

/// An in-memory `__consumer_offsets` partition: batches kept as appended, offsets assigned on
/// append, `deleteRecords` moving the start offset.
final class GroupTestOffsetsLog: OffsetsLog {
    private struct Stored {
        var baseOffset: Int64
        var lastOffset: Int64
        var bytes: ByteBuffer
    }

    private struct State {
        var batches: [Stored] = []
        var start: Int64 = 0
        var end: Int64 = 0
        var appendCount = 0
        var failAppends = false
    }

    private let state = Mutex(State())

    var failAppends: Bool {
        get { state.withLock { $0.failAppends } }
        set { state.withLock { $0.failAppends = newValue } }
    }

    var appendCount: Int { state.withLock { $0.appendCount } }
    var recordCount: Int64 { logEndOffset - logStartOffset }

    struct AppendFailed: Error {}

    func appendDurably(_ batches: ByteBuffer) async throws -> Int64 {
        try state.withLock { s in
            if s.failAppends { throw AppendFailed() }
            s.appendCount += 1
            let first = s.end
            for batch in try RecordBatch.batches(in: batches) {
                try batch.verifyCRC()
                var bytes = batch.bytes
                // The base offset is outside the CRC: set it as a log would.
                bytes.setInteger(s.end, at: bytes.readerIndex)
                let count = Int64(batch.header.lastOffsetDelta) + 1
                s.batches.append(Stored(baseOffset: s.end, lastOffset: s.end + count - 1, bytes: bytes))
                s.end += count
            }
            return first
        }
    }

    func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        state.withLock { s in
            var out = ByteBuffer()
            for b in s.batches where b.lastOffset >= offset {
                if out.readableBytes > 0 && out.readableBytes + b.bytes.readableBytes > maxBytes { break }
                var bytes = b.bytes
                out.writeBuffer(&bytes)
            }
            return out
        }
    }

    var logStartOffset: Int64 { state.withLock { $0.start } }
    var logEndOffset: Int64 { state.withLock { $0.end } }

    func deleteRecords(before offset: Int64) throws {
        state.withLock { s in
            s.start = max(s.start, min(offset, s.end))
            let start = s.start
            s.batches.removeAll { $0.lastOffset < start }
        }
    }

    /// Every record from the start offset, decoded.
    func allRecords() throws -> [(offset: Int64, key: ByteBuffer, value: ByteBuffer?)] {
        let start = logStartOffset
        var result: [(Int64, ByteBuffer, ByteBuffer?)] = []
        for batch in try RecordBatch.batches(in: try read(from: start, maxBytes: .max)) {
            for r in try batch.decodeRecords() where batch.offset(of: r) >= start {
                result.append((batch.offset(of: r), r.key!, r.value))
            }
        }
        return result
    }
}

/// A clock the test moves by hand.
final class GroupTestClock: Sendable {
    private let ms = Mutex<Int64>(1_700_000_000_000)
    func now() -> Int64 { ms.withLock { $0 } }
    func advance(_ delta: Int64) { ms.withLock { $0 += delta } }
}

struct GroupTestHarness {
    let log: GroupTestOffsetsLog
    let clock: GroupTestClock
    let coordinator: GroupCoordinator

    static func make(
        log: GroupTestOffsetsLog = GroupTestOffsetsLog(),
        clock: GroupTestClock = GroupTestClock(),
        configure: (inout GroupCoordinatorConfig) -> Void = { _ in }
    ) async throws -> GroupTestHarness {
        var config = GroupCoordinatorConfig()
        config.initialRebalanceDelayMs = 100
        config.minSessionTimeoutMs = 1000
        configure(&config)
        var logger = Logger(label: "group-test")
        logger.logLevel = .warning
        let c = GroupCoordinator(offsetsLog: log, config: config, logger: logger, clock: { clock.now() })
        try await c.load()
        return GroupTestHarness(log: log, clock: clock, coordinator: c)
    }

    /// A harness over the same log and clock, as after a restart.
    func restarted(configure: (inout GroupCoordinatorConfig) -> Void = { _ in }) async throws -> GroupTestHarness {
        try await GroupTestHarness.make(log: log, clock: clock, configure: configure)
    }

    func advance(_ ms: Int64) {
        clock.advance(ms)
        coordinator.tick()
    }

    /// Moves time on until the join phase of `group` ends (the initial delay may be extended).
    func finishJoinPhase(_ group: String) async {
        for _ in 0..<1000 {
            guard info(group)?.state == "PreparingRebalance" else { return }
            advance(max(coordinator.config.initialRebalanceDelayMs, 1))
        }
        Issue.record("join phase of \(group) did not end")
    }

    func info(_ group: String) -> GroupCoordinator.GroupInfo? { coordinator.groupInfo(group) }

    /// Polls until `condition` holds (joins run in tasks that park in the coordinator).
    func waitUntil(_ what: String = "", _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async {
        for _ in 0..<5000 {
            if condition() { return }
            try? await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("timed out waiting: \(what)", sourceLocation: sourceLocation)
    }

    // MARK: requests

    static func joinRequest(
        group: String, memberId: String = "", instanceId: String? = nil, protocols: [(String, [String])],
        sessionTimeoutMs: Int32 = 10_000, rebalanceTimeoutMs: Int32 = 5_000
    ) -> JoinGroupRequest {
        var r = JoinGroupRequest()
        r.groupId = group
        r.memberId = memberId
        r.groupInstanceId = instanceId
        r.sessionTimeoutMs = sessionTimeoutMs
        r.rebalanceTimeoutMs = rebalanceTimeoutMs
        r.protocolType = "consumer"
        r.protocols = protocols.map { name, topics in
            var p = JoinGroupRequest.JoinGroupRequestProtocol()
            p.name = name
            p.metadata = ConsumerProtocolSubscription(version: 0, topics: topics).encode()
            return p
        }
        return r
    }

    func join(
        _ group: String, memberId: String = "", instanceId: String? = nil, protocols: [(String, [String])] = [("range", ["t"])],
        version: Int16 = 5, clientId: String = "client", sessionTimeoutMs: Int32 = 10_000, rebalanceTimeoutMs: Int32 = 5_000
    ) async -> JoinGroupResponse {
        await coordinator.joinGroup(
            Self.joinRequest(
                group: group, memberId: memberId, instanceId: instanceId, protocols: protocols,
                sessionTimeoutMs: sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeoutMs),
            version: version, clientId: clientId, clientHost: "/127.0.0.1")
    }

    /// Gets a member id the KIP-394 way (MEMBER_ID_REQUIRED), for a join that will then wait.
    func memberId(_ group: String, clientId: String = "client") async -> String {
        let r = await join(group, clientId: clientId)
        #expect(r.errorCode == ErrorCode.memberIdRequired.rawValue)
        return r.memberId
    }

    /// Starts a join that parks until the rebalance completes.
    func startJoin(
        _ group: String, memberId: String, instanceId: String? = nil, protocols: [(String, [String])] = [("range", ["t"])],
        sessionTimeoutMs: Int32 = 10_000
    ) -> Task<JoinGroupResponse, Never> {
        let c = coordinator
        let request = Self.joinRequest(
            group: group, memberId: memberId, instanceId: instanceId, protocols: protocols, sessionTimeoutMs: sessionTimeoutMs)
        return Task { await c.joinGroup(request, version: 5, clientId: "client", clientHost: "/127.0.0.1") }
    }

    func sync(_ group: String, memberId: String, generation: Int32, assignments: [String: String] = [:], instanceId: String? = nil)
        -> Task<SyncGroupResponse, Never>
    {
        var r = SyncGroupRequest()
        r.groupId = group
        r.memberId = memberId
        r.generationId = generation
        r.groupInstanceId = instanceId
        r.assignments = assignments.sorted { $0.key < $1.key }.map { id, a in
            var e = SyncGroupRequest.SyncGroupRequestAssignment()
            e.memberId = id
            e.assignment = ByteBuffer(string: a)
            return e
        }
        let c = coordinator
        return Task { await c.syncGroup(r, version: 5) }
    }

    func heartbeat(_ group: String, memberId: String, generation: Int32, instanceId: String? = nil) -> ErrorCode {
        var r = HeartbeatRequest()
        r.groupId = group
        r.memberId = memberId
        r.generationId = generation
        r.groupInstanceId = instanceId
        return ErrorCode(rawValue: coordinator.heartbeat(r, version: 4).errorCode)!
    }

    func commit(
        _ group: String, memberId: String = "", generation: Int32 = -1, offsets: [(String, Int32, Int64)], metadata: String? = nil,
        version: Int16 = 8
    ) async -> [ErrorCode] {
        var r = OffsetCommitRequest()
        r.groupId = group
        r.memberId = memberId
        r.generationIdOrMemberEpoch = generation
        var topics: [String: [OffsetCommitRequest.OffsetCommitRequestPartition]] = [:]
        var order: [String] = []
        for (t, p, o) in offsets {
            var e = OffsetCommitRequest.OffsetCommitRequestPartition()
            e.partitionIndex = p
            e.committedOffset = o
            e.committedLeaderEpoch = 3
            e.committedMetadata = metadata
            if topics[t] == nil { order.append(t) }
            topics[t, default: []].append(e)
        }
        r.topics = order.map { t in
            var e = OffsetCommitRequest.OffsetCommitRequestTopic()
            e.name = t
            e.partitions = topics[t]!
            return e
        }
        let response = await coordinator.commitOffsets(r, version: version)
        return response.topics.flatMap { $0.partitions.map { ErrorCode(rawValue: $0.errorCode)! } }
    }

    /// Committed offsets of the given partitions (v7 request), -1 when none.
    func fetch(_ group: String, _ partitions: [(String, Int32)]) -> [Int64] {
        var r = OffsetFetchRequest()
        r.groupId = group
        r.topics = partitions.map { t, p in
            var e = OffsetFetchRequest.OffsetFetchRequestTopic()
            e.name = t
            e.partitionIndexes = [p]
            return e
        }
        let response = coordinator.fetchOffsets(r, version: 7)
        return response.topics.flatMap { $0.partitions.map(\.committedOffset) }
    }

    /// All committed offsets of a group (null topics), as "topic-partition" → offset.
    func fetchAll(_ group: String) -> [String: Int64] {
        var r = OffsetFetchRequest()
        r.groupId = group
        r.topics = nil
        var result: [String: Int64] = [:]
        for t in coordinator.fetchOffsets(r, version: 7).topics {
            for p in t.partitions { result["\(t.name)-\(p.partitionIndex)"] = p.committedOffset }
        }
        return result
    }

    func leave(_ group: String, memberIds: [String], instanceIds: [String?]? = nil) async -> LeaveGroupResponse {
        var r = LeaveGroupRequest()
        r.groupId = group
        r.members = memberIds.enumerated().map { i, id in
            var m = LeaveGroupRequest.MemberIdentity()
            m.memberId = id
            m.groupInstanceId = instanceIds?[i]
            return m
        }
        return await coordinator.leaveGroup(r, version: 4)
    }

    /// Forms a stable group: members join (in order, so the first is leader), the join completes,
    /// the leader assigns "a-<memberId>" to each, everyone syncs.
    func stableGroup(_ group: String, count: Int, instanceIds: [String?]? = nil) async -> (ids: [String], generation: Int32) {
        var tasks: [Task<JoinGroupResponse, Never>] = []
        for i in 0..<count {
            let instance = instanceIds?[i]
            let id = instance == nil ? await memberId(group, clientId: "c\(i)") : ""
            tasks.append(startJoin(group, memberId: id, instanceId: instance))
            await waitUntil("member \(i) waiting") { (info(group)?.awaitingJoin ?? 0) == i + 1 }
        }
        await finishJoinPhase(group)
        var responses: [JoinGroupResponse] = []
        for t in tasks { responses.append(await t.value) }
        let ids = responses.map(\.memberId)
        let generation = responses[0].generationId
        var syncs: [Task<SyncGroupResponse, Never>] = []
        for (i, id) in ids.enumerated() {
            let leader = i == 0
            syncs.append(
                sync(
                    group, memberId: id, generation: generation,
                    assignments: leader ? Dictionary(uniqueKeysWithValues: ids.map { ($0, "a-\($0)") }) : [:],
                    instanceId: instanceIds?[i]))
        }
        for s in syncs { #expect(await s.value.errorCode == 0) }
        #expect(info(group)?.state == "Stable")
        return (ids, generation)
    }
}

extension ByteBuffer {
    var groupTestString: String { getString(at: readerIndex, length: readableBytes) ?? "" }
}
