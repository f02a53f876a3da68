import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    func handleLeaveGroup(_ r: LeaveGroupRequest, _ ctx: RequestContext) async -> LeaveGroupResponse {
        await groups.leaveGroup(r, version: ctx.version)
    }
}
