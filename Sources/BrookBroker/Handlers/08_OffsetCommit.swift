import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    /// Answers once the offsets are durable in `__consumer_offsets`.
    func handleOffsetCommit(_ r: OffsetCommitRequest, _ ctx: RequestContext) async -> OffsetCommitResponse {
        await groups.commitOffsets(r, version: ctx.version)
    }
}
