import BrookProtocol

extension Broker {
    func handleDescribeConfigs(_ r: DescribeConfigsRequest, _ ctx: RequestContext) -> DescribeConfigsResponse {
        var resp = DescribeConfigsResponse()
        resp.results = r.resources.map { res in
            var out = DescribeConfigsResponse.DescribeConfigsResult()
            out.resourceType = res.resourceType
            out.resourceName = res.resourceName
            switch ConfigResourceType(rawValue: res.resourceType) {
            case .topic:
                if let t = topic(named: res.resourceName) {
                    out.configs = describeTopicConfigs(t, keys: res.configurationKeys, synonyms: r.includeSynonyms, version: ctx.version)
                } else {
                    out.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    out.errorMessage = "Topic \(res.resourceName) does not exist"
                }
            case .broker:
                if res.resourceName.isEmpty || res.resourceName == "\(config.nodeId)" {
                    out.configs = describeBrokerConfigs(keys: res.configurationKeys, synonyms: r.includeSynonyms)
                } else {
                    out.errorCode = ErrorCode.invalidRequest.rawValue
                    out.errorMessage = "Unexpected broker id, expected \(config.nodeId) but received \(res.resourceName)"
                }
            case nil:
                out.errorCode = ErrorCode.invalidRequest.rawValue
                out.errorMessage = "Unsupported resource type \(res.resourceType)"
            }
            return out
        }
        return resp
    }
}
