import BrookProtocol
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One TCP (optionally TLS) connection to one broker, with pipelined requests.
///
/// Connecting performs ApiVersions (the highest version both sides support is used for every
/// request afterwards) and SASL when configured. Requests may be sent concurrently; responses are
/// matched by correlation id.
public final class BrokerConnection: Sendable {
    public let address: BrokerAddress
    /// Broker id when known (-1 for bootstrap connections).
    public let nodeId: Int32
    let channel: any Channel
    let clientId: String
    let requestTimeout: Duration
    private let brokerVersions: Mutex<[Int16: ClosedRange<Int16>]>
    let logger: Logger

    private init(address: BrokerAddress, nodeId: Int32, channel: any Channel, config: ClientConfiguration, logger: Logger) {
        self.address = address
        self.nodeId = nodeId
        self.channel = channel
        self.clientId = config.clientId
        self.requestTimeout = config.requestTimeout
        self.brokerVersions = Mutex([:])
        self.logger = logger
    }

    public var isActive: Bool { channel.isActive }

    /// Opens a connection, negotiates versions and authenticates.
    public static func connect(
        to address: BrokerAddress, nodeId: Int32 = -1, config: ClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) async throws -> BrokerConnection {
        let security = config.security
        let sslContext: NIOSSLContext?
        if security.securityProtocol.usesTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let ca = security.caFile {
                tls.trustRoots = .file(ca)
            }
            if !security.verifyCertificates { tls.certificateVerification = .none }
            sslContext = try NIOSSLContext(configuration: tls)
        } else {
            sslContext = nil
        }
        let maxFrame = config.maxResponseSize
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.nanoseconds(config.connectTimeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                // Reads of up to 256 KiB: a ~1 MiB fetch response took 16 reads of NIO's default
                // 64 KiB, each a syscall and a pass down the pipeline (consumer 1 KiB: 0.94x ->
                // 1.06x librdkafka over 8 pairs; 1 MiB reads measured worse, 0.92x).
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 256 * 1024))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: address.host.first?.isNumber == true ? nil : address.host)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                        // Responses come from the broker the client chose: a fetch response's
                        // buffer is sized once from its length (up to 64 MiB).
                        let decoder = KafkaFrameDecoder(maxFrameSize: maxFrame, reserveUpTo: 64 * 1024 * 1024)
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                        try channel.pipeline.syncOperations.addHandler(KafkaClientHandler())
                    }
                }
                .connect(host: address.host, port: address.port).get()
        } catch {
            throw KafkaClientError.unreachable("\(address): \(Self.shortReason(error))")
        }
        var l = logger
        l[metadataKey: BrookLogKey.broker] = "\(address)"
        let conn = BrokerConnection(address: address, nodeId: nodeId, channel: channel, config: config, logger: l)
        do {
            try await conn.negotiateVersions()
            if security.securityProtocol.usesSASL {
                try await SASLAuthenticator(security: security).authenticate(conn)
            }
        } catch {
            conn.close()
            throw error
        }
        return conn
    }

    /// ApiVersions, newest first; a broker that doesn't know v3 answers v0 with its ranges.
    private func negotiateVersions() async throws {
        var req = ApiVersionsRequest()
        req.clientSoftwareName = "brook"
        req.clientSoftwareVersion = "0.1.0"
        var resp = try await rawSend(req, version: 3)
        if resp.errorCode == ErrorCode.unsupportedVersion.rawValue {
            resp = try await rawSend(ApiVersionsRequest(), version: 0)
        }
        try KafkaClientError.check(resp.errorCode, resource: "ApiVersions")
        brokerVersions.withLock { v in
            for k in resp.apiKeys where k.minVersion <= k.maxVersion {
                v[k.apiKey] = k.minVersion...k.maxVersion
            }
        }
    }

    /// The version to use for `api`: the highest both sides support.
    public func version(for api: APIKey) throws -> Int16 {
        guard let theirs = brokerVersions.withLock({ $0[api.rawValue] }) else {
            throw KafkaClientError.unsupportedVersion("broker \(address) does not support \(api.name)")
        }
        let ours = api.versions
        let hi = min(ours.upperBound, theirs.upperBound)
        guard hi >= max(ours.lowerBound, theirs.lowerBound) else {
            throw KafkaClientError.unsupportedVersion("no common version of \(api.name): broker \(theirs), Brook \(ours)")
        }
        return hi
    }

    public func supports(_ api: APIKey) -> Bool { (try? version(for: api)) != nil }

    /// Sends `request` at the negotiated version (or `version`) and waits for the response.
    public func send<R: KafkaRequestMessage>(_ request: R, version: Int16? = nil, timeout: Duration? = nil) async throws -> R.Response {
        let v = try version ?? self.version(for: R.apiKey)
        return try await rawSend(request, version: v, timeout: timeout)
    }

    /// Sends a request that gets no response (produce with acks=0); returns once written.
    public func sendWithoutResponse<R: KafkaRequestMessage>(_ request: R, version: Int16? = nil) async throws {
        let v = try version ?? self.version(for: R.apiKey)
        _ = try await write(request, version: v, expectsResponse: false, timeout: nil)
    }

    private func rawSend<R: KafkaRequestMessage>(_ request: R, version: Int16, timeout: Duration? = nil) async throws -> R.Response {
        var body = try await write(request, version: version, expectsResponse: true, timeout: timeout)
        do {
            return try R.Response(from: &body, version: version)
        } catch {
            throw KafkaClientError.protocolViolation("could not decode \(R.apiKey.name) v\(version) response from \(address): \(error)")
        }
    }

    private func write<R: KafkaRequestMessage>(_ request: R, version: Int16, expectsResponse: Bool, timeout: Duration?) async throws -> ByteBuffer {
        var body = channel.allocator.buffer(capacity: 256)
        request.encode(into: &body, version: version)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let out = OutboundRequest(apiKey: R.apiKey, version: version, clientId: clientId, body: body, expectsResponse: expectsResponse, promise: promise)
        startRequestTimer(promise, apiKey: R.apiKey, limit: timeout ?? requestTimeout)
        channel.writeAndFlush(out).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    /// The request timer of every request (`send` and the producer's `enqueue`): fails the
    /// response after `limit` and closes the connection, because a request that times out
    /// poisons the in-order response stream. Cancelled when the response comes.
    func startRequestTimer(_ promise: EventLoopPromise<ByteBuffer>, apiKey: APIKey, limit: Duration) {
        let channel = self.channel
        let address = self.address
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(limit.nanoseconds)) {
            promise.fail(KafkaClientError.timedOut("\(apiKey.name) to \(address) after \(limit)"))
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
    }

    public func close() {
        channel.close(promise: nil)
    }

    /// NIO's connect errors are verbose; the CLI prints one line.
    static func shortReason(_ error: any Error) -> String {
        let text = "\(error)"
        for (needle, short) in [("Connection refused", "connection refused"), ("connectTimeout", "connection timed out"),
                                ("No route to host", "no route to host"), ("Name or service not known", "unknown host"),
                                ("NXDOMAIN", "unknown host")] where text.contains(needle) {
            return short
        }
        return text
    }
}
