import Brook
import BrookProtocol
import Foundation
import Logging

/// The peak resident memory of a real worker process: `brook ledger run` started as a child,
/// catching up on a topic of `events` trades, its `VmHWM` read from `/proc` until its stored
/// offsets reach the end of the topic.
public enum WorkerRSSProbe {
    /// - Parameters:
    ///   - executable: the `brook` binary to start (`/proc/self/exe` for this one).
    ///   - bootstrap: where the child connects (`host:port`).
    ///   - databaseURL: the `--db` of the child (a fresh scratch database).
    public static func measure(executable: String, bootstrap: String, client: ClientConfiguration, database: LedgerDatabase, databaseURL: String,
                               events: Int, accounts: Int, partitions: Int32, logger: Logger) async throws -> Int {
        let run = UUID().uuidString.prefix(8)
        let topic = "bench-rss-\(run)"
        let group = "bench-rss-\(run)"
        let admin = KafkaAdmin(config: client, logger: logger)
        defer { Task { await admin.close() } }
        try await admin.createTopics([.init(name: topic, partitions: partitions)])
        let producer = try KafkaProducer(configuration: ProducerConfiguration(client: client), logger: logger)
        for r in LedgerGenerator(LedgerGeneratorConfig(accounts: accounts, events: events, seed: 7)) {
            try await producer.sendAsync(ProducerRecord(topic: topic, key: Array(r.key.utf8), value: r.value))
        }
        await producer.close()
        let store = try await database.openStore()
        defer { Task { try? await store.close() } }

        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["ledger", "run", "--bootstrap", bootstrap, "--db", databaseURL, "--topic", topic, "--group", group]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        var peak = 0
        let deadline = ContinuousClock.now + .seconds(600)
        do {
            while true {
                peak = max(peak, peakRSSKiB(pid: child.processIdentifier) ?? 0)
                guard child.isRunning else { throw LedgerBenchError(description: "the worker process exited (status \(child.terminationStatus))") }
                let ends = try await admin.listOffsets(topic: topic, spec: .latest)
                let tps = ends.keys.map { TopicPartition(topic: topic, partition: $0) }
                let stored = try await store.storedOffsets(group: group, partitions: tps)
                if tps.allSatisfy({ (stored[$0] ?? 0) >= (ends[$0.partition] ?? 0) }) { break }
                guard ContinuousClock.now < deadline else { throw LedgerBenchError(description: "the worker process did not catch up in 600 s") }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            child.terminate()
            child.waitUntilExit()
            throw error
        }
        peak = max(peak, peakRSSKiB(pid: child.processIdentifier) ?? 0)
        child.terminate()
        child.waitUntilExit()
        try? await admin.deleteTopics([topic, topic + ".dlt", topic + ".quarantine"])
        return peak / 1024
    }

    /// `VmHWM` of a process in KiB.
    static func peakRSSKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}
