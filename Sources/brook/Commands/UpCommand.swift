import ArgumentParser
import BrookBroker
import Foundation
import Logging
import ServiceLifecycle

/// `brook up`: the main job. For now it runs the embedded broker with metrics; the ledger
/// pipeline (issue 4) plugs in here.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start Brook locally: the embedded broker (data under ./.brook) with Prometheus metrics."
    )

    @Option(help: "Address for Kafka clients.")
    var listen: String = "127.0.0.1:9092"

    @Option(name: .customLong("data-dir"), help: "Where Brook keeps its data.")
    var dataDir: String = "./.brook/data"

    @Option(help: "Status page and /metrics address.")
    var http: String = "127.0.0.1:9644"

    @Option(help: "fsync or os")
    var flush: FlushPolicy = .fsync

    @Option(name: .customLong("run-for"), help: "Stop after this many seconds (0 = until Ctrl-C).")
    var runFor: Int = 0

    func run() async throws {
        Bootstrap.run(logLevel: .info)
        let logger = Logger(label: "brook.up")
        let (host, port) = try parseHostPort(listen, defaultPort: 9092)
        var c = BrokerConfig(dataDirectory: URL(fileURLWithPath: dataDir))
        c.host = host
        c.port = port
        c.flushPolicy = flush
        let broker = try Broker(config: c, logger: logger)
        let (hh, hp) = try parseHostPort(http, defaultPort: 9644)
        let server = BrokerServer(broker: broker, logger: logger)
        let metrics = MetricsServer(host: hh, port: hp, registry: Bootstrap.registry, logger: logger) {
            "<html><body><h1>Brook</h1><p>Broker on \(host):\(port)</p><p><a href=\"/metrics\">/metrics</a></p></body></html>\n"
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: server), .init(service: metrics)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        print("brook up: broker on \(host):\(port), status and metrics on http://\(hh):\(hp)/  (Ctrl-C to stop)")
        if runFor > 0 {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                tasks.addTask {
                    try await Task.sleep(for: .seconds(runFor))
                    await group.triggerGracefulShutdown()
                }
                try await tasks.next()
                tasks.cancelAll()
            }
        } else {
            try await group.run()
        }
    }
}
