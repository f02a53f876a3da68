import BrookProtocol
import Testing

@testable import Brook

/// The producer's sequence and retry rules without I/O, through the cases Kafka's Java client
/// and librdkafka handle.
@Suite("Idempotence state machine")
struct IdempotenceStateMachineTests {
    let now = ContinuousClock.now
    let backoff = Duration.milliseconds(100)
    let first = ProducerIdentity(producerId: 7, epoch: 0)
    let second = ProducerIdentity(producerId: 7, epoch: 1)

    func machine(enabled: Bool = true, retries: Int = 5) -> IdempotenceStateMachine {
        IdempotenceStateMachine(enabled: enabled, retries: retries, deliveryTimeout: .seconds(120))
    }

    /// A machine with an identity and a partition that sent `batches` batches of 10 records.
    func sending(batches: Int = 3) -> (IdempotenceStateMachine, PartitionSequence, [Int32]) {
        var sm = machine()
        sm.identityAssigned(first)
        var p = PartitionSequence()
        #expect(sm.readiness(&p, inFlight: 0) == .ready)
        let bases = (0..<batches).map { _ in sm.takeSequence(&p, records: 10) }
        return (sm, p, bases)
    }

    func failure(
        _ code: ErrorCode?, oldest: Bool = true, attempts: Int = 0, deadlineIn: Duration = .seconds(60),
        hasSequence: Bool = true, error: KafkaClientError? = nil
    ) -> ProduceFailure {
        ProduceFailure(
            code: code, error: error ?? .broker(code ?? .unknownServerError, resource: "t-0", message: nil),
            definitelyNotWritten: code != nil, isOldestUnacknowledged: oldest, attempts: attempts,
            deadline: now + deadlineIn, hasSequence: hasSequence, partitionName: "t-0")
    }

    func retries(_ a: ProduceFailureActions) -> Bool {
        if case .retry = a.batch { return true }
        return false
    }

    func fails(_ a: ProduceFailureActions) -> KafkaClientError? {
        if case .fail(let e) = a.batch { return e }
        return nil
    }

    // MARK: - identity and sequences

    @Test func partitionsWaitForAProducerIdThenCountFromZero() {
        var sm = machine()
        #expect(sm.needsIdentity)
        var p = PartitionSequence()
        #expect(sm.readiness(&p, inFlight: 0) == .blocked)
        sm.identityAssigned(first)
        #expect(!sm.needsIdentity && sm.identity == first && sm.generation == 1)
        #expect(sm.readiness(&p, inFlight: 0) == .ready)
        #expect(p.identity == first && p.producerId == 7 && p.producerEpoch == 0)
        #expect(sm.takeSequence(&p, records: 10) == 0)
        #expect(sm.takeSequence(&p, records: 5) == 10)
        #expect(p.nextSequence == 15)
    }

    @Test func sequencesWrapAfterInt32Max() {
        var (sm, p, _) = sending(batches: 0)
        p.nextSequence = Int32.max - 1
        #expect(sm.takeSequence(&p, records: 3) == Int32.max - 1)
        #expect(p.nextSequence == 1)
        _ = sm
    }

    @Test func withoutIdempotenceNothingWaitsForAnIdentity() {
        var sm = machine(enabled: false)
        #expect(!sm.needsIdentity)
        var p = PartitionSequence()
        #expect(sm.readiness(&p, inFlight: 3) == .ready)
        #expect(p.identity == nil && p.producerId == -1)
    }

    @Test func aFatalInitProducerIdStopsAskingForAnIdentity() {
        var sm = machine()
        sm.identityFailed(.broker(.clusterAuthorizationFailed, resource: nil, message: nil))
        #expect(!sm.needsIdentity)
        #expect(sm.fatal != nil)
    }

    // MARK: - duplicates and out-of-order sequences

    @Test func aDuplicateSequenceIsASuccess() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.duplicateSequenceNumber, attempts: 2), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        guard case .complete = a.batch else {
            Issue.record("a duplicate was not completed")
            return
        }
        #expect(!a.resetIdentity && !a.refreshMetadata && !p.needsReset)
    }

    @Test func outOfOrderOnTheOldestBatchFailsItAndAsksForANewProducerId() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.outOfOrderSequenceNumber, oldest: true), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(a)?.errorCode == .outOfOrderSequenceNumber)
        #expect(a.resetIdentity && !a.refreshMetadata)
        #expect(p.needsReset && sm.needsIdentity)
    }

    @Test func outOfOrderOnALaterBatchResendsItInOrder() {
        var (sm, p, _) = sending()
        // An earlier batch failed on the way (e.g. NOT_LEADER): the later ones are out of order.
        let a = sm.produceFailed(failure(.outOfOrderSequenceNumber, oldest: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        guard case .retry(let at) = a.batch else {
            Issue.record("a later out-of-order batch was not retried")
            return
        }
        #expect(at == now + backoff)
        #expect(!a.resetIdentity && !p.needsReset && !sm.needsIdentity)
    }

    @Test func outOfOrderWhileAResetIsPendingIsRetried() {
        var (sm, p, _) = sending()
        _ = sm.produceFailed(failure(.unknownProducerId), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        // The oldest batch, but the partition re-sequences anyway: no second reset.
        let a = sm.produceFailed(failure(.outOfOrderSequenceNumber, oldest: true), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(retries(a))
        #expect(!a.resetIdentity)
    }

    // MARK: - unknown producer id and fenced epochs

    @Test(arguments: [ErrorCode.unknownProducerId, .invalidProducerEpoch, .invalidProducerIdMapping])
    func aForgottenOrFencedProducerResendsUnderANewEpoch(_ code: ErrorCode) {
        var (sm, p, _) = sending(batches: 3)
        let a = sm.produceFailed(failure(code), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(retries(a))
        #expect(a.resetIdentity && p.needsReset && sm.needsIdentity)
        // The partition waits for its requests in flight and for the new identity.
        #expect(sm.readiness(&p, inFlight: 2) == .blocked)
        #expect(sm.readiness(&p, inFlight: 0) == .blocked)
        sm.identityAssigned(second)
        #expect(sm.readiness(&p, inFlight: 1) == .blocked)
        #expect(sm.readiness(&p, inFlight: 0) == .resequence(second))
        // The three unacknowledged batches start over from 0 under the bumped epoch.
        #expect(sm.resequence(&p, under: second, recordCounts: [10, 10, 10]) == [0, 10, 20])
        #expect(p.identity == second && p.nextSequence == 30 && !p.needsReset)
        #expect(sm.readiness(&p, inFlight: 0) == .ready)
        #expect(sm.takeSequence(&p, records: 1) == 30)
    }

    @Test func anIdentityAssignedBeforeTheResetDoesNotCount() {
        var (sm, p, _) = sending()
        _ = sm.produceFailed(failure(.unknownProducerId), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        // Still generation 1 (the identity the reset was asked against): blocked.
        #expect(sm.generation == p.resetGeneration)
        #expect(sm.readiness(&p, inFlight: 0) == .blocked)
    }

    @Test func whileWaitingToResequenceOnlyRejectedBatchesAreResent() {
        var (sm, p, _) = sending()
        _ = sm.produceFailed(failure(.unknownProducerId), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        // Rejected by the broker (certainly not written): rewritten under the new epoch.
        #expect(retries(sm.produceFailed(failure(.notEnoughReplicas, oldest: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)))
        // Outcome unknown (connection lost): it may be in the log; resending could duplicate it.
        let lost = sm.produceFailed(
            failure(nil, oldest: false, error: .connectionClosed("reset")), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(lost) != nil)
        #expect(lost.refreshMetadata)
    }

    // MARK: - leader changes

    @Test func notLeaderRefreshesMetadataAndRetries() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.notLeaderOrFollower), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(retries(a))
        #expect(a.refreshMetadata && !a.resetIdentity && !p.needsReset)
        // The later batches of the old leader come back the same way, and are retried in order.
        let later = sm.produceFailed(failure(.notLeaderOrFollower, oldest: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(retries(later) && later.refreshMetadata)
    }

    @Test(arguments: [ErrorCode.notLeaderOrFollower, .unknownTopicOrPartition, .leaderNotAvailable, .fencedLeaderEpoch, .kafkaStorageError])
    func errorsThatMoveTheLeaderRefreshMetadata(_ code: ErrorCode) {
        #expect(IdempotenceStateMachine.leaderMayHaveMoved(code))
    }

    @Test func aLostConnectionRetriesAndRefreshesMetadata() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(
            failure(nil, error: .connectionClosed("peer closed")), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(retries(a) && a.refreshMetadata && !a.resetIdentity)
    }

    // MARK: - giving up

    @Test func aFatalErrorFailsTheBatchAndResequencesTheRest() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.messageTooLarge, oldest: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(a)?.errorCode == .messageTooLarge)
        // Later batches carry sequences after the failed one: the broker would see a gap.
        #expect(a.resetIdentity && p.needsReset)
        #expect(!a.refreshMetadata)
    }

    @Test func aBatchWithoutASequenceFailsWithoutAReset() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.messageTooLarge, hasSequence: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(a) != nil && !a.resetIdentity && !p.needsReset)
    }

    @Test func retriesRunOutThenTheBatchFailsWithItsError() {
        var (sm, p, _) = sending()
        #expect(retries(sm.produceFailed(failure(.notEnoughReplicas, attempts: 4), partition: &p, now: now, retryBackoff: backoff, stopping: false)))
        let a = sm.produceFailed(failure(.notEnoughReplicas, attempts: 5), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(a)?.errorCode == .notEnoughReplicas)
        #expect(a.resetIdentity)
    }

    @Test func theDeliveryTimeoutEndsRetries() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.notEnoughReplicas, deadlineIn: .zero), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        guard case .fail(let e) = a.batch, e.code == .timedOut, let message = e.message else {
            Issue.record("an expired batch did not time out")
            return
        }
        #expect(message.contains("t-0") && message.contains("NOT_ENOUGH_REPLICAS"))
        #expect(a.resetIdentity)
        // A non-retriable error keeps its own error past the deadline.
        var (sm2, p2, _) = sending()
        let b = sm2.produceFailed(failure(.messageTooLarge, deadlineIn: .zero), partition: &p2, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(b)?.errorCode == .messageTooLarge)
    }

    @Test func expiredBatchesMakeThePartitionResequence() {
        var (sm, p, _) = sending()
        let expired = sm.batchesExpired(&p)
        #expect(expired)
        #expect(p.needsReset && sm.needsIdentity)
        var plain = machine(enabled: false)
        var q = PartitionSequence()
        let plainExpired = plain.batchesExpired(&q)
        #expect(!plainExpired)
        #expect(!q.needsReset)
    }

    @Test func anAbandonedBatchWithASequenceLeavesAGap() {
        var (sm, p, _) = sending()
        let unsequenced = sm.batchAbandoned(&p, hadSequence: false)
        #expect(!unsequenced && !p.needsReset)
        let sequenced = sm.batchAbandoned(&p, hadSequence: true)
        #expect(sequenced)
        #expect(p.needsReset)
    }

    @Test func nothingIsRetriedWhileStopping() {
        var (sm, p, _) = sending()
        let a = sm.produceFailed(failure(.notLeaderOrFollower), partition: &p, now: now, retryBackoff: backoff, stopping: true)
        #expect(fails(a)?.errorCode == .notLeaderOrFollower)
        #expect(!a.resetIdentity && !p.needsReset)
        let unknown = sm.produceFailed(failure(.unknownProducerId), partition: &p, now: now, retryBackoff: backoff, stopping: true)
        #expect(fails(unknown) != nil && !unknown.resetIdentity)
    }

    @Test func withoutIdempotenceOutOfOrderIsNotRetried() {
        var sm = machine(enabled: false)
        var p = PartitionSequence()
        let a = sm.produceFailed(failure(.outOfOrderSequenceNumber, hasSequence: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)
        #expect(fails(a) != nil && !a.resetIdentity)
        #expect(retries(sm.produceFailed(failure(.notLeaderOrFollower, hasSequence: false), partition: &p, now: now, retryBackoff: backoff, stopping: false)))
    }
}
