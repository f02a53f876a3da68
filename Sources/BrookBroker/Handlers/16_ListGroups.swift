import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    func handleListGroups(_ r: ListGroupsRequest, _ ctx: RequestContext) -> ListGroupsResponse {
        groups.listGroups(r, version: ctx.version)
    }
}
