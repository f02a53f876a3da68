import ArgumentParser
import Brook
import BrookProtocol
import Foundation
import NIOCore

/// `brook consume`: prints records with a kcat-like format.
struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consume", abstract: "Consume records and print them.")

    @OptionGroup var client: ClientOptions
    @Option(help: "Topic to consume.") var topic: String
    @Option(help: "Consumer group (omit to read every partition without a group).") var group: String?
    @Flag(name: .customLong("from-beginning"), help: "Start at the oldest record when there is no committed offset.") var fromBeginning = false
    @Option(help: "Exit after this many records.") var count: Int?
    @Option(name: .customLong("session-timeout-ms"), help: "Group session timeout (session.timeout.ms).") var sessionTimeoutMs: Int?
    @Option(help: "%k key, %v value, %p partition, %o offset, %t timestamp, %T topic, %h headers (k=v,k=v; a null value prints k), \\n \\t escapes.") var format: String = "%v"

    func run() async throws {
        try await runClient {
            let cfg = try client.configuration()
            // Fail fast with one line when the cluster is unreachable or the topic is missing.
            let admin = KafkaAdmin(config: cfg, logger: client.logger)
            let meta = try await admin.describeTopic(topic)
            await admin.close()
            var cc = ConsumerConfiguration(client: cfg, groupId: group)
            cc.offsets.autoOffsetReset = fromBeginning ? .earliest : .latest
            cc.fetch.allowAutoCreateTopics = false
            if let sessionTimeoutMs {
                cc.group.sessionTimeout = .milliseconds(sessionTimeoutMs)
                cc.group.heartbeatInterval = min(cc.group.heartbeatInterval, .milliseconds(max(sessionTimeoutMs / 3, 1)))
            }
            let consumer = try KafkaConsumer(configuration: cc, logger: client.logger)
            if group != nil {
                try consumer.subscribe(topics: [topic])
            } else {
                let parts = meta.partitions.map { TopicPartition(topic: topic, partition: $0.id) }
                try consumer.assign(parts)
                if fromBeginning { try consumer.seekToBeginning(parts) } else { try consumer.seekToEnd(parts) }
            }
            // SIGINT/SIGTERM close the consumer (LeaveGroup, commit): its partitions move to the
            // other members at once instead of after a session timeout.
            let stopSources = [SIGINT, SIGTERM].map { sig -> any DispatchSourceSignal in
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { Task { await consumer.close() } }
                source.resume()
                return source
            }
            defer { stopSources.forEach { $0.cancel() } }
            let template = format.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t")
            var seen = 0
            if count == 0 { await consumer.close(); return }
            // Streaming without --count: print each record as it arrives, even into a pipe.
            let flushEach = count == nil
            for try await record in consumer.messages {
                print(render(template, record))
                if flushEach { fflush(nil) }
                seen += 1
                if let count, seen >= count { break }
            }
            await consumer.close()
        }
    }

    private func render(_ template: String, _ r: ConsumerRecord) -> String {
        var out = ""
        var chars = template.makeIterator()
        while let c = chars.next() {
            guard c == "%" else { out.append(c); continue }
            switch chars.next() {
            case "k": out += r.key.map { String(buffer: $0) } ?? ""
            case "v": out += r.value.map { String(buffer: $0) } ?? ""
            case "p": out += "\(r.partition)"
            case "o": out += "\(r.offset)"
            case "t": out += "\(r.timestamp)"
            case "T": out += r.topic
            case "h": out += r.headers.map { h in h.value.map { "\(h.key)=\(String(buffer: $0))" } ?? h.key }.joined(separator: ",")
            case "%": out += "%"
            case let other?: out += "%\(other)"
            case nil: out += "%"
            }
        }
        return out
    }
}
