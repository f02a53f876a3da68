import ArgumentParser
import Brook

struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create, list, describe, alter and delete topics.",
        subcommands: [Create.self, List.self, Describe.self, Alter.self, Delete.self, Apply.self]
    )

    struct Create: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument(help: "Topic name.") var topic: String
        @Option(help: "Partitions (default: the broker's num.partitions).") var partitions: Int32 = -1
        @Option(name: .customLong("replication-factor")) var replicationFactor: Int16 = -1
        @Option(name: .customLong("config"), help: "KEY=VALUE topic config (repeatable).") var configs: [String] = []
        @Flag(name: .customLong("validate-only")) var validateOnly = false
        @Flag(name: .customLong("if-not-exists")) var ifNotExists = false

        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                var cfg: [String: String] = [:]
                for kv in configs {
                    guard let eq = kv.firstIndex(of: "=") else { throw ValidationError("--config expects KEY=VALUE, got \(kv)") }
                    cfg[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
                }
                do {
                    try await admin.createTopics([.init(name: topic, partitions: partitions, replicationFactor: replicationFactor, configs: cfg)], validateOnly: validateOnly)
                } catch let e as KafkaClientError where ifNotExists && e.errorCode == .topicAlreadyExists {
                    return
                }
                print(validateOnly ? "Topic \(topic) is valid." : "Created topic \(topic).")
            }
        }
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Flag(name: .customLong("include-internal")) var includeInternal = false
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                for t in try await admin.listTopics(includeInternal: includeInternal) { print(t.name) }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument var topic: String
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                let t = try await admin.describeTopic(topic)
                let configs = try await admin.describeConfigs(.topic, name: topic).filter { !$0.isDefault }
                let cfg = configs.map { "\($0.name)=\($0.value ?? "")" }.joined(separator: ",")
                print("Topic: \(t.name)\tTopicId: \(t.id)\tPartitionCount: \(t.partitions.count)\tReplicationFactor: \(t.partitions.first?.replicas.count ?? 0)\tConfigs: \(cfg)")
                for p in t.partitions {
                    print("\tTopic: \(t.name)\tPartition: \(p.id)\tLeader: \(p.leader)\tReplicas: \(p.replicas.map(String.init).joined(separator: ","))\tIsr: \(p.isr.map(String.init).joined(separator: ","))")
                }
            }
        }
    }

    struct Alter: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument var topic: String
        @Option(name: .customLong("partitions"), help: "Increase the partition count to this total.") var partitions: Int32?
        @Option(name: .customLong("set"), help: "KEY=VALUE config to set (repeatable).") var set: [String] = []
        @Option(name: .customLong("delete-config"), help: "Config to remove (repeatable).") var deleteConfig: [String] = []
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                if let partitions { try await admin.createPartitions(topic: topic, totalCount: partitions) }
                var changes: [(name: String, op: KafkaAdmin.ConfigOperation, value: String?)] = []
                for kv in set {
                    guard let eq = kv.firstIndex(of: "=") else { throw ValidationError("--set expects KEY=VALUE, got \(kv)") }
                    changes.append((String(kv[..<eq]), .set, String(kv[kv.index(after: eq)...])))
                }
                for k in deleteConfig { changes.append((k, .delete, nil)) }
                if !changes.isEmpty { try await admin.alterConfigs(.topic, name: topic, changes) }
                print("Altered topic \(topic).")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument var topics: [String]
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                try await admin.deleteTopics(topics)
                for t in topics { print("Deleted topic \(t).") }
            }
        }
    }
}
