import BrookProtocol
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The TCP side of the broker: accepts connections, splits frames, hands requests to the
/// `Broker` in order, and writes responses in request order.
///
/// A `Service`: `run()` serves until graceful shutdown, then closes the listener, lets
/// in-flight requests finish and flushes the logs.
public final class BrokerServer: Service, Sendable {
    public let broker: Broker
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let boundPort = Mutex<Int?>(nil)
    /// Open client connections, closed on graceful shutdown so the server doesn't wait for idle
    /// clients to hang up.
    private let openChannels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let stopping = Mutex(false)
    private let ready = AsyncStream<Int>.makeStream()

    public init(broker: Broker, eventLoopGroup: MultiThreadedEventLoopGroup = .singleton, logger: Logger) {
        self.broker = broker
        self.group = eventLoopGroup
        self.logger = logger
    }

    /// The port actually bound (useful with port 0), once listening.
    public var port: Int? { boundPort.withLock { $0 } }

    /// Waits until the listener is bound and returns its port; nil if `run()` failed before
    /// (the port taken, say: the error is what `run()` threw).
    public func waitUntilListening() async -> Int? {
        if let p = port { return p }
        for await p in ready.stream { return p }
        return port
    }

    public func run() async throws {
        let config = broker.config
        let maxFrame = config.socketRequestMaxBytes
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        do {
            server = try await bind(maxFrame: maxFrame)
        } catch {
            // Whoever waits for the listener learns that none is coming.
            ready.continuation.finish()
            throw error
        }
        let port = server.channel.localAddress?.port ?? config.port
        boundPort.withLock { $0 = port }
        broker.setListeningPort(port)
        ready.continuation.yield(port)
        ready.continuation.finish()
        logger.info("broker listening", metadata: [BrookLogKey.host: "\(config.host)", BrookLogKey.port: "\(port)", BrookLogKey.dataDirectory: "\(config.dataDirectory.path)"])
        try await broker.start()
        // The accept loop runs in a task of its own, so that cancelling `run()` does not end it
        // abruptly: connections accepted but not yet taken from `inbound` would be dropped
        // unclosed (NIO traps on that in debug builds). Cancellation and graceful shutdown both
        // stop the listener; the loop then drains what was accepted and ends.
        let acceptLoop = Task {
            try await withThrowingDiscardingTaskGroup { tasks in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        tasks.addTask {
                            await self.serve(connection)
                        }
                    }
                }
            }
        }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await acceptLoop.value
            } onCancel: {
                self.beginShutdown(server.channel)
            }
        } onGracefulShutdown: {
            self.beginShutdown(server.channel)
        }
        await broker.shutdown()
    }

    private func bind(maxFrame: Int) async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        let config = broker.config
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .bind(host: config.host, port: config.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameSize: maxFrame)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Stops accepting, then stops reading from clients (requests already read still get their
    /// responses); idle clients are closed after two seconds.
    private func beginShutdown(_ listener: any Channel) {
        let first = stopping.withLock { s in
            defer { s = true }
            return !s
        }
        guard first else { return }
        logger.info("broker shutting down")
        // Stop accepting first and let the loop take what was already accepted.
        listener.setOption(.autoRead, value: false).whenComplete { _ in
            listener.eventLoop.scheduleTask(in: .milliseconds(100)) { listener.close(promise: nil) }
        }
        for c in openChannels.withLock({ Array($0.values) }) {
            c.close(mode: .input, promise: nil)
            c.eventLoop.scheduleTask(in: .seconds(2)) { c.close(promise: nil) }
        }
    }

    private func serve(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let remote = channel.channel.remoteAddress.map { "\($0)" } ?? "?"
        var logger = self.logger
        logger[metadataKey: BrookLogKey.connection] = "\(remote)"
        let conn = Connection(remote: remote, logger: logger)
        let key = ObjectIdentifier(channel.channel)
        let rawChannel = channel.channel
        openChannels.withLock { $0[key] = rawChannel }
        defer { openChannels.withLock { _ = $0.removeValue(forKey: key) } }
        if stopping.withLock({ $0 }) {
            rawChannel.close(promise: nil)
        }
        do {
            try await channel.executeThenClose { inbound, outbound in
                let (responses, sink) = AsyncStream<(UInt64, ByteBuffer?)>.makeStream()
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    // Writer: releases responses strictly in request order.
                    tasks.addTask {
                        var queue = ResponseQueue<ByteBuffer>()
                        for await (slot, response) in responses {
                            _ = queue // slot numbers are assigned by the reader in order
                            let ready = queue.complete(slot, with: response)
                            if !ready.isEmpty {
                                try await outbound.write(contentsOf: ready)
                            }
                        }
                    }
                    var slot: UInt64 = 0
                    let bytesIn = self.broker.metrics.bytesIn
                    do {
                        for try await frame in inbound {
                            let mySlot = slot
                            slot += 1
                            bytesIn.increment(by: Int64(frame.readableBytes + 4))
                            switch await self.broker.handle(frame: frame, connection: conn) {
                            case .respond(let buf):
                                sink.yield((mySlot, buf))
                            case .deferred(let work):
                                tasks.addTask {
                                    let buf = await work()
                                    sink.yield((mySlot, buf))
                                }
                            case .close(let reason):
                                logger.warning("closing connection", metadata: [BrookLogKey.reason: "\(reason)"])
                                sink.yield((mySlot, nil))
                                throw ConnectionClosed()
                            }
                        }
                    } catch is ConnectionClosed {
                    } catch is CancellationError {
                        // The broker is shutting down: not the client's fault, nothing to warn about.
                        logger.debug("closing connection at shutdown")
                    } catch {
                        logger.warning("closing connection", metadata: [BrookLogKey.reason: "\(error)"])
                    }
                    // Let deferred responses finish before the writer stops.
                    sink.finish()
                    try await tasks.waitForAll()
                }
            }
        } catch {
            logger.debug("connection ended", metadata: [BrookLogKey.error: "\(error)"])
        }
        conn.closed()
    }
}

struct ConnectionClosed: Error {}

public enum BrokerServerError: Error, CustomStringConvertible {
    /// The server stopped before it listened.
    case notListening(String)

    public var description: String {
        switch self {
        case .notListening(let address): return "the broker did not start listening on \(address)"
        }
    }
}

/// Per-connection facts the request handlers need (for logs and group membership).
public final class Connection: Sendable {
    public let remote: String
    public let logger: Logger
    private let state = Mutex<(clientId: String?, open: Bool)>((nil, true))

    init(remote: String, logger: Logger) {
        self.remote = remote
        self.logger = logger
    }

    public var clientHost: String {
        // "[IPv4]127.0.0.1/127.0.0.1:5432" → "/127.0.0.1" as Kafka prints hosts.
        if let r = remote.range(of: "]") {
            let rest = remote[r.upperBound...]
            let host = rest.split(separator: "/").first.map(String.init) ?? String(rest)
            return "/" + host
        }
        return remote
    }

    public var isOpen: Bool { state.withLock { $0.open } }
    func closed() { state.withLock { $0.open = false } }
}

/// What the broker decided to do with one request.
public enum RequestOutcome: Sendable {
    /// Answer now (nil: no answer, e.g. produce with acks=0).
    case respond(ByteBuffer?)
    /// Answer when the work finishes (durable produce, long-polling fetch, group join).
    case deferred(@Sendable () async -> ByteBuffer?)
    /// Close the connection; the reason is logged.
    case close(String)
}
