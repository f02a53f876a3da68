import ArgumentParser
import Brook
import BrookOps

extension TopicsCommand {
    /// `brook topics apply -f brook.yaml`: topics-as-code. Creates what is missing, grows and
    /// reconfigures what differs, never deletes; validates every change with the broker first.
    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the cluster's topics match a brook.yaml (create, add partitions, set configs; never delete).")
        @OptionGroup var client: ClientOptions
        @Option(name: [.short, .customLong("file")], help: "The topics file.") var file: String = "brook.yaml"
        @Flag(name: .customLong("dry-run"), help: "Print the plan, change nothing.") var dryRun = false
        @Flag(name: .customLong("allow-partition-increase"), help: "Allow adding partitions to keyed topics (moves keys).")
        var allowPartitionIncrease = false

        func run() async throws {
            try await runClient {
                let topics = try TopicsFile.load(path: file)
                let admin = KafkaAdmin(config: try client.configuration(), logger: client.logger)
                defer { Task { await admin.close() } }
                let applier = TopicApplier(admin: admin, logger: client.logger)
                let plan = try await applier.plan(topics, allowPartitionIncrease: allowPartitionIncrease)
                for c in plan.changes { print(c) }
                for u in plan.unmanaged { print("  (not in \(file): \(u))") }
                if plan.isEmpty { print("Topics match \(file).") ; return }
                if dryRun { print("Dry run: \(plan.changes.count) change(s) not applied."); return }
                try await applier.apply(plan)
                print("Applied \(plan.changes.count) change(s).")
            }
        }
    }
}
