import BrookProtocol
import Logging

/// One request's header and connection, passed to handlers.
struct RequestContext: Sendable {
    let header: RequestHeader
    let api: APIKey
    let connection: Connection
    var version: Int16 { header.apiVersion }
    var logger: Logger {
        var l = connection.logger
        l[metadataKey: BrookLogKey.clientId] = "\(header.clientId ?? "")"
        l[metadataKey: BrookLogKey.api] = "\(api.name)"
        return l
    }
}
