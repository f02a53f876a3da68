import Foundation

/// `brook lag`'s table: kafka-consumer-groups' columns plus STATUS, LAG-SECONDS and ETA.
public enum LagTable {
    /// The column names.
    public static let header = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID",
                                "STATUS", "LAG-SECONDS", "ETA"]

    /// One row per partition; `-` for what is unknown, `never` for an ETA when the group does
    /// not gain on the log.
    public static func rows(_ report: LagReport) -> [[String]] {
        var rows: [[String]] = []
        for g in report.groups {
            for p in g.partitions {
                let offset: String = p.currentOffset.map { String($0) } ?? "-"
                let lag: String = p.lag.map { String($0) } ?? "-"
                let seconds: String = p.lagSeconds.map { String(format: "%.3f", $0) } ?? "-"
                let owner: [String] = [p.owner?.consumerId ?? "-", p.owner?.host ?? "-", p.owner?.clientId ?? "-"]
                rows.append([g.group, p.topic, String(p.partition), offset, String(p.logEndOffset), lag] + owner + [p.status.name, seconds, eta(p)])
            }
        }
        return rows
    }

    /// The ETA cell: `0s`, `42s`, `1h05m`, `never` or `-`.
    public static func eta(_ p: PartitionLag) -> String {
        if let e = p.etaSeconds { return duration(e) }
        if p.catchingUp == false { return "never" }
        return "-"
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded(.up))
        if t < 60 { return "\(t)s" }
        if t < 3600 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m"
    }

    /// The line under the table: the group statuses, and what a first observation cannot tell.
    public static func summary(_ report: LagReport) -> [String] {
        var out = report.groups.map { g in
            "group \(g.group): \(g.status.name) (state \(g.state), total lag \(g.totalLag), max lag \(String(format: "%.3f", g.maxLagSeconds)) s, window \(Int((g.complete * 100).rounded()))% complete)"
        }
        if !report.windowRulesApplied {
            out.append("note: one observation: Burrow's window rules need two or more (use --watch SECONDS); statuses here come from --max-lag-seconds only")
        }
        return out
    }
}

/// `brook lag --format json`: one ``LagReport`` per line (JSON Lines with `--watch`).
public enum LagJSON {
    /// The report as one line of JSON with sorted keys.
    public static func encode(_ report: LagReport) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(report), as: UTF8.self)
    }
}

/// Prometheus text (format 0.0.4) with kafka-lag-exporter's metric names and labels, plus
/// Brook's status gauges.
public enum LagPrometheus {
    /// The exposition text for `report`.
    public static func render(_ report: LagReport) -> String {
        var out = ""
        let c = report.cluster
        func family(_ name: String, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for s in samples {
                let labels = s.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
                out += "\(name){\(labels)} \(number(s.value))\n"
            }
        }
        func member(_ g: GroupLag, _ p: PartitionLag) -> [(String, String)] {
            [("cluster_name", c), ("group", g.group), ("topic", p.topic), ("partition", "\(p.partition)"),
             ("member_host", p.owner?.host ?? ""), ("consumer_id", p.owner?.consumerId ?? ""), ("client_id", p.owner?.clientId ?? "")]
        }
        let committed = report.groups.flatMap { g in g.partitions.filter { $0.currentOffset != nil }.map { (g, $0) } }
        family("kafka_consumergroup_group_offset", "Last group consumed offset of a partition",
               committed.map { (member($0.0, $0.1), Double($0.1.currentOffset ?? 0)) })
        family("kafka_consumergroup_group_lag", "Group offset lag of a partition",
               committed.map { (member($0.0, $0.1), Double($0.1.lag ?? 0)) })
        // A time lag that could not be read is left out, never written as NaN.
        family("kafka_consumergroup_group_lag_seconds", "Group time lag of a partition: now minus the timestamp of the first unconsumed record",
               committed.compactMap { g, p in p.lagSeconds.map { (member(g, p), $0) } })
        family("kafka_consumergroup_group_max_lag", "Max group offset lag",
               report.groups.map { ([("cluster_name", c), ("group", $0.group)], Double($0.maxLag)) })
        family("kafka_consumergroup_group_max_lag_seconds", "Max group time lag",
               report.groups.map { ([("cluster_name", c), ("group", $0.group)], $0.maxLagSeconds) })
        family("kafka_consumergroup_group_sum_lag", "Sum of group offset lag",
               report.groups.map { ([("cluster_name", c), ("group", $0.group)], Double($0.totalLag)) })
        var topicSums: [(labels: [(String, String)], value: Double)] = []
        for g in report.groups {
            var sums: [String: Int64] = [:]
            for p in g.partitions { sums[p.topic, default: 0] += p.lag ?? 0 }
            topicSums += sums.sorted { $0.key < $1.key }.map { ([("cluster_name", c), ("group", g.group), ("topic", $0.key)], Double($0.value)) }
        }
        family("kafka_consumergroup_group_topic_sum_lag", "Sum of group offset lag across topic partitions", topicSums)
        // Partitions once, however many groups read them.
        var seen: [String: PartitionLag] = [:]
        for g in report.groups { for p in g.partitions { seen["\(p.topic)\u{0}\(p.partition)"] = p } }
        let parts = seen.values.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        family("kafka_partition_latest_offset", "Latest offset of a partition",
               parts.map { ([("cluster_name", c), ("topic", $0.topic), ("partition", "\($0.partition)")], Double($0.logEndOffset)) })
        family("kafka_partition_earliest_offset", "Earliest offset of a partition",
               parts.map { ([("cluster_name", c), ("topic", $0.topic), ("partition", "\($0.partition)")], Double($0.logStartOffset)) })
        family("kafka_consumergroup_group_status", "Group status, Burrow's codes: 1 OK, 2 WARN, 3 ERR",
               report.groups.map { ([("cluster_name", c), ("group", $0.group)], Double($0.status.rawValue)) })
        family("kafka_consumergroup_group_partition_status", "Partition status, Burrow's codes: 1 OK, 2 WARN, 4 STOP, 5 STALL, 6 REWIND",
               report.groups.flatMap { g in g.partitions.map { (member(g, $0), Double($0.status.rawValue)) } })
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
