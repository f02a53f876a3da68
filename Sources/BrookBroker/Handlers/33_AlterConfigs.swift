import BrookProtocol

extension Broker {
    func handleAlterConfigs(_ r: AlterConfigsRequest, _ ctx: RequestContext) -> AlterConfigsResponse {
        var resp = AlterConfigsResponse()
        resp.responses = r.resources.map { res in
            // AlterConfigs replaces the whole set of dynamic configs of the resource.
            let (code, msg) = alter(resourceType: res.resourceType, name: res.resourceName, validateOnly: r.validateOnly) { configs, _ throws(TopicError) in
                configs = [:]
                for c in res.configs {
                    if let v = c.value { configs[c.name] = v }
                }
            }
            var out = AlterConfigsResponse.AlterConfigsResourceResponse()
            out.resourceType = res.resourceType
            out.resourceName = res.resourceName
            out.errorCode = code.rawValue
            out.errorMessage = msg
            return out
        }
        return resp
    }
}
