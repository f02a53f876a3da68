import BrookProtocol

/// The producer id and epoch an idempotent producer's batches carry.
struct ProducerIdentity: Equatable, Sendable {
    var producerId: Int64
    var epoch: Int16
}

/// One partition's sequence state: which identity its sequences belong to and the next one.
struct PartitionSequence: Sendable {
    /// The identity the partition's sequences count under; nil until the first batch is taken.
    var identity: ProducerIdentity?
    /// The generation of `identity` (how many identities the producer had when adopted).
    var identityGeneration = -1
    var nextSequence: Int32 = 0
    /// The broker can no longer place this partition's sequences: its unacknowledged batches
    /// are re-sequenced under an identity newer than `resetGeneration` once none is in flight.
    var needsReset = false
    var resetGeneration = 0

    var producerId: Int64 { identity?.producerId ?? -1 }
    var producerEpoch: Int16 { identity?.epoch ?? -1 }
}

/// What the sender does with a batch whose produce attempt did not succeed.
enum BatchAction: Sendable {
    /// The broker already has it (a retried duplicate): report it acknowledged.
    case complete
    /// Send it again, not before `at`.
    case retry(at: ContinuousClock.Instant)
    /// Report it failed with this error.
    case fail(KafkaClientError)
}

/// The actions for one failed batch: what happens to the batch, and what the producer must do.
struct ProduceFailureActions: Sendable {
    var batch: BatchAction
    /// Ask for a new producer id (InitProducerId); the partition re-sequences under it.
    var resetIdentity = false
    /// Refresh the metadata (the leader may have moved).
    var refreshMetadata = false
}

/// A produce attempt of one batch that came back without an acknowledgement.
struct ProduceFailure: Sendable {
    /// The partition's error code; nil when the request failed as a whole (connection lost,
    /// timeout): then whether the broker wrote the batch is unknown.
    var code: ErrorCode?
    var error: KafkaClientError
    /// The broker answered with an error for this partition, so it did not write the batch.
    var definitelyNotWritten: Bool
    /// The batch is the partition's oldest unacknowledged one.
    var isOldestUnacknowledged: Bool
    /// Retries already made.
    var attempts: Int
    var deadline: ContinuousClock.Instant
    /// The batch was given a sequence number (it went out as part of the idempotent stream).
    var hasSequence: Bool
    /// "topic-partition", for error messages.
    var partitionName: String
}

/// Whether a partition may take its next batch, as far as sequences are concerned.
enum SendReadiness: Equatable, Sendable {
    /// Wait: no producer id yet, or a reset waits for in-flight requests or a new identity.
    case blocked
    case ready
    /// Re-sequence every unacknowledged batch from 0 under this identity, then send.
    case resequence(ProducerIdentity)
}

/// Kafka's retry and idempotence rules for a producer, as a state machine that does no I/O:
/// events (a produce failure, an identity assigned, batches expired) change the state and return
/// actions the sender runs. The rules follow the Java client and librdkafka: an out-of-order
/// error on the oldest unacknowledged batch means the broker lost the sequence (fail it, new
/// producer id); on a later batch it is a consequence of an earlier failure (resend in order); an
/// unknown producer id or a stale epoch resends under a new producer id; while a partition waits
/// to re-sequence, only batches the broker certainly did not write may be resent.
///
/// Not thread-safe: it lives inside the producer's locked state.
struct IdempotenceStateMachine: Sendable {
    let enabled: Bool
    /// `retries`: attempts after the first.
    let retries: Int
    let deliveryTimeout: Duration

    private(set) var identity: ProducerIdentity?
    /// Incremented per identity assigned.
    private(set) var generation = 0
    /// An InitProducerId is wanted (at start, or after a reset).
    private(set) var identityRequested: Bool
    /// InitProducerId failed for good: the producer cannot send.
    private(set) var fatal: KafkaClientError?

    init(enabled: Bool, retries: Int, deliveryTimeout: Duration) {
        self.enabled = enabled
        self.retries = retries
        self.deliveryTimeout = deliveryTimeout
        self.identityRequested = enabled
    }

    /// Whether the producer should send InitProducerId now.
    var needsIdentity: Bool { identityRequested && fatal == nil }

    // MARK: events

    /// InitProducerId answered.
    mutating func identityAssigned(_ id: ProducerIdentity) {
        identity = id
        generation += 1
        identityRequested = false
    }

    /// InitProducerId failed with a non-retriable error: every batch fails with it.
    mutating func identityFailed(_ error: KafkaClientError) {
        fatal = error
    }

    /// Batches of the partition expired unanswered (their outcome unknown): its later sequences
    /// cannot be trusted. Returns whether a new identity is wanted.
    mutating func batchesExpired(_ p: inout PartitionSequence) -> Bool {
        guard enabled else { return false }
        requestReset(&p)
        return true
    }

    /// A batch that had a sequence could not be encoded: the ones after it would leave a gap.
    mutating func batchAbandoned(_ p: inout PartitionSequence, hadSequence: Bool) -> Bool {
        guard enabled, hadSequence else { return false }
        requestReset(&p)
        return true
    }

    /// Whether the partition may take its next batch (`inFlight`: its requests outstanding).
    /// Adopts the current identity for a partition that has none yet.
    mutating func readiness(_ p: inout PartitionSequence, inFlight: Int) -> SendReadiness {
        guard enabled else { return .ready }
        guard let identity else { return .blocked }
        if p.needsReset {
            guard inFlight == 0, generation > p.resetGeneration else { return .blocked }
            return .resequence(identity)
        }
        if p.identityGeneration < 0 {
            p.identity = identity
            p.identityGeneration = generation
            p.nextSequence = 0
        }
        return .ready
    }

    /// After `.resequence`: the unacknowledged batches (oldest first, with these record counts)
    /// take the returned base sequences; the partition continues after them.
    mutating func resequence(_ p: inout PartitionSequence, under identity: ProducerIdentity,
                             recordCounts: [Int32]) -> [Int32] {
        var seq: Int32 = 0
        var bases: [Int32] = []
        bases.reserveCapacity(recordCounts.count)
        for n in recordCounts {
            bases.append(seq)
            seq = incrementSequence(seq, by: n)
        }
        p.identity = identity
        p.identityGeneration = generation
        p.nextSequence = seq
        p.needsReset = false
        return bases
    }

    /// A new batch of `records` records leaves the partition: its base sequence.
    @inline(__always)
    func takeSequence(_ p: inout PartitionSequence, records: Int32) -> Int32 {
        let base = p.nextSequence
        p.nextSequence = incrementSequence(base, by: records)
        return base
    }

    /// A produce attempt failed: retry, fail, or (duplicate) complete, and what else to do.
    ///
    /// - Parameters:
    ///   - retryBackoff: the wait before the next attempt (the caller's jittered backoff).
    ///   - stopping: the producer is stopping; nothing is retried.
    mutating func produceFailed(_ f: ProduceFailure, partition p: inout PartitionSequence,
                                now: ContinuousClock.Instant, retryBackoff: Duration,
                                stopping: Bool) -> ProduceFailureActions {
        if f.code == .duplicateSequenceNumber {
            // A retry of a batch the broker already has but can no longer place.
            return ProduceFailureActions(batch: .complete)
        }
        var actions = ProduceFailureActions(batch: .fail(f.error))
        actions.refreshMetadata = f.code.map(Self.leaderMayHaveMoved) ?? true
        var retriable = f.code.map { $0.isRetriable } ?? f.error.isRetriable
        if enabled && !stopping {
            switch f.code {
            case .outOfOrderSequenceNumber?:
                if p.needsReset || !f.isOldestUnacknowledged {
                    // A consequence of an earlier batch's failure: resend in order.
                    retriable = true
                } else {
                    // The oldest unacknowledged batch is out of order: the broker lost our
                    // sequence. Kafka fails the batch and starts over with a new producer id.
                    requestReset(&p)
                    actions.resetIdentity = true
                    return actions
                }
            case .unknownProducerId?, .invalidProducerEpoch?, .invalidProducerIdMapping?:
                // The broker forgot the producer (retention removed its batches) or fenced its
                // epoch: the batch was not written; resend under a new producer id.
                requestReset(&p)
                actions.resetIdentity = true
                retriable = true
            default:
                if p.needsReset {
                    // Waiting to re-sequence: a rejected batch is rewritten, an unknown outcome fails.
                    retriable = f.definitelyNotWritten
                }
            }
        }
        if retriable && !stopping && f.attempts < retries && now < f.deadline {
            actions.batch = .retry(at: now + retryBackoff)
            return actions
        }
        if enabled && f.hasSequence && !stopping {
            // Later batches of this partition carry sequences after this one: start over.
            requestReset(&p)
            actions.resetIdentity = true
        }
        if retriable && now >= f.deadline {
            actions.batch = .fail(.timedOut("delivery.timeout.ms (\(deliveryTimeout)) expired for \(f.partitionName); last error: \(f.error)"))
        }
        return actions
    }

    // MARK: helpers

    private mutating func requestReset(_ p: inout PartitionSequence) {
        if !p.needsReset {
            p.needsReset = true
            p.resetGeneration = generation
        }
        identityRequested = true
    }

    /// Errors after which the partition's leader should be looked up again.
    static func leaderMayHaveMoved(_ code: ErrorCode) -> Bool {
        switch code {
        case .notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch,
             .unknownLeaderEpoch, .kafkaStorageError, .unknownTopicId, .brokerNotAvailable:
            return true
        default:
            return false
        }
    }
}
