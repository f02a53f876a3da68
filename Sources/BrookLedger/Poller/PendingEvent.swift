/// A row for the poller's `pending_events` queue: the same bytes a Kafka record would carry.
public struct PendingEvent: Sendable, Hashable {
    /// Known for well-formed events; nil for bytes that are not an event at all.
    public var eventId: String?
    public var account: String
    public var payload: [UInt8]

    public init(eventId: String?, account: String, payload: [UInt8]) {
        self.eventId = eventId
        self.account = account
        self.payload = payload
    }

    /// The poller bucket of the account: FNV-1a, stable across processes and languages.
    public var bucket: Int { Self.bucket(of: account) }

    public static func bucket(of account: String) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in account.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return Int(hash % UInt32(LedgerSchema.pollerBuckets))
    }
}
