import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus

/// Process-wide logging and metrics setup, done once per process.
enum Bootstrap {
    nonisolated(unsafe) private static var done = false
    static let registry = PrometheusCollectorRegistry()

    /// Logs go to stderr, or appended to `logFile` when one is given (`brook up`: its live line
    /// owns the terminal, and a log line printed through it garbles both).
    static func run(logLevel: Logger.Level, logFile: URL?) throws {
        guard !done else { return }
        let file = try logFile.map { try LogFile(appendingTo: $0) }
        done = true
        LoggingSystem.bootstrap { label in
            if let file {
                var h = FileLogHandler(label: label, file: file)
                h.logLevel = logLevel
                return h
            }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = logLevel
            return h
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Without a log file: cannot fail.
    static func run(logLevel: Logger.Level) {
        try! run(logLevel: logLevel, logFile: nil)
    }
}

/// A file opened for appending; each entry is one write(2), so lines of different threads
/// never interleave.
final class LogFile: Sendable {
    private let fd: Int32

    init(appendingTo url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: "cannot open log file \(url.path): \(String(cString: strerror(errno)))"])
        }
        self.fd = fd
    }

    func write(_ line: String) {
        var line = line
        line.withUTF8 { buf in
            var done = 0
            while done < buf.count {
                let n = Foundation.write(fd, buf.baseAddress! + done, buf.count - done)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                done += n
            }
        }
    }

    deinit { close(fd) }
}

/// StreamLogHandler's format (timestamp, level, label, metadata, message), into a ``LogFile``.
struct FileLogHandler: LogHandler {
    let label: String
    let file: LogFile
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, file: LogFile) {
        self.label = label
        self.file = file
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let meta = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        file.write("\(Date().formatted(.iso8601)) \(event.level) \(label):\(meta) [\(event.source)] \(event.message)\n")
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
