import Brook
import BrookProtocol
import Logging

extension Pipeline {
    /// New partitions: a fresh epoch each; the quarantine state of their topics is reloaded
    /// (another member may have changed it); with a sink, positions come from its stored offsets.
    func assigned(_ tps: [TopicPartition], consumer: KafkaConsumer) async {
        let fresh = state.withLock { s -> [TopicPartition] in
            var fresh: [TopicPartition] = []
            for tp in tps {
                // Still owned (eager protocols repeat the whole assignment): keep going, unless
                // fenced, which a reassignment lifts.
                if let c = s.partitions[tp], !c.fenced { continue }
                s.dropQueued(of: [tp])
                s.partitions[tp] = PartitionContext(epoch: s.nextEpoch())
                fresh.append(tp)
            }
            return fresh
        }
        guard !fresh.isEmpty else { return }
        // Nothing of these partitions is taken until the quarantine and positions are ready.
        consumer.pause(fresh)
        var positions: [TopicPartition: Int64] = [:]
        if configuration.deadLetter.quarantine {
            let topics = Array(Set(fresh.map(\.topic))).sorted()
            await retrying("load quarantine") { try await self.quarantine.load(topics, reader: self.reader) }
        }
        if case .sink(let sink) = target {
            var stored: [TopicPartition: Int64] = [:]
            await retrying("read stored offsets") {
                stored = try await sink.storedOffsets(group: self.configuration.group, partitions: fresh)
            }
            state.withLock { s in
                for (tp, o) in stored { s.partitions[tp]?.stored = o }
            }
            positions = stored.filter { fresh.contains($0.key) }
            logger.info("positions from the sink", metadata: [BrookLogKey.offsets: "\(positions.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" })"])
        }
        let ready = state.withLock { s -> [TopicPartition] in
            var ready: [TopicPartition] = []
            for tp in fresh {
                guard var c = s.partitions[tp], c.loading else { continue }
                // Records that arrived while loading were not taken: fetch them again.
                if positions[tp] == nil, let r = c.rewind { positions[tp] = r }
                c.loading = false
                c.rewind = nil
                s.partitions[tp] = c
                ready.append(tp)
            }
            return ready
        }
        do {
            try consumer.seek(to: positions.filter { ready.contains($0.key) })
        } catch {
            logger.error("seek failed", metadata: [BrookLogKey.error: "\(error)"])
        }
        consumer.resume(ready)
    }

    /// Partitions going away (or, with `commit: false`, already gone): queued records are
    /// dropped, handler calls in progress finish, the finished prefix is committed.
    func revoked(_ tps: [TopicPartition], consumer: KafkaConsumer, commit: Bool) async {
        let set = Set(tps)
        state.withLock { s in
            for tp in tps { s.partitions[tp]?.revoking = true }
            s.dropQueued(of: set)
        }
        let deadline = ContinuousClock.now + configuration.consumer.group.rebalanceTimeout
        while state.withLock({ $0.lanesRunning(of: set) }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        if commit { await commitFinished(consumer, of: set) }
        state.withLock { s in
            for tp in tps { s.partitions[tp] = nil }
            s.lanes = s.lanes.filter { !set.contains($0.key.tp) || $0.value.running }
            s.pausedForBackpressure.subtract(set)
        }
        wake.yield()
    }

    func commitLoop(_ consumer: KafkaConsumer) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.commitInterval)
            await commitFinished(consumer, of: nil)
        }
    }

    /// Commits the contiguous finished prefix of `tps` (of every partition still owned if nil).
    func commitFinished(_ consumer: KafkaConsumer, of tps: Set<TopicPartition>?) async {
        let offsets = state.withLock { s -> [TopicPartition: (Int64, UInt64, ContinuousClock.Instant?)] in
            var out: [TopicPartition: (Int64, UInt64, ContinuousClock.Instant?)] = [:]
            for (tp, c) in s.partitions where !c.fenced && (tps?.contains(tp) ?? !c.revoking) {
                if let o = c.tracker.committable, o != c.lastCommitted {
                    out[tp] = (o, c.epoch, c.finishedSinceCommit)
                    s.partitions[tp]?.finishedSinceCommit = nil
                }
            }
            return out
        }
        guard !offsets.isEmpty else { return }
        do {
            try await consumer.commit(offsets: offsets.mapValues { $0.0 })
            let now = ContinuousClock.now
            let committed = metrics.stage(.committed)
            state.withLock { s in
                for (tp, (o, epoch, _)) in offsets where s.partitions[tp]?.epoch == epoch { s.partitions[tp]?.lastCommitted = o }
            }
            for (_, (_, _, since)) in offsets { if let since { committed.record(now - since) } }
        } catch {
            logger.warning("commit failed", metadata: [BrookLogKey.error: "\(error)"])
        }
    }

    /// Retries `body` with backoff until it succeeds or the pipeline stops.
    func retrying(_ what: String, _ body: () async throws -> Void) async {
        var attempt = 0
        while !state.withLock({ $0.stopping }) {
            do {
                try await body()
                return
            } catch {
                attempt += 1
                logger.warning("\(what) failed, retrying", metadata: [BrookLogKey.error: "\(error)", BrookLogKey.attempt: "\(attempt)"])
                try? await Task.sleep(for: configuration.retry.backoff(attempt: attempt))
            }
        }
    }
}
