import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    func handleOffsetFetch(_ r: OffsetFetchRequest, _ ctx: RequestContext) -> OffsetFetchResponse {
        groups.fetchOffsets(r, version: ctx.version)
    }
}
