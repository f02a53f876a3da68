import BrookProtocol

extension Broker {
    /// This node coordinates every group; transaction coordinators (key type 1) do not exist,
    /// as Brook has no transactions.
    func handleFindCoordinator(_ r: FindCoordinatorRequest, _ ctx: RequestContext) -> FindCoordinatorResponse {
        var resp = FindCoordinatorResponse()
        let supported = r.keyType == 0
        if ctx.version >= 4 {
            resp.coordinators = r.coordinatorKeys.map { key in
                var c = FindCoordinatorResponse.Coordinator()
                c.key = key
                if supported {
                    c.nodeId = config.nodeId
                    c.host = advertisedHost
                    c.port = advertisedPort
                } else {
                    c.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
                    c.errorMessage = "transactions are not supported"
                    c.nodeId = -1
                    c.port = -1
                }
                return c
            }
        } else if supported {
            resp.nodeId = config.nodeId
            resp.host = advertisedHost
            resp.port = advertisedPort
        } else {
            resp.errorCode = ErrorCode.coordinatorNotAvailable.rawValue
            resp.errorMessage = "transactions are not supported"
            resp.nodeId = -1
            resp.port = -1
        }
        return resp
    }
}
