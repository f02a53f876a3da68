import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    /// Answers once the tombstones of the deleted offsets are written.
    func handleOffsetDelete(_ r: OffsetDeleteRequest, _ ctx: RequestContext) async -> OffsetDeleteResponse {
        await groups.deleteOffsets(r, version: ctx.version)
    }
}
