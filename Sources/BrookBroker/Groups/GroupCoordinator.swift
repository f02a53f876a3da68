import BrookProtocol
import Foundation
import Logging
import NIOCore
import Synchronization

/// Errors of the coordinator's own operations (requests never throw: they answer with Kafka
/// error codes).
public enum GroupCoordinatorError: Error, CustomStringConvertible {
    case loadStalled(offset: Int64)

    public var description: String {
        switch self {
        case .loadStalled(let offset):
            return "loading __consumer_offsets made no progress at offset \(offset) (a batch larger than the read buffer?)"
        }
    }
}

/// The classic (pre-KIP-848) consumer group coordinator of a single-node broker.
///
/// It implements Kafka's group membership protocol — JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// with the Empty → PreparingRebalance → CompletingRebalance → Stable state machine, generations,
/// leader election, protocol selection, KIP-394 member ids, KIP-345 static membership and the
/// initial rebalance delay — and stores committed offsets and group metadata in the
/// `__consumer_offsets` partition, in Kafka's record format.
///
/// ## Concurrency
/// All state lives in one `GroupCoordinatorState` behind a `Mutex`; each request holds the lock
/// only to run its (non-blocking) transition. Requests that must wait — a JoinGroup until the
/// rebalance completes, a follower's SyncGroup until the leader's assignment, an OffsetCommit
/// until durable — park a continuation in the state and are resumed after the lock is released.
///
/// ## Persistence
/// Writes go through one queue, drained by a single writer task that appends everything queued
/// so far as one call to `OffsetsLog.appendDurably` (a group commit: one fsync for many
/// commits). Queue order is the order in which the state machine produced the records, so the log
/// order matches it. Once an append returns, its records are applied to the in-memory *persisted
/// view* (committed offsets, last written group metadata) with the very function `load()` uses
/// to replay the log, so memory is always what a replay would rebuild.
///
/// ## Compaction
/// `__consumer_offsets` is a compacted topic in Kafka. Brook gets the same bound on its size
/// differently: when the log holds more than ``GroupCoordinatorConfig/compactionThresholdRecords``
/// records and more than ``GroupCoordinatorConfig/compactionRatio`` times the number of live keys,
/// the writer appends a *snapshot* — the latest value of every live key — and then deletes every
/// record before the snapshot's first offset.
///
/// This is equivalent to compaction because replaying the log is a fold in which, for every key,
/// the last record wins (a tombstone removes the key):
/// - The snapshot is built by the writer itself between two appends — no write in flight — from
///   the persisted view, which at that moment equals the fold over the whole log. Replaying the
///   snapshot alone therefore yields the same state as replaying everything before it.
/// - Records appended after the snapshot (including writes that were queued while it was built)
///   come later in the log and still win over it, exactly as they win over the older records
///   they supersede.
/// - Every key in the deleted prefix is either in the snapshot (with its latest value) or dead
///   (its latest record was a tombstone) and absent from the snapshot, so once the prefix is gone
///   no stale value can reappear — which is also why the tombstones need no retention period.
/// - A crash after the snapshot is written but before the prefix is deleted leaves both; the
///   replay gives the same state. A crash during the snapshot append leaves a prefix of it
///   after the complete older log: those records only repeat current values.
/// The loader reads from `logStartOffset` and ignores records below it, so a snapshot batch
/// beginning before the deletion point is harmless.
public final class GroupCoordinator: Sendable {
    public let config: GroupCoordinatorConfig
    private let offsetsLog: any OffsetsLog
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    private let state: Mutex<GroupCoordinatorState>

    public convenience init(offsetsLog: any OffsetsLog, config: GroupCoordinatorConfig = GroupCoordinatorConfig(), logger: Logger) {
        self.init(offsetsLog: offsetsLog, config: config, logger: logger, clock: { currentTimeMillis() })
    }

    /// - Parameter clock: milliseconds since the epoch; injectable for tests. Every timer of the
    ///   coordinator (sessions, rebalance and sync deadlines, the initial delay, offset retention)
    ///   is measured with it and checked by ``run()`` every ``GroupCoordinatorConfig/tickIntervalMs``.
    public init(
        offsetsLog: any OffsetsLog, config: GroupCoordinatorConfig, logger: Logger,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.config = config
        self.offsetsLog = offsetsLog
        self.logger = logger
        self.clock = clock
        self.state = Mutex(GroupCoordinatorState(config: config, logger: logger, metrics: GroupCoordinatorMetrics()))
    }

    // MARK: - lifecycle

    /// Replays `__consumer_offsets` from its start offset: committed offsets and the last group
    /// metadata of every group. Until it returns, group requests get COORDINATOR_LOAD_IN_PROGRESS.
    public func load() async throws {
        let start = offsetsLog.logStartOffset
        var next = start
        var loadedRecords = 0
        let began = clock()
        while next < offsetsLog.logEndOffset {
            let buffer = try offsetsLog.read(from: next, maxBytes: config.loadBufferBytes)
            if buffer.readableBytes == 0 { break }
            var iterator = RecordBatchIterator(buffer)
            var records: [ConsumerOffsets.Record] = []
            let before = next
            while let batch = try iterator.next() {
                let header = batch.header
                guard header.nextOffset > next else { continue }
                if !header.isControl {
                    var reader = try batch.records()
                    while let record = try reader.next() {
                        let offset = batch.offset(of: record)
                        guard offset >= next, let key = record.key else { continue }
                        do {
                            if let r = try ConsumerOffsets.Record.decode(key: key, value: record.value) { records.append(r) }
                        } catch {
                            logger.warning(
                                "skipping an undecodable record of __consumer_offsets",
                                metadata: [BrookLogKey.offset: "\(offset)", BrookLogKey.error: "\(error)"])
                        }
                    }
                }
                next = header.nextOffset
            }
            guard next > before else { throw GroupCoordinatorError.loadStalled(offset: next) }
            loadedRecords += records.count
            let now = clock()
            state.withLock { s in
                for r in records { s.applyPersisted(r, now: now, loading: true) }
            }
        }
        let now = clock()
        let logRecords = offsetsLog.logEndOffset - offsetsLog.logStartOffset
        let (groups, startWriter) = state.withLock { s -> (Int, Bool) in
            s.finishLoad(now: now)
            var start = false
            if s.shouldCompact(logRecords: logRecords) {
                s.compactionRequested = true
                if !s.writerRunning {
                    s.writerRunning = true
                    start = true
                }
            }
            return (s.groups.count, start)
        }
        logger.info(
            "loaded __consumer_offsets",
            metadata: [
                BrookLogKey.records: "\(loadedRecords)", BrookLogKey.groupCount: "\(groups)", BrookLogKey.fromOffset: "\(start)", BrookLogKey.toOffset: "\(next)",
                BrookLogKey.durationMs: "\(now - began)",
            ])
        if startWriter { spawnWriter() }
    }

    /// Drives every timer: session expiry, rebalance and sync deadlines, the initial rebalance
    /// delay, offset retention. Returns when the task is cancelled or after ``shutdown()``.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(config.tickIntervalMs))
            } catch {
                return
            }
            if !tick() { return }
        }
    }

    /// One pass over the timers (what `run()` does every tick). Returns false once shut down.
    @discardableResult
    func tick() -> Bool {
        let now = clock()
        let (effects, active) = state.withLock { s -> (GroupEffects, Bool) in
            var e = GroupEffects()
            guard s.isActive else { return (e, false) }
            guard s.isLoaded else { return (e, true) }
            s.expireTimers(now: now, &e)
            s.expireOffsetsAndCleanup(now: now, &e)
            return (e, true)
        }
        apply(effects)
        return active
    }

    /// Answers every waiting JoinGroup and SyncGroup with COORDINATOR_NOT_AVAILABLE and refuses
    /// further requests; writes already queued still complete.
    public func shutdown() {
        let effects = state.withLock { s -> GroupEffects in
            var e = GroupEffects()
            s.shutdown(&e)
            return e
        }
        apply(effects)
    }

    // MARK: - membership

    public func joinGroup(_ r: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) async -> JoinGroupResponse {
        let now = clock()
        let result = await withCheckedContinuation { (waiter: GroupJoinWaiter) in
            let effects = state.withLock { s -> GroupEffects in
                var e = GroupEffects()
                s.join(r, version: version, clientId: clientId, clientHost: clientHost, now: now, waiter: waiter, &e)
                return e
            }
            apply(effects)
        }
        return result.response(version: version)
    }

    public func syncGroup(_ r: SyncGroupRequest, version: Int16) async -> SyncGroupResponse {
        let now = clock()
        let result = await withCheckedContinuation { (waiter: GroupSyncWaiter) in
            let effects = state.withLock { s -> GroupEffects in
                var e = GroupEffects()
                s.sync(r, version: version, now: now, waiter: waiter, &e)
                return e
            }
            apply(effects)
        }
        return result.response(version: version)
    }

    public func heartbeat(_ r: HeartbeatRequest, version: Int16) -> HeartbeatResponse {
        let now = clock()
        let error = state.withLock { s in s.heartbeat(r, version: version, now: now) }
        var response = HeartbeatResponse()
        response.errorCode = error.rawValue
        return response
    }

    public func leaveGroup(_ r: LeaveGroupRequest, version: Int16) async -> LeaveGroupResponse {
        let now = clock()
        let (response, effects) = state.withLock { s -> (LeaveGroupResponse, GroupEffects) in
            var e = GroupEffects()
            let response = s.leave(r, version: version, now: now, &e)
            return (response, e)
        }
        apply(effects)
        return response
    }

    // MARK: - offsets

    /// Answers once the offsets are durable in `__consumer_offsets`.
    public func commitOffsets(_ r: OffsetCommitRequest, version: Int16) async -> OffsetCommitResponse {
        let now = clock()
        return await withCheckedContinuation { (waiter: CheckedContinuation<OffsetCommitResponse, Never>) in
            let effects = state.withLock { s -> GroupEffects in
                var e = GroupEffects()
                s.commit(r, version: version, now: now, waiter: waiter, &e)
                return e
            }
            apply(effects)
        }
    }

    public func fetchOffsets(_ r: OffsetFetchRequest, version: Int16) -> OffsetFetchResponse {
        state.withLock { s in s.fetch(r, version: version) }
    }

    public func deleteOffsets(_ r: OffsetDeleteRequest, version: Int16) async -> OffsetDeleteResponse {
        let now = clock()
        var response = OffsetDeleteResponse()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let (result, effects) = state.withLock { s -> (OffsetDeleteResponse, GroupEffects) in
                var e = GroupEffects()
                let result = s.deleteOffsets(r, now: now, waiter: waiter, &e)
                return (result, e)
            }
            response = result
            apply(effects)
        }
        return response
    }

    /// A topic was deleted: drop every group's offsets for it.
    public func removeOffsets(forTopic topic: String) async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let effects = state.withLock { s -> GroupEffects in
                var e = GroupEffects()
                s.removeOffsets(forTopic: topic, waiter: waiter, &e)
                return e
            }
            apply(effects)
        }
    }

    // MARK: - administration

    public func listGroups(_ r: ListGroupsRequest, version: Int16) -> ListGroupsResponse {
        state.withLock { s in s.list(r, version: version) }
    }

    public func describeGroups(_ r: DescribeGroupsRequest, version: Int16) -> DescribeGroupsResponse {
        state.withLock { s in s.describe(r, version: version) }
    }

    public func deleteGroups(_ r: DeleteGroupsRequest, version: Int16) async -> DeleteGroupsResponse {
        let now = clock()
        var response = DeleteGroupsResponse()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let (result, effects) = state.withLock { s -> (DeleteGroupsResponse, GroupEffects) in
                var e = GroupEffects()
                let result = s.deleteGroups(r, now: now, waiter: waiter, &e)
                return (result, e)
            }
            response = result
            apply(effects)
        }
        return response
    }

    /// Compacts the offsets log now (normally done automatically; see the type's documentation),
    /// returning once the snapshot is written and the prefix deleted.
    public func compact() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let start = state.withLock { s -> Bool in
                guard s.isActive else {
                    waiter.resume()
                    return false
                }
                s.compactionWaiters.append(waiter)
                if s.writerRunning { return false }
                s.writerRunning = true
                return true
            }
            if start { spawnWriter() }
        }
    }

    // MARK: - writer

    private func apply(_ effects: GroupEffects) {
        effects.runResumptions()
        if effects.startWriter { spawnWriter() }
    }

    private func spawnWriter() {
        Task { await self.drainWrites() }
    }

    private enum WriterStep: Sendable {
        case append([OffsetsLogWrite])
        case snapshot([ConsumerOffsets.Record], waiters: [CheckedContinuation<Void, Never>])
        case idle
    }

    /// The single writer: appends queued writes in order, applies them once durable, and
    /// compacts when asked and nothing else is pending.
    private func drainWrites() async {
        while true {
            let step = state.withLock { s -> WriterStep in
                // A snapshot goes first: nothing is in flight here, so the persisted view is the
                // whole log, and writes still queued land after the snapshot, where they belong.
                // (Giving appends priority could starve compaction under constant load.)
                if s.compactionRequested || !s.compactionWaiters.isEmpty {
                    s.compactionRequested = false
                    let waiters = s.compactionWaiters
                    s.compactionWaiters.removeAll()
                    return .snapshot(s.snapshotRecords(), waiters: waiters)
                }
                if !s.writeQueue.isEmpty {
                    let jobs = s.writeQueue
                    s.writeQueue.removeAll()
                    return .append(jobs)
                }
                s.writerRunning = false
                return .idle
            }
            switch step {
            case .idle:
                return
            case .append(let jobs):
                var success = true
                do {
                    let batches = try ConsumerOffsets.encodeBatches(
                        jobs.flatMap(\.records), timestamp: clock(), maxBatchBytes: config.maxBatchBytes)
                    try await offsetsLog.appendDurably(batches)
                } catch {
                    success = false
                    logger.error("appending to __consumer_offsets failed", metadata: [BrookLogKey.error: "\(error)"])
                }
                let now = clock()
                let logRecords = offsetsLog.logEndOffset - offsetsLog.logStartOffset
                let effects = state.withLock { s -> GroupEffects in
                    var e = GroupEffects()
                    s.completeWrites(jobs, success: success, now: now, &e)
                    if s.shouldCompact(logRecords: logRecords) { s.compactionRequested = true }
                    return e
                }
                effects.runResumptions()
            case .snapshot(let records, let waiters):
                await writeSnapshot(records)
                for w in waiters { w.resume() }
            }
        }
    }

    private func writeSnapshot(_ records: [ConsumerOffsets.Record]) async {
        let before = offsetsLog.logEndOffset - offsetsLog.logStartOffset
        do {
            let cut: Int64
            if records.isEmpty {
                // Nothing is live: every record is superseded.
                cut = offsetsLog.logEndOffset
            } else {
                let batches = try ConsumerOffsets.encodeBatches(records, timestamp: clock(), maxBatchBytes: config.maxBatchBytes)
                cut = try await offsetsLog.appendDurably(batches)
            }
            try offsetsLog.deleteRecords(before: cut)
            state.withLock { s in s.metrics.compactions.increment() }
            logger.info(
                "compacted __consumer_offsets",
                metadata: [
                    BrookLogKey.liveRecords: "\(records.count)", BrookLogKey.recordsBefore: "\(before)",
                    BrookLogKey.recordsAfter: "\(offsetsLog.logEndOffset - offsetsLog.logStartOffset)",
                ])
        } catch {
            logger.error("compacting __consumer_offsets failed", metadata: [BrookLogKey.error: "\(error)"])
        }
    }

    // MARK: - introspection (tests, status)

    struct GroupInfo: Sendable, Equatable {
        var state: String
        var generation: Int32
        var protocolName: String?
        var leader: String?
        var members: [String]
        var awaitingJoin: Int
        var awaitingSync: Int
        var pendingMembers: Int
        var offsets: Int
    }

    func groupInfo(_ id: String) -> GroupInfo? {
        state.withLock { s in
            guard let g = s.groups[id] else { return nil }
            return GroupInfo(
                state: g.state.rawValue, generation: g.generationId, protocolName: g.protocolName, leader: g.leaderId,
                members: g.orderedMembers.map(\.memberId), awaitingJoin: g.numAwaitingJoin,
                awaitingSync: g.members.values.filter(\.isAwaitingSync).count, pendingMembers: g.pendingMembers.count,
                offsets: g.offsets.count)
        }
    }
}
