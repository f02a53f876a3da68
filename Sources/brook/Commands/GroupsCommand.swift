import ArgumentParser
import Brook

struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "List, describe and reset consumer groups.",
        subcommands: [List.self, Describe.self, Reset.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                for g in try await admin.listGroups() { print(g.groupId) }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument var group: String
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                let desc = try await admin.describeGroup(group)
                let lags = try await admin.groupLag(group)
                var owner: [String: GroupMember] = [:]
                for m in desc.members {
                    for (t, ps) in m.assignment { for p in ps { owner["\(t)-\(p)"] = m } }
                }
                var rows: [[String]] = []
                for l in lags {
                    let m = owner["\(l.topic)-\(l.partition)"]
                    rows.append([group, l.topic, "\(l.partition)", l.committed.map(String.init) ?? "-", "\(l.logEndOffset)",
                                 l.lag.map(String.init) ?? "-", m?.memberId ?? "-", m?.host ?? "-", m?.clientId ?? "-"])
                }
                if rows.isEmpty && desc.members.isEmpty && desc.state == "Dead" {
                    throw KafkaClientError.broker(.groupIdNotFound, resource: "group \(group)", message: "group does not exist")
                }
                printTable(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"], rows)
            }
        }
    }

    typealias GroupMember = KafkaAdmin.GroupMember

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reset a group's committed offsets (the group must be inactive).")
        @OptionGroup var client: ClientOptions
        @Argument var group: String
        @Option(help: "Topic to reset.") var topic: String
        @Flag(name: .customLong("to-earliest")) var toEarliest = false
        @Flag(name: .customLong("to-latest")) var toLatest = false
        @Option(name: .customLong("to-offset")) var toOffset: Int64?
        @Option(name: .customLong("to-datetime-ms"), help: "Milliseconds since the epoch.") var toTimestamp: Int64?
        @Flag(name: .customLong("dry-run")) var dryRun = false

        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                let desc = try await admin.describeGroup(group)
                if !desc.members.isEmpty {
                    throw ValidationError("group \(group) has \(desc.members.count) active member(s); stop them before resetting offsets")
                }
                var target: [Int32: Int64]
                if toEarliest {
                    target = try await admin.listOffsets(topic: topic, spec: .earliest)
                } else if toLatest {
                    target = try await admin.listOffsets(topic: topic, spec: .latest)
                } else if let ts = toTimestamp {
                    target = try await admin.listOffsets(topic: topic, spec: .timestamp(ts))
                    let latest = try await admin.listOffsets(topic: topic, spec: .latest)
                    for (p, o) in target where o < 0 { target[p] = latest[p] }
                } else if let o = toOffset {
                    let t = try await admin.describeTopic(topic)
                    target = Dictionary(uniqueKeysWithValues: t.partitions.map { ($0.id, o) })
                } else {
                    throw ValidationError("choose one of --to-earliest, --to-latest, --to-offset, --to-datetime-ms")
                }
                if !dryRun { try await admin.alterGroupOffsets(group, offsets: [topic: target]) }
                printTable(["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], target.sorted { $0.key < $1.key }.map { [group, topic, "\($0.key)", "\($0.value)"] })
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        @Argument var groups: [String]
        func run() async throws {
            try await runClient {
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                try await admin.deleteGroups(groups)
                for g in groups { print("Deleted group \(g).") }
            }
        }
    }
}
