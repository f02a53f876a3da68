import BrookProtocol

extension Broker {
    /// Without a successful handshake (never, see `handleSaslHandshake`) there is nothing to
    /// authenticate.
    func handleSaslAuthenticate(_ r: SaslAuthenticateRequest, _ ctx: RequestContext) -> SaslAuthenticateResponse {
        var resp = SaslAuthenticateResponse()
        resp.errorCode = ErrorCode.illegalSaslState.rawValue
        resp.errorMessage = "SASL is not enabled on this listener"
        return resp
    }
}
