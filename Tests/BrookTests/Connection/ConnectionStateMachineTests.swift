import Testing

@testable import Brook

/// The connection's bookkeeping without I/O: ids, ordering, and not keeping answered requests.
@Suite struct ConnectionStateMachineTests {
    final class Pending {
        let name: String
        init(_ name: String) { self.name = name }
    }

    @Test func deliversInSendOrderWithTheirHeaderVersions() {
        var sm = ConnectionStateMachine<String>()
        let a = sm.send(responseHeaderVersion: 0, pending: "a")!
        let b = sm.send(responseHeaderVersion: 1, pending: "b")!
        #expect(b == a + 1)
        #expect(sm.inFlightCount == 2)
        guard case .deliver("a", headerVersion: 0) = sm.responseReceived(correlationId: a) else {
            Issue.record("a not delivered")
            return
        }
        guard case .deliver("b", headerVersion: 1) = sm.responseReceived(correlationId: b) else {
            Issue.record("b not delivered")
            return
        }
        #expect(sm.inFlightCount == 0)
    }

    @Test func outOfOrderOrUnaskedResponsesCloseTheConnection() {
        var sm = ConnectionStateMachine<String>()
        guard case .closeConnection = sm.responseReceived(correlationId: 1) else {
            Issue.record("a response with nothing in flight was accepted")
            return
        }
        let a = sm.send(responseHeaderVersion: 0, pending: "a")!
        _ = sm.send(responseHeaderVersion: 0, pending: "b")!
        guard case .closeConnection = sm.responseReceived(correlationId: a + 1) else {
            Issue.record("an out-of-order response was accepted")
            return
        }
    }

    @Test func requestsWithoutResponsesStillTakeIds() {
        var sm = ConnectionStateMachine<String>()
        let a = sm.send(responseHeaderVersion: 0, pending: "a")!
        let none = sm.sendWithoutResponse()!
        let b = sm.send(responseHeaderVersion: 0, pending: "b")!
        #expect(none == a + 1 && b == a + 2)
        #expect(sm.inFlightCount == 2)
    }

    @Test func closeFailsEverythingStillInFlightAndRefusesNewRequests() {
        var sm = ConnectionStateMachine<String>()
        let a = sm.send(responseHeaderVersion: 0, pending: "a")!
        _ = sm.send(responseHeaderVersion: 0, pending: "b")
        _ = sm.send(responseHeaderVersion: 0, pending: "c")
        _ = sm.responseReceived(correlationId: a)
        #expect(sm.close("gone") == ["b", "c"])
        #expect(sm.close("again") == [])
        #expect(sm.send(responseHeaderVersion: 0, pending: "d") == nil)
    }

    /// A delivered request's pending value (a promise that holds the response frame, up to MiBs
    /// for a fetch) must be released at once, not kept until some later compaction.
    @Test func answeredRequestsAreNotRetained() {
        var sm = ConnectionStateMachine<Pending>()
        weak var answered: Pending?
        var later: [Int32] = []
        do {
            let p = Pending("first")
            answered = p
            let id = sm.send(responseHeaderVersion: 0, pending: p)!
            for i in 0..<3 { later.append(sm.send(responseHeaderVersion: 0, pending: Pending("r\(i)"))!) }
            _ = sm.responseReceived(correlationId: id)
        }
        #expect(answered == nil)
        #expect(sm.inFlightCount == 3)
        for id in later { _ = sm.responseReceived(correlationId: id) }
        #expect(sm.inFlightCount == 0)
    }
}
