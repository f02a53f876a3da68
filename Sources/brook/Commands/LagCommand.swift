import ArgumentParser
import Brook
import BrookOps
import Foundation
import Logging
import ServiceLifecycle

/// `brook lag` (evaluate groups now or every few seconds) and `brook lag serve` (evaluate
/// continuously, serve /metrics and Burrow's API). The logic is BrookOps' LagEvaluator.
struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "Consumer group lag with Burrow's evaluation and an exact time lag.",
        subcommands: [Check.self, Serve.self],
        defaultSubcommand: Check.self)

    /// The evaluation settings both subcommands take.
    struct EvaluationOptions: ParsableArguments {
        @Option(name: .customLong("group"), help: "A group to evaluate (repeatable); all groups when none is named.")
        var groups: [String] = []
        @Option(name: .customLong("cluster-name"), help: "The cluster's name in metrics (cluster_name) and the Burrow API.")
        var clusterName: String = "default"
        @Option(help: "Commits kept per partition (Burrow's intervals).")
        var intervals: Int = 10
        @Option(name: .customLong("min-distance"), help: "Seconds: a commit closer than this to the newest stored one replaces it (Burrow's min-distance).")
        var minDistance: Double = 0
        @Option(name: .customLong("allowed-lag"), help: "Window rules run only when a partition's lag exceeds this many records.")
        var allowedLag: Int64 = 0
        @Option(name: .customLong("max-lag-seconds"), help: ArgumentHelp(
            "A partition whose time lag is greater than this many seconds is at least WARN.",
            discussion: "Time lag = now minus the timestamp of the first record not yet consumed. The check is strict (>) and "
                + "applies from the first observation; it never lowers a status set by Burrow's rules (STOP, STALL, REWIND stay)."))
        var maxLagSeconds: Double?

        func evaluator() -> LagEvaluator {
            LagEvaluator(cluster: clusterName, configuration: LagEvaluatorConfiguration(
                intervals: intervals, minDistanceMs: Int64(minDistance * 1000), allowedLag: allowedLag, maxLagSeconds: maxLagSeconds))
        }
    }

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, prometheus
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Evaluate consumer groups once, or every --watch seconds (the default subcommand: `brook lag …`).",
            discussion: """
                Per partition: committed offset, log end offset, lag in records, exact time lag (now minus the \
                timestamp of the first record not consumed yet, read with a Fetch at the committed offset; 0 when \
                caught up), owning member, status, and the estimated time to catch up (ETA) from the rates seen \
                over the recent observations ("never" when records arrive faster than the group commits).

                Statuses follow Burrow: a window of the last --intervals commits per partition; when the lag is \
                above --allowed-lag and was never zero in the window: REWIND (an offset went back), STOP (no \
                commit for longer than the window spans), STALL (commits, all of the same offset), WARN (the lag \
                never fell); else OK. The group is its worst partition, with STOP/STALL/REWIND shown as ERR. \
                OffsetFetch has no commit times: a changed offset, or an unchanged one while a live member owns \
                the partition, counts as a commit at the observation's time. The window rules need two \
                observations: one run without --watch reports --max-lag-seconds only and says so.

                --format json prints one object per evaluation, on one line (null: unknown):
                {"cluster", "time_ms", "observations", "window_rules_applied": bool,
                 "groups": [{"group", "state", "status": OK|WARN|ERR,
                   "complete": 0..1, "total_lag", "max_lag", "max_lag_seconds",
                   "partitions": [{"topic", "partition", "current_offset",
                     "log_end_offset", "log_start_offset", "lag", "lag_seconds",
                     "owner": {"consumer_id", "host", "client_id"} | null,
                     "status": OK|WARN|STOP|STALL|REWIND,
                     "window_status" (the rules alone), "over_max_lag_seconds",
                     "consumption_rate", "production_rate" (records/s),
                     "eta_seconds", "catching_up",
                     "window_start", "window_end": {"offset", "timestamp", "lag"},
                     "window_samples", "complete"}]}]}

                --max-lag-seconds N: a partition whose time lag is greater than N is at \
                least WARN, from the first observation; STOP, STALL and REWIND stay.

                Exit status: 0 when every group is OK, 2 when the worst is WARN, 3 when it is ERR \
                (after the last evaluation), 1 on errors.
                """)

        @OptionGroup var client: ClientOptions
        @OptionGroup var evaluation: EvaluationOptions
        @Option(help: "table, json or prometheus.") var format: Format = .table
        @Option(help: "Evaluate again every this many seconds (the window needs several observations).") var watch: Double?
        @Option(help: "With --watch: stop after this many evaluations (0: until interrupted).") var count: Int = 0

        func run() async throws {
            var worst = LagStatus.ok
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                let collector = LagCollector(admin: admin, groups: evaluation.groups)
                var evaluator = evaluation.evaluator()
                var done = 0
                while true {
                    let report = evaluator.observe(try await collector.observe())
                    worst = report.worstStatus
                    print(render(report, first: done == 0))
                    // A watcher (or a pipe) sees each evaluation as it happens.
                    fflush(nil)
                    done += 1
                    guard let watch, count == 0 || done < count else { break }
                    try await Task.sleep(for: .milliseconds(Int(watch * 1000)))
                }
            }
            switch worst {
            case .ok, .notFound: return
            case .warn: throw ExitCode(2)
            default: throw ExitCode(3)
            }
        }

        func render(_ report: LagReport, first: Bool) -> String {
            switch format {
            case .json:
                return (try? LagJSON.encode(report)) ?? "{}"
            case .prometheus:
                return LagPrometheus.render(report)
            case .table:
                var out = first ? "" : "\n"
                out += formatTable(LagTable.header, LagTable.rows(report))
                out += "\n" + LagTable.summary(report).joined(separator: "\n")
                return out
            }
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Evaluate continuously; serve /metrics (kafka-lag-exporter's names) and Burrow's /v3/kafka API.",
            discussion: """
                GET /metrics: Prometheus text with kafka-lag-exporter's metrics (kafka_consumergroup_group_offset, \
                _lag, _lag_seconds, _max_lag, _max_lag_seconds, _sum_lag, _topic_sum_lag, kafka_partition_latest_offset, \
                kafka_partition_earliest_offset; labels cluster_name, group, topic, partition, member_host, consumer_id, \
                client_id) and kafka_consumergroup_group_status / _group_partition_status (Burrow's codes: 1 OK, 2 WARN, \
                3 ERR, 4 STOP, 5 STALL, 6 REWIND).
                GET /v3/kafka, /v3/kafka/{cluster}/consumer, /v3/kafka/{cluster}/consumer/{group}/status (partitions \
                not OK) and …/lag (all partitions): Burrow's JSON.
                """)

        @OptionGroup var client: ClientOptions
        @OptionGroup var evaluation: EvaluationOptions
        @Option(help: "HOST:PORT to serve HTTP on.") var listen: String = "127.0.0.1:9645"
        @Option(help: "Seconds between evaluations.") var interval: Double = 10

        func run() async throws {
            try await runClient {
                let logger = client.logger
                let admin = KafkaAdmin(config: try client.configuration(), logger: logger)
                defer { Task { await admin.close() } }
                let collector = LagCollector(admin: admin, groups: evaluation.groups)
                let monitor = LagMonitorService(evaluator: evaluation.evaluator(), interval: .milliseconds(Int(interval * 1000)), logger: logger) {
                    try await collector.observe()
                }
                let (host, port) = try parseHostPort(listen, defaultPort: 9645)
                let server = LagHTTPServer(host: host, port: port, monitor: monitor, logger: logger)
                try await server.bind()
                let group = ServiceGroup(configuration: .init(
                    services: [.init(service: monitor), .init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        }
    }
}

/// Aligned columns like ``printTable(_:_:)``, as a string (a watch prints a table per evaluation).
private func formatTable(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: " ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
