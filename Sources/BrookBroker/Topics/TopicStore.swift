import BrookProtocol
import Foundation

/// What the broker knows about one topic; persisted in `DATA/topics.json`.
public struct TopicMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var idHigh: UInt64
    public var idLow: UInt64
    public var partitions: Int32
    /// Only the configs set on the topic (dynamic topic configs); defaults come from the broker.
    public var configs: [String: String]
    public var isInternal: Bool

    public var id: KafkaUUID { KafkaUUID(high: idHigh, low: idLow) }

    public init(name: String, id: KafkaUUID, partitions: Int32, configs: [String: String], isInternal: Bool = false) {
        self.name = name
        self.idHigh = id.high
        self.idLow = id.low
        self.partitions = partitions
        self.configs = configs
        self.isInternal = isInternal
    }
}

/// The persisted catalogue of topics and dynamic broker configs.
///
/// Written whole, atomically (temp file, fsync, rename), on every change: topic changes are rare
/// and small, and a torn catalogue after kill -9 would lose every topic.
public struct CatalogFile: Codable, Sendable {
    public var topics: [String: TopicMetadata] = [:]
    public var brokerConfigs: [String: String] = [:]
    public var nextProducerIdBlock: Int64 = 1000

    public init() {}

    public static func load(from url: URL) throws -> CatalogFile {
        guard FileManager.default.fileExists(atPath: url.path) else { return CatalogFile() }
        let data = try Data(contentsOf: url)
        return try JSONDecoder().decode(CatalogFile.self, from: data)
    }

    public func save(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(self)
        try AtomicFile.write(data, to: url)
    }
}

/// Crash-safe whole-file replacement.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let tmp = url.appendingPathExtension("tmp")
        FileManager.default.createFile(atPath: tmp.path, contents: nil)
        let h = try FileHandle(forWritingTo: tmp)
        try h.write(contentsOf: data)
        try h.synchronize()
        try h.close()
        if rename(tmp.path, url.path) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        // fsync the directory so the rename itself survives power loss.
        let dfd = open(url.deletingLastPathComponent().path, O_RDONLY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// Kafka's topic name rules: 1–249 chars of [a-zA-Z0-9._-], not "." or "..".
public func validateTopicName(_ name: String) -> String? {
    if name.isEmpty { return "Topic name is illegal, it can't be empty" }
    if name == "." || name == ".." { return "Topic name cannot be \".\" or \"..\"" }
    if name.utf8.count > 249 { return "Topic name is longer than 249 characters" }
    for c in name.utf8 {
        let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2e || c == 0x5f || c == 0x2d
        if !ok { return "Topic name \"\(name)\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'" }
    }
    return nil
}
