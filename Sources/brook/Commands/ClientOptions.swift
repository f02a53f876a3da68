import ArgumentParser
import Brook
import Foundation
import Logging

/// `--bootstrap` and the security options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "Comma-separated HOST:PORT list of brokers to bootstrap from.")
    var bootstrap: String = "127.0.0.1:9092"

    @Option(name: .customLong("security-protocol"), help: "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    var securityProtocol: String = "PLAINTEXT"

    @Option(name: .customLong("sasl-mechanism"), help: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    var saslMechanism: String = "PLAIN"

    @Option(name: .customLong("sasl-username"))
    var saslUsername: String?

    @Option(name: .customLong("sasl-password"))
    var saslPassword: String?

    @Option(name: .customLong("ca-file"), help: "PEM file of CA certificates to trust.")
    var caFile: String?

    @Option(name: .customLong("client-id"))
    var clientId: String = "brook-cli"

    @Option(name: .customLong("timeout-ms"), help: "Request timeout.")
    var timeoutMs: Int = 15000

    @Option(name: .customLong("log-level"), help: "Client log level on stderr: trace, debug, info, warning or error.")
    var logLevel: String = "error"

    func configuration() throws -> ClientConfiguration {
        var c = ClientConfiguration(bootstrapServers: try BrokerAddress.list(bootstrap))
        guard let sp = SecurityProtocol(rawValue: securityProtocol.uppercased()) else {
            throw ValidationError("unknown --security-protocol \(securityProtocol)")
        }
        guard let mech = SASLMechanism(rawValue: saslMechanism.uppercased()) else {
            throw ValidationError("unknown --sasl-mechanism \(saslMechanism)")
        }
        c.security.securityProtocol = sp
        c.security.saslMechanism = mech
        c.security.saslUsername = saslUsername
        c.security.saslPassword = saslPassword
        c.security.caFile = caFile
        c.clientId = clientId
        c.requestTimeout = .milliseconds(timeoutMs)
        c.connectTimeout = .milliseconds(min(timeoutMs, 10000))
        return c
    }

    var logger: Logger {
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .error
        // Client logs go to stderr: stdout carries `brook consume`'s records.
        Bootstrap.run(logLevel: level)
        var l = Logger(label: "brook.cli")
        l.logLevel = level
        return l
    }
}

/// A failure that is one line on its own (`runClient` prints it as `error: …` and exits 1),
/// without the usage text a `ValidationError` brings.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a client command, turning any failure into one clear line on stderr and exit code 1.
func runClient(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as KafkaClientError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode(1)
    } catch let e as ValidationError {
        throw e
    } catch is ExitCode {
        throw ExitCode(1)
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Prints rows as aligned columns, like Kafka's command-line tools.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: " ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
}
