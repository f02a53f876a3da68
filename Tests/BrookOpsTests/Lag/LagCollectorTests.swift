import Brook
import BrookBroker
@testable import BrookOps
import Foundation
import Logging
import Testing

/// The collector's Kafka API reads against the embedded broker, with a fixed clock: the time
/// lag is exact because the records carry known timestamps.
@Suite("Lag collection")
struct LagCollectorTests {
    @Test func readsOffsetsOwnersAndTheFirstUnconsumedRecordsTimestamp() async throws {
        var logger = Logger(label: "test.lag")
        logger.logLevel = .error
        let broker = try await EmbeddedBroker.start(logger: logger) { $0.flushPolicy = .os }
        let config = ClientConfiguration(bootstrapServers: [BrokerAddress(host: "127.0.0.1", port: broker.port)])
        let admin = KafkaAdmin(config: config, logger: logger)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: config.bootstrapServers), logger: logger)
        do {
            try await admin.createTopics([.init(name: "lagged", partitions: 2)])
            let base: Int64 = 1_700_000_000_000
            for p in Int32(0)...1 {
                for i in 0..<10 {
                    _ = try await producer.send(ProducerRecord(topic: "lagged", partition: p, key: nil, value: Array("r\(i)".utf8),
                                                               timestamp: base + Int64(i) * 1000))
                }
            }
            try await admin.alterGroupOffsets("billing", offsets: ["lagged": [0: 4, 1: 10]])

            let collector = LagCollector(admin: admin, groups: ["billing"], now: { base + 60_000 })
            let obs = try await collector.observe()
            #expect(obs.timeMs == base + 60_000)
            let parts = try #require(obs.groups.first).partitions
            #expect(parts.map(\.partition) == [0, 1])
            #expect(parts.map(\.committedOffset) == [4, 10])
            #expect(parts.map(\.logEndOffset) == [10, 10])
            #expect(parts.map(\.firstUnconsumedTimestampMs) == [base + 4000, nil])
            #expect(parts.allSatisfy { $0.owner == nil })

            var evaluator = LagEvaluator()
            let report = evaluator.observe(obs)
            #expect(report.groups[0].partitions.map(\.lagSeconds) == [56, 0])

            // Records below the log start are gone: the oldest one waiting is the first kept.
            _ = try await admin.deleteRecords(topic: "lagged", before: [0: 6])
            let after = try await collector.observe()
            let p0 = try #require(after.groups.first?.partitions.first)
            #expect(p0.logStartOffset == 6 && p0.firstUnconsumedTimestampMs == base + 6000)

            // Every listed group when none is named.
            let all = try await LagCollector(admin: admin).observe()
            #expect(all.groups.map(\.group).contains("billing"))

            // Offsets of a deleted topic leave its partitions out instead of failing the read.
            try await admin.deleteTopics(["lagged"])
            let gone = try await collector.observe()
            #expect(gone.groups.first?.partitions.isEmpty == true)
        } catch {
            await producer.close()
            await admin.close()
            await broker.stop()
            throw error
        }
        await producer.close()
        await admin.close()
        await broker.stop()
    }
}
