import BrookProtocol

extension Broker {
    /// A cluster of one: this node is every broker and the controller.
    func handleDescribeCluster(_ r: DescribeClusterRequest, _ ctx: RequestContext) -> DescribeClusterResponse {
        var resp = DescribeClusterResponse()
        resp.clusterId = config.clusterId
        resp.controllerId = config.nodeId
        resp.endpointType = r.endpointType
        var b = DescribeClusterResponse.DescribeClusterBroker()
        b.brokerId = config.nodeId
        b.host = advertisedHost
        b.port = advertisedPort
        resp.brokers = [b]
        return resp
    }
}
