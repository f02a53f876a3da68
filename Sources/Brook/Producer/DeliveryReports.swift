import Synchronization

/// The delivery reports of a ``KafkaProducer``: an `AsyncSequence` of ``DeliveryReport``, one per
/// record given to ``KafkaProducer/sendAsync(_:)``, in acknowledgement order (per partition: offset
/// order). It finishes when the producer is closed.
///
/// Reports are handed over per acknowledged batch: the producer appends all the reports of a
/// produce response to a Brook-owned buffer under one lock and wakes the reader at most once;
/// the reader takes the whole buffer in one step, so iterating costs a wake-up per response,
/// not per record. ``batches`` gives those hand-overs as arrays.
///
/// Memory is bounded: once ``KafkaProducer/deliveryReports`` was accessed, at most
/// ``ProducerConfiguration/maxBufferedDeliveryReports`` unread reports are kept (plus those of
/// the batches still in flight, which `buffer.memory` bounds). When that many are waiting,
/// ``KafkaProducer/sendAsync(_:)`` suspends until the reader takes them (backpressure), at most
/// ``ProducerConfiguration/maxBlock``, then throws ``KafkaClientError/timedOut(_:)``. So a
/// single task should iterate it, from before sending until the producer closes.
public struct DeliveryReports: AsyncSequence, Sendable {
    public typealias Element = DeliveryReport
    public typealias Failure = Never

    let buffer: DeliveryReportBuffer

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer)
    }

    /// Iterates one hand-over at a time; ends when the producer closed or the task is cancelled.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let buffer: DeliveryReportBuffer
        @usableFromInline var pending: [DeliveryReport] = []
        @usableFromInline var index = 0

        init(buffer: DeliveryReportBuffer) {
            self.buffer = buffer
        }

        @inlinable
        public mutating func next() async -> DeliveryReport? {
            await next(isolation: nil)
        }

        /// What `for await` calls. A report of the current hand-over is returned by code inlined
        /// into the caller, without an async call: per report, that would cost more than the
        /// report.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async -> DeliveryReport? {
            if index < pending.count {
                index += 1
                return pending[index - 1]
            }
            return await nextHandOver(isolation: actor)
        }

        /// Waits for the next hand-over and returns its first report; nil once the producer
        /// closed (or the task is cancelled).
        @usableFromInline
        mutating func nextHandOver(isolation actor: isolated (any Actor)?) async -> DeliveryReport? {
            pending = []
            index = 0
            guard let taken = await buffer.take() else { return nil }
            pending = taken
            index = 1
            return pending[0]
        }
    }

    /// The same reports, as the arrays the producer hands over (each one or more acknowledged
    /// batches' worth, never empty). Cheaper than iterating the reports one by one.
    public var batches: Batches { Batches(buffer: buffer) }

    /// An `AsyncSequence` of report arrays; see ``DeliveryReports/batches``.
    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [DeliveryReport]
        public typealias Failure = Never
        let buffer: DeliveryReportBuffer

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let buffer: DeliveryReportBuffer
            public mutating func next() async -> [DeliveryReport]? { await buffer.take() }
        }
    }
}

/// The bounded hand-over buffer behind ``DeliveryReports``: many writers (the producer's
/// completion paths), one reader.
@usableFromInline
final class DeliveryReportBuffer: Sendable {
    private struct State {
        var reports: [DeliveryReport] = []
        var reader: CheckedContinuation<[DeliveryReport]?, Never>?
        var finished = false
        var spaceWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextWaiterId: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Unread reports; read without the lock on `sendAsync`'s fast path.
    private let unread = Atomic<Int>(0)
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Whether `sendAsync` should wait for the reader before appending.
    @inline(__always)
    var isFull: Bool { unread.load(ordering: .relaxed) >= capacity }

    /// Appends the reports of one or more acknowledged batches; wakes the reader once.
    func append(_ reports: [DeliveryReport]) {
        guard !reports.isEmpty else { return }
        let handOff: (CheckedContinuation<[DeliveryReport]?, Never>, [DeliveryReport])? = state.withLock { s in
            if s.finished { return nil }
            if let r = s.reader {
                s.reader = nil
                return (r, reports)
            }
            if s.reports.isEmpty { s.reports = reports } else { s.reports.append(contentsOf: reports) }
            unread.store(s.reports.count, ordering: .relaxed)
            return nil
        }
        if let (r, reports) = handOff { r.resume(returning: reports) }
    }

    /// Takes everything buffered, waiting for the next hand-over if empty; nil once finished
    /// (after everything was taken) or when the calling task is cancelled.
    func take() async -> [DeliveryReport]? {
        if Task.isCancelled { return nil }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[DeliveryReport]?, Never>) in
                enum Outcome { case now([DeliveryReport]?, [CheckedContinuation<Void, any Error>]), wait }
                let outcome: Outcome = state.withLock { s in
                    if !s.reports.isEmpty {
                        let taken = s.reports
                        s.reports = []
                        unread.store(0, ordering: .relaxed)
                        let waiters = s.spaceWaiters.map(\.continuation)
                        s.spaceWaiters.removeAll()
                        return .now(taken, waiters)
                    }
                    // One reader at a time; a cancelled one ends (its handler may have run already).
                    if s.finished || s.reader != nil || Task.isCancelled { return .now(nil, []) }
                    s.reader = c
                    return .wait
                }
                if case .now(let taken, let waiters) = outcome {
                    c.resume(returning: taken)
                    for w in waiters { w.resume() }
                }
            }
        } onCancel: {
            let r = state.withLock { s in
                defer { s.reader = nil }
                return s.reader
            }
            r?.resume(returning: nil)
        }
    }

    /// Suspends while `capacity` reports are unread, at most `maxBlock`.
    func waitForSpace(maxBlock: Duration) async throws {
        let id: UInt64? = state.withLock { s in
            guard s.reports.count >= capacity, !s.finished else { return nil }
            s.nextWaiterId += 1
            return s.nextWaiterId
        }
        guard let id else { return }
        let timeout = Task {
            try? await Task.sleep(for: maxBlock)
            if !Task.isCancelled {
                self.abandon(id, KafkaClientError.timedOut("\(self.capacity) delivery reports unread for max.block.ms (\(maxBlock))"))
            }
        }
        defer { timeout.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let wait = state.withLock { s in
                    guard s.reports.count >= capacity, !s.finished else { return false }
                    s.spaceWaiters.append((id, c))
                    return true
                }
                if !wait { c.resume() }
            }
        } onCancel: {
            self.abandon(id, CancellationError())
        }
    }

    private func abandon(_ id: UInt64, _ error: any Error) {
        let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard let i = s.spaceWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.spaceWaiters.remove(at: i).continuation
        }
        c?.resume(throwing: error)
    }

    /// No more reports: the reader gets what is left, then nil; waiting senders go on.
    func finish() {
        let (reader, waiters) = state.withLock { s in
            s.finished = true
            let r = s.reader
            s.reader = nil
            let w = s.spaceWaiters.map(\.continuation)
            s.spaceWaiters.removeAll()
            return (r, w)
        }
        reader?.resume(returning: nil)
        for w in waiters { w.resume() }
    }
}
