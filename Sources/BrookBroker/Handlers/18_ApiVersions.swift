import BrookProtocol

extension Broker {
    func handleApiVersions(_ r: ApiVersionsRequest, _ ctx: RequestContext) -> ApiVersionsResponse {
        supportedApiVersions()
    }

    /// Every API Brook serves, advertised from version 0: old librdkafka (Debian's 2.0.2, kcat)
    /// only enables features when the advertised range contains the low versions it knows.
    /// Also the answer to an ApiVersions of a version we do not support (see `handle(frame:)`).
    func supportedApiVersions() -> ApiVersionsResponse {
        var r = ApiVersionsResponse()
        r.apiKeys = APIKey.allCases.map { api in
            var v = ApiVersionsResponse.ApiVersion()
            v.apiKey = api.rawValue
            v.minVersion = api.versions.lowerBound
            v.maxVersion = api.versions.upperBound
            return v
        }
        return r
    }
}
