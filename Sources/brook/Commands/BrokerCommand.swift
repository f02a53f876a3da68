import ArgumentParser
import BrookBroker
import Foundation
import Logging
import ServiceLifecycle

struct BrokerOptions: ParsableArguments {
    @Option(help: "Address to listen on for Kafka clients.")
    var listen: String = "127.0.0.1:9092"

    @Option(name: .customLong("data-dir"), help: "Directory for logs, indexes and the catalog.")
    var dataDir: String = "./.brook/data"

    @Option(help: "Durability of acknowledged produces: fsync (default; fsync before acks, batched across producers) or os (page cache).")
    var flush: FlushPolicy = .fsync

    @Option(help: "Serve Prometheus metrics on HOST:PORT.")
    var metrics: String?

    @Option(name: .customLong("advertised-host"), help: "Host name advertised to clients (default: the listen host).")
    var advertisedHost: String?

    @Option(name: .customLong("default-partitions"), help: "Partitions of auto-created topics (num.partitions).")
    var defaultPartitions: Int32 = 1

    @Flag(inversion: .prefixedEnableDisable, help: "Create topics on first produce or metadata request (auto.create.topics.enable).")
    var autoCreateTopics: Bool = true

    @Option(name: .customLong("group-initial-rebalance-delay-ms"), help: "group.initial.rebalance.delay.ms")
    var groupInitialRebalanceDelayMs: Int64 = 3000

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical")
    var logLevel: String = "info"

    func brokerConfig() throws -> BrokerConfig {
        let (host, port) = try parseHostPort(listen, defaultPort: 9092)
        var c = BrokerConfig(dataDirectory: URL(fileURLWithPath: dataDir))
        c.host = host
        c.port = port
        c.flushPolicy = flush
        c.advertisedHost = advertisedHost
        c.defaultPartitions = defaultPartitions
        c.autoCreateTopics = autoCreateTopics
        c.groupInitialRebalanceDelay = .milliseconds(groupInitialRebalanceDelayMs)
        return c
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }
}

extension FlushPolicy: ExpressibleByArgument {}

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run the embedded single-node, durable Kafka-protocol broker."
    )

    @OptionGroup var options: BrokerOptions

    func run() async throws {
        Bootstrap.run(logLevel: options.level)
        let logger = Logger(label: "brook.broker")
        let config = try options.brokerConfig()
        let broker: Broker
        do {
            broker = try Broker(config: config, logger: logger)
        } catch {
            throw CleanExit.message("error: cannot open data directory \(config.dataDirectory.path): \(error)")
        }
        var services: [any Service] = [BrokerServer(broker: broker, logger: logger)]
        if let m = options.metrics {
            let (h, p) = try parseHostPort(m, defaultPort: 9644)
            services.append(MetricsServer(host: h, port: p, registry: Bootstrap.registry, logger: logger))
        }
        let group = ServiceGroup(
            configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
