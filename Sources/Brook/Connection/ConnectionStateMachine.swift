import BrookProtocol
import NIOCore

/// The request/response bookkeeping of one broker connection, without I/O.
///
/// Kafka answers requests on a connection in the order they were sent, each response carrying the
/// request's correlation id. The state machine hands out ids, remembers what each in-flight
/// request needs to decode its response, and turns every event into an action for the channel
/// handler (postgres-nio's split: this decides, the handler does).
struct ConnectionStateMachine<Pending> {
    enum State {
        case open
        case closed(String)
    }

    enum ResponseAction {
        case deliver(Pending, headerVersion: Int16)
        /// A response nobody asked for, or out of order: the connection cannot be trusted.
        case closeConnection(String)
    }

    private(set) var state: State = .open
    private var nextCorrelationId: Int32 = 1
    /// In-flight requests in send order (responses arrive in this order). A ring buffer, so a
    /// delivered entry is released at once: its promise holds the response frame (a fetch
    /// response of up to a few MiB), and keeping answered entries around kept dozens alive.
    private var inFlight = CircularBuffer<(id: Int32, headerVersion: Int16, pending: Pending)>()

    var inFlightCount: Int { inFlight.count }

    /// Registers a request that expects a response; returns its correlation id, or nil when closed.
    mutating func send(responseHeaderVersion: Int16, pending: Pending) -> Int32? {
        guard case .open = state else { return nil }
        let id = nextId()
        inFlight.append((id, responseHeaderVersion, pending))
        return id
    }

    /// A correlation id for a request without a response (produce with acks=0).
    mutating func sendWithoutResponse() -> Int32? {
        guard case .open = state else { return nil }
        return nextId()
    }

    private mutating func nextId() -> Int32 {
        defer { nextCorrelationId = nextCorrelationId == Int32.max ? 1 : nextCorrelationId + 1 }
        return nextCorrelationId
    }

    mutating func responseReceived(correlationId: Int32) -> ResponseAction {
        guard let first = inFlight.first else {
            return .closeConnection("response with correlation id \(correlationId) but no request in flight")
        }
        guard first.id == correlationId else {
            return .closeConnection("expected correlation id \(first.id), got \(correlationId)")
        }
        inFlight.removeFirst()
        return .deliver(first.pending, headerVersion: first.headerVersion)
    }

    /// The connection closed: every in-flight request fails with `reason`.
    mutating func close(_ reason: String) -> [Pending] {
        if case .closed = state { return [] }
        state = .closed(reason)
        let failed = inFlight.map(\.pending)
        inFlight.removeAll()
        return failed
    }
}
