import BrookProtocol

extension Broker {
    /// No SASL mechanism is enabled: clients configured for SASL learn it here and stop.
    func handleSaslHandshake(_ r: SaslHandshakeRequest, _ ctx: RequestContext) -> SaslHandshakeResponse {
        var resp = SaslHandshakeResponse()
        resp.errorCode = ErrorCode.unsupportedSaslMechanism.rawValue
        resp.mechanisms = []
        return resp
    }
}
