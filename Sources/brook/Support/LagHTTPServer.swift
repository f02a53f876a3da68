import BrookProtocol
import BrookOps
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `brook lag serve`'s HTTP listener: every GET is answered by ``LagHTTPRoutes`` from the
/// monitor's latest report (the same small NIO server shape as ``MetricsServer``).
final class LagHTTPServer: Service, Sendable {
    let host: String
    let port: Int
    let monitor: LagMonitorService
    let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)

    init(host: String, port: Int, monitor: LagMonitorService, logger: Logger) {
        self.host = host
        self.port = port
        self.monitor = monitor
        self.logger = logger
    }

    /// Binds the port (at most once), so a port in use fails before anything runs.
    func bind() async throws {
        if channel.withLock({ $0 }) != nil { return }
        let monitor = self.monitor
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(LagHTTPHandler(monitor: monitor))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        logger.notice("lag server listening", metadata: [BrookLogKey.url: "http://\(host):\(bound.localAddress?.port ?? port)/metrics"])
    }

    /// Closes the listener (a bound server that never ran, or one that stopped).
    func close() async {
        if let c = channel.withLock({ $0 }) { try? await c.close() }
    }

    func run() async throws {
        try await bind()
        let channel = self.channel.withLock { $0 }!
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

private final class LagHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let monitor: LagMonitorService

    init(monitor: LagMonitorService) { self.monitor = monitor }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let reply = LagHTTPRoutes.respond(path: head.uri, host: head.headers.first(name: "Host") ?? "", report: monitor.latest)
        var body = context.channel.allocator.buffer(capacity: reply.body.utf8.count)
        body.writeString(reply.body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        let status = HTTPResponseStatus(statusCode: reply.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        // The completion runs on the channel's event loop, where the context may be used.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
