/// Errors raised while decoding bytes that came off the wire.
///
/// Decoders never trap on bad input: every malformed, truncated or oversized field becomes one of
/// these, so a server can close that one connection and keep serving the rest.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The buffer ended before the field did.
    case truncated(field: String)
    /// A length or count is negative (and not the null marker) or larger than the remaining bytes.
    case invalidLength(field: String, length: Int)
    /// A varint ran past its maximum width.
    case varintTooLong
    /// A string was not valid UTF-8.
    case invalidUTF8(field: String)
    /// A null value where the version does not allow one.
    case unexpectedNull(field: String)
    /// The API key is not one this implementation knows.
    case unknownAPIKey(Int16)
    /// The version is outside what this implementation supports for the API.
    case unsupportedVersion(apiKey: Int16, version: Int16)
    /// A record batch failed validation.
    case corruptRecordBatch(String)
    /// Compressed data could not be decompressed (or the codec is unavailable).
    case compression(String)
    /// The value cannot be represented in the target version (e.g. a field a version lacks).
    case unrepresentable(String)

    public var description: String {
        switch self {
        case .truncated(let f): return "truncated input while reading \(f)"
        case .invalidLength(let f, let l): return "invalid length \(l) for \(f)"
        case .varintTooLong: return "varint longer than allowed"
        case .invalidUTF8(let f): return "invalid UTF-8 in \(f)"
        case .unexpectedNull(let f): return "null not allowed for \(f)"
        case .unknownAPIKey(let k): return "unknown API key \(k)"
        case .unsupportedVersion(let k, let v): return "unsupported version \(v) of API \(k)"
        case .corruptRecordBatch(let s): return "corrupt record batch: \(s)"
        case .compression(let s): return "compression: \(s)"
        case .unrepresentable(let s): return "unrepresentable: \(s)"
        }
    }
}
