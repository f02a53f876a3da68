import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    /// A follower waits here for the leader's assignment; the leader until it is durable.
    func handleSyncGroup(_ r: SyncGroupRequest, _ ctx: RequestContext) async -> SyncGroupResponse {
        await groups.syncGroup(r, version: ctx.version)
    }
}
