import Foundation
import Yams

/// `brook.yaml`: the topics a deployment needs, checked in and applied by `brook topics apply`
/// (and by `brook up` at start).
///
/// ```yaml
/// topics:
///   - name: trades
///     partitions: 64          # over-partitioned on purpose: adding partitions later moves keys
///     config:
///       retention.ms: 604800000
///   - name: trades.dlt
///     partitions: 8
///     keyed: true
/// ```
public struct TopicsFile: Sendable, Equatable {
    public var topics: [TopicSpec]

    public init(topics: [TopicSpec]) {
        self.topics = topics
    }

    /// Parses YAML text; every problem names the topic and field it is about.
    public static func parse(_ yaml: String) throws -> TopicsFile {
        let raw: RawFile
        do {
            raw = try YAMLDecoder().decode(RawFile.self, from: yaml)
        } catch {
            throw TopicsFileError.invalid("not a valid topics file: \(error)")
        }
        var seen = Set<String>()
        var specs: [TopicSpec] = []
        for (i, t) in (raw.topics ?? []).enumerated() {
            let where_ = "topics[\(i)]"
            guard let name = t.name, !name.isEmpty else { throw TopicsFileError.invalid("\(where_): missing name") }
            guard TopicSpec.isLegalName(name) else {
                throw TopicsFileError.invalid("\(where_): illegal topic name '\(name)' (letters, digits, '.', '_', '-'; at most 249)")
            }
            guard seen.insert(name).inserted else { throw TopicsFileError.invalid("\(where_): topic '\(name)' appears twice") }
            guard let p = t.partitions, p > 0, p <= 100_000 else {
                throw TopicsFileError.invalid("topic '\(name)': partitions must be a positive number")
            }
            if let rf = t.replicationFactor, rf <= 0 {
                throw TopicsFileError.invalid("topic '\(name)': replication_factor must be positive")
            }
            specs.append(TopicSpec(
                name: name, partitions: Int32(p), replicationFactor: t.replicationFactor.map { Int16($0) },
                config: t.config?.mapValues(\.text) ?? [:], keyed: t.keyed ?? true))
        }
        return TopicsFile(topics: specs)
    }

    public static func load(path: String) throws -> TopicsFile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw TopicsFileError.invalid("cannot read \(path)")
        }
        return try parse(text)
    }

    private struct RawFile: Decodable {
        var topics: [RawTopic]?
    }

    private struct RawTopic: Decodable {
        var name: String?
        var partitions: Int?
        var replicationFactor: Int?
        var config: [String: Scalar]?
        var keyed: Bool?
        enum CodingKeys: String, CodingKey {
            case name, partitions, config, keyed
            case replicationFactor = "replication_factor"
        }
    }

    /// Config values are strings to Kafka; YAML may spell them as numbers or booleans.
    private struct Scalar: Decodable {
        var text: String
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int64.self) { text = String(i) }
            else if let b = try? c.decode(Bool.self) { text = String(b) }
            else { text = try c.decode(String.self) }
        }
    }
}

/// One topic as the file wants it.
public struct TopicSpec: Sendable, Equatable {
    public var name: String
    public var partitions: Int32
    public var replicationFactor: Int16?
    public var config: [String: String]
    /// Keyed topics refuse a partition increase unless asked: it moves keys to other partitions,
    /// which breaks per-key order for records already in flight.
    public var keyed: Bool

    public init(name: String, partitions: Int32, replicationFactor: Int16? = nil, config: [String: String] = [:], keyed: Bool = true) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.config = config
        self.keyed = keyed
    }

    static func isLegalName(_ name: String) -> Bool {
        name.count <= 249 && name != "." && name != ".." &&
            name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

public enum TopicsFileError: Error, Sendable, CustomStringConvertible, Equatable {
    case invalid(String)
    /// The plan would do something unsafe; the message says what and how to allow it.
    case unsafe(String)

    public var description: String {
        switch self {
        case .invalid(let s): return s
        case .unsafe(let s): return s
        }
    }
}
