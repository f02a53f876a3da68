import Foundation
import Logging
import ServiceLifecycle

/// A broker running inside this process on a loopback port: for tests, benchmarks and tools
/// that want a real Kafka-protocol broker without a separate process (as Spring's
/// `@EmbeddedKafka` or Testcontainers give Java tests), and for `brook up`.
///
/// ```swift
/// let broker = try await EmbeddedBroker.start(.testing)
/// defer { Task { await broker.stop() } }
/// let client = ClientConfiguration(bootstrapServers: [.init(host: "127.0.0.1", port: broker.port)])
/// ```
public final class EmbeddedBroker: Sendable {
    /// Settings a test suite wants and a laptop does not.
    public enum Profile: Sendable {
        /// ``BrokerConfig``'s defaults (fsync before acknowledging, 3 s initial rebalance delay).
        case standard
        /// No initial rebalance delay, a 1 s session-timeout floor, `flush: os` (no fsync),
        /// no topic auto-creation: groups form at once and nothing waits on the disk.
        case testing
    }

    public let broker: Broker
    public let server: BrokerServer
    /// The bound port (an ephemeral one unless the configuration named a port).
    public let port: Int
    public var host: String { broker.config.host }
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    /// The directory to delete on ``stop(removeData:)``, when this type made it.
    private let ownedDirectory: URL?

    private init(broker: Broker, server: BrokerServer, group: ServiceGroup, task: Task<Void, any Error>, port: Int, ownedDirectory: URL?) {
        self.broker = broker
        self.server = server
        self.group = group
        self.task = task
        self.port = port
        self.ownedDirectory = ownedDirectory
    }

    /// Starts a broker on 127.0.0.1 and an ephemeral port.
    ///
    /// - Parameters:
    ///   - dataDirectory: where the logs go; nil makes a fresh temporary directory that
    ///     ``stop(removeData:)`` deletes. A given directory is kept, so a broker can be stopped
    ///     and started again on the same data (and `configure` can pin the port).
    ///   - configure: last changes to the configuration (port, partitions, policies).
    public static func start(
        _ profile: Profile = .standard, dataDirectory: URL? = nil, logger: Logger = Logger(label: "brook.embedded"),
        configure: (inout BrokerConfig) -> Void = { _ in }
    ) async throws -> EmbeddedBroker {
        let owned = dataDirectory == nil
        let dir = dataDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("brook-embedded-\(UUID().uuidString)")
        var config = BrokerConfig(dataDirectory: dir)
        config.host = "127.0.0.1"
        config.port = 0
        if profile == .testing {
            config.groupInitialRebalanceDelay = .zero
            config.groupMinSessionTimeout = .seconds(1)
            config.flushPolicy = .os
            config.autoCreateTopics = false
        }
        configure(&config)
        let broker = try Broker(config: config, logger: logger)
        let server = BrokerServer(broker: broker, logger: logger)
        // In a service group so that stopping is the server's graceful shutdown, as in `brook up`
        // (cancelling its task instead drops connections it has accepted but not yet served).
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        let task = Task { try await group.run() }
        guard let port = await server.waitUntilListening() else {
            // Not listening (the port taken, say): the run's error says why.
            try await task.value
            throw BrokerServerError.notListening("\(config.host):\(config.port)")
        }
        return EmbeddedBroker(broker: broker, server: server, group: group, task: task, port: port, ownedDirectory: owned ? dir : nil)
    }

    /// "127.0.0.1:PORT", for `bootstrap.servers`.
    public var bootstrap: String { "\(host):\(port)" }

    /// Stops serving (in-flight requests finish, logs are flushed). A temporary data directory
    /// is deleted unless `removeData` is false.
    public func stop(removeData: Bool = true) async {
        await group.triggerGracefulShutdown()
        // The server closes the broker at the end of a graceful run; not if the run failed.
        if case .failure = await task.result { await broker.shutdown() }
        if removeData, let ownedDirectory {
            try? FileManager.default.removeItem(at: ownedDirectory)
        }
    }
}
