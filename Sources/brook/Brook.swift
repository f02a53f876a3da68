import ArgumentParser

@main
struct BrookCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "brook",
        abstract: "Kafka in production, in Swift: an embedded Kafka-protocol broker, client tools and services.",
        subcommands: [UpCommand.self, BrokerCommand.self, ProduceCommand.self, ConsumeCommand.self, TopicsCommand.self, GroupsCommand.self,
                      DltCommand.self, LagCommand.self, PerfCommand.self, LedgerCommand.self, LoadTestCommand.self]
    )

    static func main() async {
        MemoryTuning.apply()
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
