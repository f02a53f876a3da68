import Foundation
import PostgresNIO

/// Where a ledger lives, parsed from the CLI's `--db`:
/// - `sqlite:PATH` (or a path ending in `.sqlite`/`.db`);
/// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` over TCP (no TLS), or
///   `postgres://USER@/DB?host=/socket/dir[&port=5432]` over a unix socket.
public enum LedgerDatabase: Sendable {
    case sqlite(path: String)
    case postgres(PostgresClient.Configuration)

    public struct BadURL: Error, CustomStringConvertible {
        public var description: String
    }

    public init(url: String) throws {
        if url.hasPrefix("sqlite:") {
            self = .sqlite(path: String(url.dropFirst("sqlite:".count)))
            return
        }
        if url.hasSuffix(".sqlite") || url.hasSuffix(".db") {
            self = .sqlite(path: url)
            return
        }
        guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql" else {
            throw BadURL(description: "--db must be sqlite:PATH or postgres://…, got '\(url)'")
        }
        let user = c.user ?? "postgres"
        let database = c.path.isEmpty ? nil : String(c.path.dropFirst())
        let query = Dictionary((c.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let port = c.port ?? query["port"].flatMap(Int.init) ?? 5432
        if let socketDir = query["host"], socketDir.hasPrefix("/") {
            self = .postgres(.init(unixSocketPath: "\(socketDir)/.s.PGSQL.\(port)", username: user, password: c.password, database: database))
        } else {
            guard let host = c.host, !host.isEmpty else { throw BadURL(description: "no host in '\(url)'") }
            self = .postgres(.init(host: host, port: port, username: user, password: c.password, database: database, tls: .disable))
        }
    }

    public func openStore() async throws -> any LedgerStore {
        switch self {
        case .sqlite(let path): try await SQLiteLedgerStore.open(path: path)
        case .postgres(let config): try await PostgresLedgerStore.open(config)
        }
    }

    public func openPoller() async throws -> any LedgerPoller {
        switch self {
        case .sqlite(let path): try await SQLiteLedgerPoller.open(path: path)
        case .postgres(let config): try await PostgresLedgerPoller.open(config)
        }
    }
}

extension LedgerDatabase {
    /// `sqlite` or `postgres`.
    public var kind: String {
        switch self {
        case .sqlite: return "sqlite"
        case .postgres: return "postgres"
        }
    }
}
