import BrookProtocol

/// What a group coordinator's error code means for the member, the same for every group API
/// (JoinGroup, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch). Each request then decides what
/// to do about it (``GroupMembershipStateMachine``); the meaning is written once, here.
enum CoordinatorError: Equatable, Sendable {
    /// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE: the group moved to another broker or its
    /// coordinator is down: look it up again.
    case coordinatorMoved
    /// COORDINATOR_LOAD_IN_PROGRESS: the coordinator is still reading the group's state; the
    /// same coordinator answers later.
    case coordinatorLoading
    /// REBALANCE_IN_PROGRESS: the group is forming a new generation; the member must rejoin.
    case rebalanceInProgress
    /// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION: the coordinator no longer counts this member in
    /// its generation; its partitions are lost. An unknown member also forgets its id.
    case memberLeftGeneration(forgetMemberId: Bool)
    /// MEMBER_ID_REQUIRED (KIP-394): join again with the id the coordinator chose.
    case memberIdRequired
    /// FENCED_INSTANCE_ID: another consumer took over this static member's instance id.
    case fenced
    /// Any other error: what it means depends on the request.
    case other(ErrorCode)

    /// The meaning of `code`; nil for no error.
    init?(_ code: ErrorCode) {
        switch code {
        case .none: return nil
        case .notCoordinator, .coordinatorNotAvailable: self = .coordinatorMoved
        case .coordinatorLoadInProgress: self = .coordinatorLoading
        case .rebalanceInProgress: self = .rebalanceInProgress
        case .unknownMemberId: self = .memberLeftGeneration(forgetMemberId: true)
        case .illegalGeneration: self = .memberLeftGeneration(forgetMemberId: false)
        case .memberIdRequired: self = .memberIdRequired
        case .fencedInstanceId: self = .fenced
        default: self = .other(code)
        }
    }
}
