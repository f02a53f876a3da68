import ArgumentParser
import Brook
import BrookPipeline
import Foundation

/// `brook dlt list|replay`: inspect dead-letter topics and send their records back to the
/// source topics (Brook's, Spring Kafka's and Kafka Connect's headers are understood).
struct DltCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlt",
        abstract: "List and replay dead-letter topics.",
        subcommands: [List.self, Replay.self])

    /// The filters both subcommands take.
    struct FilterOptions: ParsableArguments {
        @Option(name: .customLong("key"), help: "Only this key (repeatable).") var keys: [String] = []
        @Option(help: "Only records whose original timestamp is at or after this (ms since the epoch, or ISO 8601).") var from: String?
        @Option(help: "Only records whose original timestamp is at or before this (ms since the epoch, or ISO 8601).") var until: String?
        @Option(name: .customLong("error-type"), help: "Only this error type (repeatable), e.g. DecodeError.") var errorTypes: [String] = []

        func filter() throws -> DeadLetterFilter {
            DeadLetterFilter(
                keys: keys.isEmpty ? nil : Set(keys), from: try from.map(Self.time), until: try until.map(Self.time),
                errorTypes: errorTypes.isEmpty ? nil : Set(errorTypes))
        }

        static func time(_ s: String) throws -> Int64 {
            if let ms = Int64(s) { return ms }
            let f = ISO8601DateFormatter()
            if let d = f.date(from: s) { return Int64(d.timeIntervalSince1970 * 1000) }
            throw ValidationError("'\(s)' is neither milliseconds since the epoch nor an ISO 8601 time")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the dead letters of a DLT with their provenance.")
        @OptionGroup var client: ClientOptions
        @Option(help: "The dead-letter topic.") var topic: String = "trades.dlt"
        @OptionGroup var filters: FilterOptions

        func run() async throws {
            try await runClient {
                let replayer = DeadLetterReplayer(client: try client.configuration(), logger: client.logger)
                let entries = try await replayer.list(topic, filter: try filters.filter())
                printTable(
                    ["PARTITION", "OFFSET", "KEY", "REASON", "SOURCE", "ERROR-TYPE", "ATTEMPTS", "REPLAYS", "ERROR"],
                    entries.map { e in
                        let p = e.provenance
                        let source = "\(p.originalTopic)/\(p.originalPartition.map(String.init) ?? "?")@\(p.originalOffset.map(String.init) ?? "?")"
                        return ["\(e.partition)", "\(e.offset)", e.keyString ?? "", p.reason.rawValue, source, p.errorType ?? "",
                                p.attempts.map(String.init) ?? "", "\(p.replayCount)", p.errorMessage ?? ""]
                    })
                FileHandle.standardError.write(Data("\(entries.count) dead letter(s) in \(topic)\n".utf8))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead letters back to their source topics, in order; resumable, with a loop guard.")
        @OptionGroup var client: ClientOptions
        @Option(help: "The dead-letter topic.") var topic: String = "trades.dlt"
        @OptionGroup var filters: FilterOptions
        @Flag(name: .customLong("dry-run"), help: "Show what would be replayed; send and record nothing.") var dryRun = false
        @Option(name: .customLong("max-replays"), help: "Refuse records already replayed this many times (loop guard).") var maxReplays = 3
        @Option(name: .customLong("progress-group"), help: "Consumer group that stores how far the replay got (resume by running again).")
        var progressGroup = "brook-dlt-replay"

        func run() async throws {
            try await runClient {
                var options = ReplayOptions()
                options.filter = try filters.filter()
                options.dryRun = dryRun
                options.maxReplays = maxReplays
                options.progressGroup = progressGroup
                let replayer = DeadLetterReplayer(client: try client.configuration(), logger: client.logger)
                let result = try await replayer.replay(topic, options: options)
                for e in result.replayed {
                    print("\(dryRun ? "would replay" : "replayed") \(topic)/\(e.partition)@\(e.offset) key=\(e.keyString ?? "") -> \(e.provenance.originalTopic)")
                }
                for e in result.refused {
                    print("refused \(topic)/\(e.partition)@\(e.offset) key=\(e.keyString ?? "") (replays: \(e.provenance.replayCount))")
                }
                print("\(dryRun ? "dry run: " : "")\(result.replayed.count) replayed, \(result.refused.count) refused, \(result.skipped) skipped")
            }
        }
    }
}
