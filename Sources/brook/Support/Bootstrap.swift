import Foundation
import Logging
import Metrics
import Prometheus

/// Process-wide logging and metrics setup, done once per process.
enum Bootstrap {
    nonisolated(unsafe) private static var done = false
    static let registry = PrometheusCollectorRegistry()

    static func run(logLevel: Logger.Level) {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = logLevel
            return h
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }
}

/// Parses HOST:PORT.
func parseHostPort(_ s: String, defaultPort: Int) throws -> (String, Int) {
    guard let colon = s.lastIndex(of: ":") else { return (s, defaultPort) }
    let host = String(s[..<colon])
    guard let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
        throw ValidationError("invalid address \(s): expected HOST:PORT")
    }
    return (host.isEmpty ? "127.0.0.1" : host, port)
}

import ArgumentParser
