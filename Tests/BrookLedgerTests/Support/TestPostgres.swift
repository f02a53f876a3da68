import Foundation
import PostgresNIO

/// A throwaway PostgreSQL cluster for the tests: `initdb` into a temp dir, `pg_ctl start` on a
/// free port listening on a unix socket only, a fresh database per test, stopped at process
/// exit. Missing binaries are a test failure, never a skip.
///
/// initdb refuses to run as root, so as root the cluster runs as the `postgres` user (created
/// as a system user if absent) through `runuser`, and the temp dir is handed to that user.
actor TestPostgres {
    static let shared = TestPostgres()

    struct Cluster {
        var dir: String
        var port: Int
        var binDir: String
        var runAs: [String]
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private var cluster: Cluster?
    private var databases = 0

    /// A new empty database on the shared cluster.
    func freshDatabase() async throws -> PostgresClient.Configuration {
        let cluster = try await started()
        databases += 1
        let name = "t\(databases)"
        try Self.run(cluster.runAs + ["\(cluster.binDir)/createdb", "-h", cluster.dir, "-p", "\(cluster.port)", "-U", "postgres", name])
        var config = PostgresClient.Configuration(unixSocketPath: "\(cluster.dir)/.s.PGSQL.\(cluster.port)", username: "postgres", password: nil, database: name)
        config.options.maximumConnections = 8
        return config
    }

    private func started() async throws -> Cluster {
        if let cluster { return cluster }
        let binDir = try Self.findBinaries()
        var runAs: [String] = []
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brook-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if getuid() == 0 {
            if getpwnam("postgres") == nil {
                try Self.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"])
            }
            guard let pw = getpwnam("postgres") else { throw Failure(description: "cannot create the postgres user") }
            guard chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else { throw Failure(description: "chown \(dir) failed") }
            runAs = ["runuser", "-u", "postgres", "--"]
        }
        try Self.run(runAs + ["\(binDir)/initdb", "-D", "\(dir)/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        var lastError: Error?
        for _ in 0..<5 {
            let port = Int.random(in: 20_000..<60_000)
            do {
                // Unix socket only: nothing listens on the network. fsync off: a test cluster.
                let options = "-p \(port) -k \(dir) -c listen_addresses= -c fsync=off -c full_page_writes=off -c max_connections=200"
                try Self.run(runAs + ["\(binDir)/pg_ctl", "-D", "\(dir)/data", "-l", "\(dir)/server.log", "-w", "-t", "60", "-o", options, "start"])
                let cluster = Cluster(dir: dir, port: port, binDir: binDir, runAs: runAs)
                self.cluster = cluster
                registerStop(cluster)
                return cluster
            } catch {
                lastError = error
            }
        }
        throw lastError ?? Failure(description: "pg_ctl start failed")
    }

    /// `initdb`/`pg_ctl` from PATH, else the newest /usr/lib/postgresql/*/bin.
    static func findBinaries() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":").map(String.init) where FileManager.default.isExecutableFile(atPath: "\(dir)/initdb") {
            let resolved = URL(fileURLWithPath: "\(dir)/initdb").resolvingSymlinksInPath().deletingLastPathComponent().path
            if FileManager.default.isExecutableFile(atPath: "\(resolved)/pg_ctl") { return resolved }
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            let bin = "/usr/lib/postgresql/\(version)/bin"
            if FileManager.default.isExecutableFile(atPath: "\(bin)/initdb") { return bin }
        }
        throw Failure(description: "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; install postgresql (scripts/setup-peers.sh does)")
    }

    /// Runs `argv` (PATH lookup) with output to a temp file and waits for it. posix_spawn and
    /// waitpid rather than Foundation's Process, whose waitUntilExit hung here once `pg_ctl`
    /// had left the server running.
    @discardableResult
    static func run(_ argv: [String]) throws -> String {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("brook-pg-cmd-\(UUID().uuidString).log").path
        defer { unlink(logPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // From "/": the postgres user may not be able to read the current directory.
        let shellArgv = ["/bin/sh", "-c", "cd / && exec \"$@\"", "sh"] + argv
        var cArgs = shellArgv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, shellArgv[0], &actions, nil, &cArgs, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(argv[0]): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0, spelled out (the macros are not imported).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw Failure(description: "\(argv.joined(separator: " ")) failed (status \(status)): \(output)")
        }
        return output
    }
}

// What the exit hook runs: written once (under the TestPostgres actor) before the hook is
// registered, read only by the hook at exit, so never concurrently.
nonisolated(unsafe) private var stopArguments: [String] = []

private func registerStop(_ cluster: TestPostgres.Cluster) {
    stopArguments = cluster.runAs + ["\(cluster.binDir)/pg_ctl", "-D", "\(cluster.dir)/data", "-m", "immediate", "-w", "stop"]
    stopDir = cluster.dir
    atexit {
        _ = try? TestPostgres.run(stopArguments)
        try? FileManager.default.removeItem(atPath: stopDir)
    }
}

nonisolated(unsafe) private var stopDir = ""
