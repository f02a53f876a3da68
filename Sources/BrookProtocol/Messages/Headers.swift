import NIOCore

/// Request header v0–v2. v1 adds the client id (always a classic nullable string, even in v2);
/// v2 adds tagged fields.
public struct RequestHeader: Hashable, Sendable {
    public var apiKey: Int16
    public var apiVersion: Int16
    public var correlationId: Int32
    public var clientId: String?
    public var unknownTaggedFields: [TaggedField] = []

    public init(apiKey: Int16, apiVersion: Int16, correlationId: Int32, clientId: String?) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationId = correlationId
        self.clientId = clientId
    }

    /// Reads the header; the header version follows from the API key and version, so the
    /// key/version pair is read first. Unknown keys decode as v1 headers (all a broker needs to
    /// answer with an error).
    public static func decode(from buf: inout ByteBuffer) throws -> RequestHeader {
        let key = try buf.readKafkaInt(Int16.self, "api_key")
        let version = try buf.readKafkaInt(Int16.self, "api_version")
        let correlation = try buf.readKafkaInt(Int32.self, "correlation_id")
        let clientId = try buf.readKafkaNullableString(compact: false, "client_id")
        var header = RequestHeader(apiKey: key, apiVersion: version, correlationId: correlation, clientId: clientId)
        if let api = APIKey(rawValue: key), api.versions.contains(version), api.requestHeaderVersion(version) >= 2 {
            header.unknownTaggedFields = try buf.readTaggedFields { _, _ in false }
        }
        return header
    }

    public func encode(into buf: inout ByteBuffer, headerVersion: Int16) {
        buf.writeInteger(apiKey)
        buf.writeInteger(apiVersion)
        buf.writeInteger(correlationId)
        if headerVersion >= 1 { buf.writeKafkaString(clientId, compact: false) }
        if headerVersion >= 2 {
            buf.writeUnsignedVarint(UInt32(unknownTaggedFields.count))
            for t in unknownTaggedFields {
                buf.writeUnsignedVarint(t.tag)
                buf.writeUnsignedVarint(UInt32(t.data.readableBytes))
                buf.writeImmutableBuffer(t.data)
            }
        }
    }
}

/// Response header v0 (correlation id) and v1 (plus tagged fields).
public struct ResponseHeader: Hashable, Sendable {
    public var correlationId: Int32
    public var unknownTaggedFields: [TaggedField] = []

    public init(correlationId: Int32) {
        self.correlationId = correlationId
    }

    public static func decode(from buf: inout ByteBuffer, headerVersion: Int16) throws -> ResponseHeader {
        var h = ResponseHeader(correlationId: try buf.readKafkaInt(Int32.self, "correlation_id"))
        if headerVersion >= 1 {
            h.unknownTaggedFields = try buf.readTaggedFields { _, _ in false }
        }
        return h
    }

    public func encode(into buf: inout ByteBuffer, headerVersion: Int16) {
        buf.writeInteger(correlationId)
        if headerVersion >= 1 {
            buf.writeUnsignedVarint(UInt32(unknownTaggedFields.count))
            for t in unknownTaggedFields {
                buf.writeUnsignedVarint(t.tag)
                buf.writeUnsignedVarint(UInt32(t.data.readableBytes))
                buf.writeImmutableBuffer(t.data)
            }
        }
    }
}
