import Brook
import BrookProtocol
import Foundation
import NIOCore
import NIOPosix

/// A Kafka-aware TCP proxy in front of one broker that injects faults into produce requests:
/// it rewrites Metadata responses so clients keep talking through it, and for each produce
/// request (numbered from 0 across connections) asks `policy` what to do.
final class FaultProxy: @unchecked Sendable {
    enum ProduceFault: Sendable, Equatable {
        case pass
        /// Forward the request, then lose the response and drop the connection (the records
        /// were written; the client never hears).
        case dropResponse
        /// Drop the request and the connection (the records were not written).
        case dropRequest
        /// Forward the request, then answer every partition with this error (the records were
        /// written anyway).
        case rewrite(ErrorCode)
    }

    let target: BrokerAddress
    private(set) var port = 0
    private var serverChannel: (any Channel)?
    private let lock = NSLock()
    private var produceCount = 0
    private var injected: [ProduceFault] = []
    private let policy: @Sendable (Int) -> ProduceFault

    var address: BrokerAddress { BrokerAddress(host: "127.0.0.1", port: port) }
    var faults: [ProduceFault] { lock.withLock { injected } }

    init(target: BrokerAddress, policy: @escaping @Sendable (Int) -> ProduceFault) {
        self.target = target
        self.policy = policy
    }

    func start() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(ClientSide(proxy: self, client: channel))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        serverChannel = channel
        port = channel.localAddress!.port!
    }

    func close() async {
        try? await serverChannel?.close()
    }

    func nextProduceFault() -> ProduceFault {
        lock.withLock {
            let f = policy(produceCount)
            produceCount += 1
            if f != .pass { injected.append(f) }
            return f
        }
    }

    /// State shared by the two halves of one proxied connection.
    final class Link: @unchecked Sendable {
        let lock = NSLock()
        var pending: [Int32: (apiKey: Int16, version: Int16, fault: ProduceFault)] = [:]
        var closed = false
        let client: any Channel
        var broker: EventLoopFuture<any Channel>?

        init(client: any Channel) { self.client = client }

        func closeAll() {
            lock.withLock { closed = true }
            client.close(promise: nil)
            broker?.whenSuccess { $0.close(promise: nil) }
        }
    }

    private final class ClientSide: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let proxy: FaultProxy
        let link: Link

        init(proxy: FaultProxy, client: any Channel) {
            self.proxy = proxy
            self.link = Link(client: client)
        }

        func channelActive(context: ChannelHandlerContext) {
            let link = self.link
            let proxy = self.proxy
            link.broker = ClientBootstrap(group: context.eventLoop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(BrokerSide(proxy: proxy, link: link))
                    }
                }
                .connect(host: proxy.target.host, port: proxy.target.port)
            link.broker?.whenFailure { _ in link.closeAll() }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if link.lock.withLock({ link.closed }) { return }
            var copy = frame
            guard let apiKey = copy.readInteger(as: Int16.self), let version = copy.readInteger(as: Int16.self),
                  let correlation = copy.readInteger(as: Int32.self) else {
                link.closeAll()
                return
            }
            var fault = ProduceFault.pass
            if apiKey == APIKey.produce.rawValue {
                fault = proxy.nextProduceFault()
                if fault == .dropRequest {
                    link.closeAll()
                    return
                }
            }
            link.lock.withLock { link.pending[correlation] = (apiKey, version, fault) }
            var out = context.channel.allocator.buffer(capacity: frame.readableBytes + 4)
            out.writeInteger(Int32(frame.readableBytes))
            out.writeImmutableBuffer(frame)
            let message = out
            link.broker?.whenSuccess { $0.writeAndFlush(message, promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            link.closeAll()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            link.closeAll()
        }
    }

    private final class BrokerSide: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let proxy: FaultProxy
        let link: Link

        init(proxy: FaultProxy, link: Link) {
            self.proxy = proxy
            self.link = link
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var frame = unwrapInboundIn(data)
            guard let correlation = frame.getInteger(at: frame.readerIndex, as: Int32.self),
                  let request = link.lock.withLock({ link.pending.removeValue(forKey: correlation) }) else {
                link.closeAll()
                return
            }
            if link.lock.withLock({ link.closed }) { return }
            do {
                switch (request.apiKey, request.fault) {
                case (APIKey.metadata.rawValue, _):
                    frame = try rewrite(frame, MetadataResponse.self, version: request.version) { r in
                        for i in r.brokers.indices {
                            r.brokers[i].host = "127.0.0.1"
                            r.brokers[i].port = Int32(self.proxy.port)
                        }
                    }
                case (APIKey.produce.rawValue, .dropResponse):
                    link.closeAll()
                    return
                case (APIKey.produce.rawValue, .rewrite(let code)):
                    frame = try rewrite(frame, ProduceResponse.self, version: request.version) { r in
                        for t in r.responses.indices {
                            for p in r.responses[t].partitionResponses.indices {
                                r.responses[t].partitionResponses[p].errorCode = code.rawValue
                                r.responses[t].partitionResponses[p].baseOffset = -1
                            }
                        }
                    }
                default:
                    break
                }
            } catch {
                link.closeAll()
                return
            }
            var out = context.channel.allocator.buffer(capacity: frame.readableBytes + 4)
            out.writeInteger(Int32(frame.readableBytes))
            out.writeImmutableBuffer(frame)
            link.client.writeAndFlush(out, promise: nil)
        }

        private func rewrite<R: KafkaResponseMessage>(_ frame: ByteBuffer, _ type: R.Type, version: Int16, _ change: (inout R) -> Void) throws -> ByteBuffer {
            var buf = frame
            let headerVersion = R.apiKey.responseHeaderVersion(version)
            let header = try ResponseHeader.decode(from: &buf, headerVersion: headerVersion)
            var response = try R(from: &buf, version: version)
            change(&response)
            var out = ByteBuffer()
            header.encode(into: &out, headerVersion: headerVersion)
            response.encode(into: &out, version: version)
            return out
        }

        func channelInactive(context: ChannelHandlerContext) {
            link.closeAll()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            link.closeAll()
        }
    }
}
