import BrookProtocol

// Group APIs are answered by the `GroupCoordinator` (Groups/); this file only forwards.
extension Broker {
    func handleHeartbeat(_ r: HeartbeatRequest, _ ctx: RequestContext) -> HeartbeatResponse {
        groups.heartbeat(r, version: ctx.version)
    }
}
