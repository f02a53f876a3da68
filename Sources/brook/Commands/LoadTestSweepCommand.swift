import ArgumentParser
import Brook
import BrookBroker
import BrookOps
import Foundation
import Logging

/// `brook loadtest sweep -f sweep.yaml --out DIR`: runs the matrix, writes report.md,
/// report.html and results.json.
struct LoadTestSweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep", abstract: "Run a matrix of producer, consumer and pipeline settings and rank their effects.")

    @OptionGroup var client: ClientOptions
    @Option(name: .shortAndLong, help: "The sweep file (see bench/sweep.yaml).") var file: String
    @Option(help: "Directory for report.md, report.html and results.json.") var out: String
    @Flag(help: "Run against a broker started in this process (the sweep file's bootstrap and --bootstrap are ignored).") var embedded = false

    func run() async throws {
        try await runClient {
            let spec: SweepSpec
            do { spec = try SweepSpec.parse(try String(contentsOfFile: file, encoding: .utf8)) } catch let e as LoadTestError { throw e.failure }
            let logger = client.logger
            var broker: EmbeddedBroker?
            var cfg = try client.configuration()
            if embedded {
                var quiet = Logger(label: "brook.sweep.broker")
                quiet.logLevel = .error
                let b = try await EmbeddedBroker.start(.testing, logger: quiet)
                broker = b
                cfg.bootstrapServers = [BrokerAddress(host: b.host, port: b.port)]
            } else if let servers = spec.bootstrap {
                cfg.bootstrapServers = try BrokerAddress.list(servers)
            }
            let target: any SweepTarget = spec.target == .ledger ? LedgerSweepTarget(logger: logger) : ConsumerSweepTarget(logger: logger)
            let runner = SweepRunner(spec: spec, target: target, client: cfg, logger: logger)
            let total = spec.points.count * spec.repeats
            FileHandle.standardError.write(Data("sweep: \(spec.points.count) points × \(spec.repeats) repeats = \(total) runs against \(spec.target.rawValue)\n".utf8))
            let report: SweepReport
            do {
                report = try await runner.run(title: "Brook sweep: \(URL(fileURLWithPath: file).lastPathComponent)") { line in
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
            } catch {
                await broker?.stop()
                throw error
            }
            await broker?.stop()
            let dir = URL(fileURLWithPath: out)
            try report.write(to: dir)
            print("wrote \(dir.path)/report.md, report.html, results.json")
        }
    }
}
