import NIOCore
import NIOPosix
import Synchronization

/// Lets many producers wait for durability while issuing few fsyncs.
///
/// A waiter asks for "everything up to offset N of this log is on disk". Per log, at most one
/// fsync is in flight; waiters that arrive meanwhile are batched into the next one. So under load
/// each dirty log costs one fsync per round however many producers it has, and throughput holds
/// even with acks=all on every request. Fsyncs run on a dedicated `NIOThreadPool`, never on an
/// event loop; different logs are fsynced in parallel up to the pool's thread count (the file
/// system merges concurrent fsyncs into shared journal commits).
public final class GroupCommitter: Sendable {
    public typealias Callback = @Sendable (Result<Void, any Error>) -> Void

    private let pool: NIOThreadPool
    private let ownsPool: Bool
    private let state = Mutex(State())

    private struct Waiter: Sendable {
        var offset: Int64
        var callback: Callback
    }

    private struct PendingLog: Sendable {
        var log: PartitionLog
        var waiters: [Waiter]
    }

    private struct State: Sendable {
        /// Logs with a round scheduled or running; a log is in here iff a work item owns it.
        var logs: [ObjectIdentifier: PendingLog] = [:]
        var rounds = 0
        var requests = 0
        var isShutDown = false
    }

    /// Starts `threads` fsync threads.
    public init(threads: Int = 2) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        ownsPool = true
    }

    /// Uses an existing, started pool (not shut down by this committer).
    public init(threadPool: NIOThreadPool) {
        pool = threadPool
        ownsPool = false
    }

    deinit {
        // Work items retain `self`, so nothing is queued by now; a started NIOThreadPool must be
        // shut down before it is released.
        if ownsPool { pool.shutdownGracefully { _ in } }
    }

    /// Number of flush rounds run (each is at most one fsync per file of one log).
    public var flushRounds: Int { state.withLock { $0.rounds } }
    /// Number of `waitDurable` calls that had to wait.
    public var waitRequests: Int { state.withLock { $0.requests } }

    /// Calls `callback` once every record with offset <= `offset` of `log` is fsynced, or with the
    /// error that prevented it. The records must have been appended before this call (then the
    /// next flush round covers them). The callback runs on an fsync thread: keep it short.
    public func waitDurable(_ log: PartitionLog, upTo offset: Int64, _ callback: @escaping Callback) {
        if log.flushedOffset > offset {
            callback(.success(()))
            return
        }
        let id = ObjectIdentifier(log)
        let outcome = state.withLock { s -> (schedule: Bool, rejected: Bool) in
            if s.isShutDown { return (false, true) }
            s.requests += 1
            let waiter = Waiter(offset: offset, callback: callback)
            if s.logs[id] != nil {
                s.logs[id]!.waiters.append(waiter)
                return (false, false)
            }
            s.logs[id] = PendingLog(log: log, waiters: [waiter])
            return (true, false)
        }
        if outcome.rejected {
            callback(.failure(StorageError.logClosed))
        } else if outcome.schedule {
            schedule(log)
        }
    }

    /// Async form of `waitDurable(_:upTo:_:)`.
    public func waitDurable(_ log: PartitionLog, upTo offset: Int64) async throws {
        if log.flushedOffset > offset { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waitDurable(log, upTo: offset) { continuation.resume(with: $0) }
        }
    }

    /// Future form of `waitDurable(_:upTo:_:)`, completed on `eventLoop`.
    public func waitDurable(_ log: PartitionLog, upTo offset: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        if log.flushedOffset > offset { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        waitDurable(log, upTo: offset) { promise.completeWith($0) }
        return promise.futureResult
    }

    /// Appends and, under `FlushPolicy.fsync`, returns only once the batches are durable.
    public func appendDurably(to log: PartitionLog, _ batches: ByteBuffer, logAppendTime: Int64? = nil) async throws -> AppendInfo {
        let info = try log.append(batches, logAppendTime: logAppendTime)
        if log.config.flushPolicy == .fsync {
            try await waitDurable(log, upTo: info.lastOffset)
        }
        return info
    }

    /// Fails new waiters and stops the fsync threads after the queued rounds ran (their waiters
    /// fail with `StorageError.logClosed` if the pool cancels them).
    public func shutdown() async throws {
        state.withLock { $0.isShutDown = true }
        if ownsPool { try await pool.shutdownGracefully() }
    }

    private func schedule(_ log: PartitionLog) {
        pool.submit { [self] workState in
            if workState == .cancelled {
                failAll(log, StorageError.logClosed)
            } else {
                runRound(log)
            }
        }
    }

    /// One round for one log: take every waiter so far, fsync once, answer them, and requeue
    /// (behind other logs, for fairness) if more arrived during the fsync.
    private func runRound(_ log: PartitionLog) {
        let id = ObjectIdentifier(log)
        var waiters = state.withLock { s -> [Waiter] in
            let taken = s.logs[id]?.waiters ?? []
            s.logs[id]?.waiters = []
            return taken
        }
        // Waiters that arrived while the previous round's fsync was running may already be
        // covered by it: answer them without another fsync.
        let durable = log.flushedOffset
        if waiters.contains(where: { durable > $0.offset }) {
            for waiter in waiters where durable > waiter.offset { waiter.callback(.success(())) }
            waiters.removeAll { durable > $0.offset }
        }
        if !waiters.isEmpty {
            let result: Result<Void, any Error>
            do {
                try log.flush()
                result = .success(())
            } catch {
                result = .failure(error)
            }
            state.withLock { $0.rounds += 1 }
            // Waiters registered before the flush started had already appended, so a successful
            // flush covers them. After a failure, some may still be covered by an earlier flush.
            let flushed = result.isSuccess ? Int64.max : log.flushedOffset
            for waiter in waiters {
                waiter.callback(flushed > waiter.offset ? .success(()) : result)
            }
        }
        let again = state.withLock { s -> Bool in
            if let pending = s.logs[id], !pending.waiters.isEmpty { return true }
            s.logs[id] = nil
            return false
        }
        if again { schedule(log) }
    }

    private func failAll(_ log: PartitionLog, _ error: any Error) {
        let waiters = state.withLock { s -> [Waiter] in
            s.logs.removeValue(forKey: ObjectIdentifier(log))?.waiters ?? []
        }
        for waiter in waiters { waiter.callback(.failure(error)) }
    }
}

extension Result {
    fileprivate var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
