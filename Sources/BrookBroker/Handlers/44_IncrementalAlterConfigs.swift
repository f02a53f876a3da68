import BrookProtocol

extension Broker {
    func handleIncrementalAlterConfigs(_ r: IncrementalAlterConfigsRequest, _ ctx: RequestContext) -> IncrementalAlterConfigsResponse {
        var resp = IncrementalAlterConfigsResponse()
        resp.responses = r.resources.map { res in
            let (code, msg) = alter(resourceType: res.resourceType, name: res.resourceName, validateOnly: r.validateOnly) { configs, effective throws(TopicError) in
                for c in res.configs {
                    let current: String = configs[c.name] ?? effective(c.name)
                    switch c.configOperation {
                    case 0: // SET
                        guard let v = c.value else { throw TopicError(.invalidRequest, "SET of \(c.name) needs a value") }
                        configs[c.name] = v
                    case 1: // DELETE
                        configs[c.name] = nil
                    case 2: // APPEND (list configs)
                        var items = current.split(separator: ",").map(String.init).filter { !$0.isEmpty }
                        for v in (c.value ?? "").split(separator: ",").map(String.init) where !items.contains(v) { items.append(v) }
                        configs[c.name] = items.joined(separator: ",")
                    case 3: // SUBTRACT
                        let remove = Set((c.value ?? "").split(separator: ",").map(String.init))
                        configs[c.name] = current.split(separator: ",").map(String.init).filter { !remove.contains($0) }.joined(separator: ",")
                    default:
                        throw TopicError(.invalidRequest, "Unknown config operation \(c.configOperation)")
                    }
                }
            }
            var out = IncrementalAlterConfigsResponse.AlterConfigsResourceResponse()
            out.resourceType = res.resourceType
            out.resourceName = res.resourceName
            out.errorCode = code.rawValue
            out.errorMessage = msg
            return out
        }
        return resp
    }
}
