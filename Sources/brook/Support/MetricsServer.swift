import BrookProtocol
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// Serves Prometheus text at `/metrics` (and a tiny index at `/`) on its own port.
final class MetricsServer: Service, Sendable {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    let statusPage: @Sendable () -> String

    init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger, statusPage: @escaping @Sendable () -> String = { "brook\n" }) {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.statusPage = statusPage
    }

    /// The listening channel once ``bind()`` succeeded.
    private let channel = Mutex<(any Channel)?>(nil)

    /// Binds the port (at most once). `brook up` binds before anything runs, so a port in use
    /// fails before the services start; ``run()`` binds when this was not called.
    func bind() async throws {
        if channel.withLock({ $0 }) != nil { return }
        let registry = self.registry
        let statusPage = self.statusPage
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHTTPHandler(registry: registry, statusPage: statusPage))
                }
            }
            .bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        logger.info("metrics listening", metadata: [BrookLogKey.url: "http://\(host):\(bound.localAddress?.port ?? port)/metrics"])
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

private final class MetricsHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let registry: PrometheusCollectorRegistry
    let statusPage: @Sendable () -> String

    init(registry: PrometheusCollectorRegistry, statusPage: @escaping @Sendable () -> String) {
        self.registry = registry
        self.statusPage = statusPage
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        var body = context.channel.allocator.buffer(capacity: 4096)
        var status = HTTPResponseStatus.ok
        var contentType = "text/plain; version=0.0.4; charset=utf-8"
        switch head.uri.split(separator: "?").first.map(String.init) ?? "/" {
        case "/metrics":
            body.writeBytes(registry.emitToBuffer())
        case "/":
            contentType = "text/html; charset=utf-8"
            body.writeString(statusPage())
        default:
            status = .notFound
            body.writeString("not found\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        // The completion runs on the channel's event loop, where the context may be used.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
