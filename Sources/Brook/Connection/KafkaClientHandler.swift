import BrookProtocol
import NIOCore

/// One request on its way out: the encoded body and the promise of the response body.
struct OutboundRequest {
    var apiKey: APIKey
    var version: Int16
    var clientId: String
    var body: ByteBuffer
    /// Buffers sent after `body` without being copied into it (a produce request's record
    /// batches and the framing between them).
    var tail: [ByteBuffer] = []
    /// nil for requests without a response (produce acks=0); then `promise` completes on write.
    var expectsResponse: Bool
    var promise: EventLoopPromise<ByteBuffer>
}

/// The thin channel handler that runs `ConnectionStateMachine`: frames requests with headers and
/// correlation ids, matches response frames back to their promises.
final class KafkaClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    private var state = ConnectionStateMachine<EventLoopPromise<ByteBuffer>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let req = unwrapOutboundIn(data)
        let id: Int32?
        if req.expectsResponse {
            id = state.send(responseHeaderVersion: req.apiKey.responseHeaderVersion(req.version), pending: req.promise)
        } else {
            id = state.sendWithoutResponse()
        }
        guard let id else {
            req.promise.fail(KafkaClientError.connectionClosed("connection is closed"))
            promise?.fail(KafkaClientError.connectionClosed("connection is closed"))
            return
        }
        // Size and header in one small buffer; a small body is copied behind them (one buffer
        // per request), a large one and the tail go out as they are (a vectored write).
        let inline = req.body.readableBytes <= 8192
        var head = context.channel.allocator.buffer(capacity: 64 + (inline ? req.body.readableBytes : 0))
        head.writeInteger(Int32(0))
        RequestHeader(apiKey: req.apiKey.rawValue, apiVersion: req.version, correlationId: id, clientId: req.clientId)
            .encode(into: &head, headerVersion: req.apiKey.requestHeaderVersion(req.version))
        var buffers: [ByteBuffer] = []
        buffers.reserveCapacity(2 + req.tail.count)
        var size = head.readableBytes - 4 + req.body.readableBytes
        if inline {
            var body = req.body
            head.writeBuffer(&body)
            buffers.append(head)
        } else {
            buffers.append(head)
            buffers.append(req.body)
        }
        for t in req.tail where t.readableBytes > 0 {
            size += t.readableBytes
            buffers.append(t)
        }
        buffers[0].setInteger(Int32(size), at: buffers[0].readerIndex)
        let last: EventLoopPromise<Void>?
        if req.expectsResponse {
            last = promise
        } else {
            let p = req.promise
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenComplete { r in
                switch r {
                case .success: p.succeed(ByteBuffer())
                case .failure(let e): p.fail(e)
                }
            }
            written.futureResult.cascade(to: promise)
            last = written
        }
        for b in buffers.dropLast() { context.write(wrapOutboundOut(b), promise: nil) }
        context.write(wrapOutboundOut(buffers[buffers.count - 1]), promise: last)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let id = frame.getInteger(at: frame.readerIndex, as: Int32.self) else {
            fail(context, "response frame shorter than a correlation id")
            return
        }
        switch state.responseReceived(correlationId: id) {
        case .deliver(let promise, let headerVersion):
            do {
                _ = try ResponseHeader.decode(from: &frame, headerVersion: headerVersion)
                promise.succeed(frame)
            } catch {
                promise.fail(KafkaClientError.protocolViolation("bad response header: \(error)"))
            }
        case .closeConnection(let reason):
            fail(context, reason)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for p in state.close("connection to \(context.remoteAddress.map { "\($0)" } ?? "broker") closed") {
            p.fail(KafkaClientError.connectionClosed("connection closed with requests in flight"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context, "\(error)")
    }

    private func fail(_ context: ChannelHandlerContext, _ reason: String) {
        for p in state.close(reason) {
            p.fail(KafkaClientError.connectionClosed(reason))
        }
        context.close(promise: nil)
    }
}
