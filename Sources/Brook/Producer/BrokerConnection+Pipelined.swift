import BrookProtocol
import NIOCore

extension BrokerConnection {
    /// Writes `request` to the connection before returning and gives the future response body.
    ///
    /// Unlike `send`, the write happens in call order even when the responses are awaited by
    /// different tasks: the producer relies on this so that the produce requests of a partition
    /// reach the broker in sequence-number order.
    ///
    /// - Parameter capacity: initial size of the request buffer (avoids regrowing large requests).
    func enqueue<R: KafkaRequestMessage>(
        _ request: R, version: Int16, expectsResponse: Bool, timeout: Duration, capacity: Int
    ) -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        var out: OutboundRequest
        if let produce = request as? ProduceRequest {
            // Record batches go to the socket uncopied.
            var segments = produce.encodeSegments(version: version, allocator: channel.allocator)
            let body = segments.removeFirst()
            out = OutboundRequest(apiKey: R.apiKey, version: version, clientId: clientId, body: body,
                                  expectsResponse: expectsResponse, promise: promise)
            out.tail = segments
        } else {
            var body = channel.allocator.buffer(capacity: capacity)
            request.encode(into: &body, version: version)
            out = OutboundRequest(apiKey: R.apiKey, version: version, clientId: clientId, body: body,
                                  expectsResponse: expectsResponse, promise: promise)
        }
        let channel = self.channel
        let address = self.address
        // As in `send`: a request that times out poisons the in-order response stream.
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            promise.fail(KafkaClientError.timedOut("\(R.apiKey.name) to \(address) after \(timeout)"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        channel.writeAndFlush(out).whenFailure { promise.fail($0) }
        return promise.futureResult
    }
}
