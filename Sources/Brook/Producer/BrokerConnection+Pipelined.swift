import BrookProtocol
import NIOCore

extension BrokerConnection {
    /// Writes a produce request to the connection before returning and gives the future
    /// response body.
    ///
    /// Unlike `send`, the write happens in call order even when the responses are awaited by
    /// different tasks: the producer relies on this so that the produce requests of a partition
    /// reach the broker in sequence-number order. The record batches go to the socket uncopied
    /// (``ProduceRequest/encodeSegments(version:allocator:)``).
    func enqueue(_ request: ProduceRequest, version: Int16, expectsResponse: Bool, timeout: Duration) -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        var segments = request.encodeSegments(version: version, allocator: channel.allocator)
        var out = OutboundRequest(apiKey: .produce, version: version, clientId: clientId, body: segments.removeFirst(),
                                  expectsResponse: expectsResponse, promise: promise)
        out.tail = segments
        startRequestTimer(promise, apiKey: .produce, limit: timeout)
        channel.writeAndFlush(out).whenFailure { promise.fail($0) }
        return promise.futureResult
    }
}
