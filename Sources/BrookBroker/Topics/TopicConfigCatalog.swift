import BrookProtocol

/// The per-topic configs Brook understands, with Kafka's names, types and defaults.
///
/// DescribeConfigs reports every entry; Create/Alter validate values against `kind` so a typo
/// fails with INVALID_CONFIG instead of being stored and ignored.
public enum TopicConfigCatalog {
    public enum Kind: Int8, Sendable {
        case boolean = 1, string = 2, int = 3, short = 4, long = 5, double = 6, list = 7
    }

    public struct Entry: Sendable {
        public let name: String
        public let kind: Kind
        public let defaultValue: String
        /// Allowed values for enumerated configs.
        public let allowed: [String]?
    }

    public static let entries: [Entry] = [
        Entry(name: "cleanup.policy", kind: .list, defaultValue: "delete", allowed: ["delete", "compact", "compact,delete", "delete,compact"]),
        Entry(name: "compression.type", kind: .string, defaultValue: "producer", allowed: ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        Entry(name: "max.message.bytes", kind: .int, defaultValue: "1048588", allowed: nil),
        Entry(name: "message.timestamp.type", kind: .string, defaultValue: "CreateTime", allowed: ["CreateTime", "LogAppendTime"]),
        Entry(name: "retention.bytes", kind: .long, defaultValue: "-1", allowed: nil),
        Entry(name: "retention.ms", kind: .long, defaultValue: "604800000", allowed: nil),
        Entry(name: "segment.bytes", kind: .int, defaultValue: "1073741824", allowed: nil),
        Entry(name: "segment.ms", kind: .long, defaultValue: "604800000", allowed: nil),
        Entry(name: "segment.index.bytes", kind: .int, defaultValue: "10485760", allowed: nil),
        Entry(name: "index.interval.bytes", kind: .int, defaultValue: "4096", allowed: nil),
        Entry(name: "min.insync.replicas", kind: .int, defaultValue: "1", allowed: nil),
        Entry(name: "unclean.leader.election.enable", kind: .boolean, defaultValue: "false", allowed: nil),
        Entry(name: "delete.retention.ms", kind: .long, defaultValue: "86400000", allowed: nil),
        Entry(name: "min.compaction.lag.ms", kind: .long, defaultValue: "0", allowed: nil),
        Entry(name: "message.timestamp.difference.max.ms", kind: .long, defaultValue: "9223372036854775807", allowed: nil),
        Entry(name: "flush.messages", kind: .long, defaultValue: "9223372036854775807", allowed: nil),
        Entry(name: "flush.ms", kind: .long, defaultValue: "9223372036854775807", allowed: nil),
    ]

    public static let byName: [String: Entry] = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })

    /// Checks `value` for config `name`; returns an error message or nil when valid.
    public static func validate(name: String, value: String?) -> String? {
        guard let e = byName[name] else { return "Unknown topic config name: \(name)" }
        guard let value else { return nil }
        switch e.kind {
        case .int, .short:
            guard let v = Int32(value), v >= (name == "max.message.bytes" || name == "segment.bytes" ? 1 : Int32.min) else {
                return "Invalid value \(value) for configuration \(name): not a valid int"
            }
            if name == "segment.bytes" && v < 14 { return "Invalid value \(value) for configuration \(name): must be at least 14" }
        case .long:
            guard Int64(value) != nil else { return "Invalid value \(value) for configuration \(name): not a valid long" }
        case .boolean:
            guard value == "true" || value == "false" else { return "Invalid value \(value) for configuration \(name): must be true or false" }
        case .double:
            guard Double(value) != nil else { return "Invalid value \(value) for configuration \(name): not a number" }
        case .string, .list:
            if let allowed = e.allowed, !allowed.contains(value) {
                return "Invalid value \(value) for configuration \(name): must be one of \(allowed.joined(separator: ", "))"
            }
        }
        return nil
    }
}
