import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    func handleDescribeGroups(_ r: DescribeGroupsRequest, _ ctx: RequestContext) -> DescribeGroupsResponse {
        groups.describeGroups(r, version: ctx.version)
    }
}
