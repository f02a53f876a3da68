/// Keeps responses in request order on one connection.
///
/// Kafka clients match responses by correlation id but most (librdkafka included) also require
/// them in request order. Requests finish out of order here (a long-polling fetch behind a quick
/// metadata call), so each request takes a slot and a finished response is written only once
/// every earlier slot is done. No I/O: the handler performs the returned writes.
public struct ResponseQueue<Response> {
    private var nextSlot: UInt64 = 0
    private var firstPending: UInt64 = 0
    private var done: [UInt64: Response?] = [:]

    public init() {}

    /// Reserves the next slot for a request that was just read.
    public mutating func reserve() -> UInt64 {
        defer { nextSlot += 1 }
        return nextSlot
    }

    /// Completes `slot` (nil = no response, e.g. produce with acks=0) and returns the responses
    /// that can now be written, in order.
    public mutating func complete(_ slot: UInt64, with response: Response?) -> [Response] {
        done[slot] = .some(response)
        var ready: [Response] = []
        while let entry = done.removeValue(forKey: firstPending) {
            if let r = entry { ready.append(r) }
            firstPending += 1
        }
        return ready
    }

    /// Requests read but not yet answered.
    public var inFlight: Int { Int(nextSlot - firstPending) }
}
