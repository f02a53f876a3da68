import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    /// Answers when the rebalance completes (or the member must retry with its new id).
    func handleJoinGroup(_ r: JoinGroupRequest, _ ctx: RequestContext) async -> JoinGroupResponse {
        await groups.joinGroup(r, version: ctx.version, clientId: ctx.header.clientId ?? "", clientHost: ctx.connection.clientHost)
    }
}
