import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    /// Answers once the tombstones of the deleted groups are written.
    func handleDeleteGroups(_ r: DeleteGroupsRequest, _ ctx: RequestContext) async -> DeleteGroupsResponse {
        await groups.deleteGroups(r, version: ctx.version)
    }
}
