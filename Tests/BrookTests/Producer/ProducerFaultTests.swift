@testable import Brook
import BrookProtocol
import Foundation
import NIOCore
import Testing

/// The idempotent producer under injected faults (a proxy between it and the broker).
@Suite("Producer under faults", .serialized, .timeLimit(.minutes(5)))
struct ProducerFaultTests {
    struct Outcome {
        var reports: [DeliveryReport]
        var read: [Int32: [ReadBackRecord]]
        var stats: ProducerStats
        var faults: [FaultProxy.ProduceFault]
    }

    /// Streams `n` keyed records through a proxy applying `policy`; returns what was reported and
    /// what the topic holds.
    func run(n: Int, partitions: Int32 = 3, configure: (inout ProducerConfiguration) -> Void = { _ in },
             policy: @escaping @Sendable (Int) -> FaultProxy.ProduceFault) async throws -> Outcome {
        let broker = try await ProducerTestBroker.start()
        defer { broker.removeFiles() }
        try await broker.createTopic("faults", partitions: partitions)
        let proxy = FaultProxy(target: broker.address, policy: policy)
        try await proxy.start()
        var config = ProducerConfiguration(bootstrapServers: [proxy.address])
        config.client.reconnectBackoffMax = .milliseconds(100)
        config.batchSize = 2048
        config.linger = .milliseconds(2)
        config.retryBackoff = .milliseconds(20)
        configure(&config)
        let producer = try KafkaProducer(configuration: config, logger: producerTestLogger)
        let reports = DeliveryReportCollector(producer.deliveryReports)
        for i in 0..<n {
            try await producer.sendAsync(ProducerRecord(topic: "faults", key: "key-\(i % 37)", value: "\(i)"))
        }
        await producer.flush()
        let got = await reports.wait(for: n)
        let stats = producer.engine.stats
        await producer.close()
        await proxy.close()
        let read = try await broker.consumeAll(topic: "faults", partitions: partitions)
        return Outcome(reports: got, read: read, stats: stats, faults: proxy.faults)
    }

    /// Every record read back once, in order per partition, at the offset reported for it.
    func checkExactlyOnce(_ o: Outcome, n: Int, partitions: Int32 = 3, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(o.reports.count == n, sourceLocation: sourceLocation)
        var reported: [Int: RecordMetadata] = [:]
        var ids: [UInt64: Int] = [:]
        for (k, r) in o.reports.sorted(by: { $0.id < $1.id }).enumerated() { ids[r.id] = k }
        for r in o.reports {
            switch r.result {
            case .success(let md): reported[ids[r.id]!] = md
            case .failure(let e): Issue.record("record \(r.id) failed: \(e)", sourceLocation: sourceLocation)
            }
        }
        var seen = Set<Int>()
        for p in 0..<partitions {
            var last = -1
            for rec in o.read[p] ?? [] {
                let i = Int(rec.value!)!
                #expect(i > last, "partition \(p): \(i) after \(last)", sourceLocation: sourceLocation)
                last = i
                #expect(seen.insert(i).inserted, "duplicate \(i)", sourceLocation: sourceLocation)
                if let md = reported[i] {
                    #expect(md.partition == p && md.offset == rec.offset, "record \(i) reported at \(md), read at \(p)@\(rec.offset)", sourceLocation: sourceLocation)
                }
            }
        }
        #expect(seen.count == n, "lost \(n - seen.count)", sourceLocation: sourceLocation)
    }

    @Test("lost acknowledgements: retries of written batches are recognised as duplicates")
    func lostAcks() async throws {
        let n = 8000
        let o = try await run(n: n) { $0 % 9 == 4 ? .dropResponse : .pass }
        #expect(!o.faults.isEmpty)
        #expect(o.stats.retries > 0)
        #expect(o.stats.identities == 1, "no producer id reset needed")
        checkExactlyOnce(o, n: n)
    }

    @Test("requests lost before the broker: resent in order with the same sequence numbers")
    func lostRequests() async throws {
        let n = 8000
        let o = try await run(n: n) { $0 % 11 == 5 ? .dropRequest : .pass }
        #expect(!o.faults.isEmpty)
        #expect(o.stats.retries > 0)
        #expect(o.stats.identities == 1)
        checkExactlyOnce(o, n: n)
    }

    @Test("retriable errors (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) after the write: retried, not duplicated")
    func retriableErrors() async throws {
        let n = 6000
        let o = try await run(n: n) { i in
            switch i % 10 {
            case 3: return .rewrite(.notLeaderOrFollower)
            case 7: return .rewrite(.requestTimedOut)
            default: return .pass
            }
        }
        #expect(o.stats.retries > 0)
        #expect(o.stats.identities == 1)
        checkExactlyOnce(o, n: n)
    }

    @Test("OUT_OF_ORDER_SEQUENCE on the oldest batch fails it and continues under a new producer id")
    func outOfOrderOnOldest() async throws {
        let n = 3000
        // One request answered OUT_OF_ORDER_SEQUENCE_NUMBER although the broker wrote it.
        let o = try await run(n: n, configure: { $0.maxInFlightRequestsPerConnection = 1 }) { $0 == 6 ? .rewrite(.outOfOrderSequenceNumber) : .pass }
        #expect(o.faults == [.rewrite(.outOfOrderSequenceNumber)])
        #expect(o.reports.count == n)
        let failed = o.reports.filter { if case .failure = $0.result { return true } else { return false } }
        #expect(!failed.isEmpty, "Kafka fails the batch that is out of order")
        for f in failed {
            if case .failure(let e) = f.result { #expect(e.errorCode == .outOfOrderSequenceNumber) }
        }
        #expect(o.stats.identities == 2, "a new producer id after the sequence error")
        // Everything else delivered exactly once, in order; the failed records are in the log
        // too (the proxy lied), once each.
        let all = o.read.values.flatMap { $0 }.map { Int($0.value!)! }
        #expect(all.count == n)
        #expect(Set(all).count == n)
        let pids = Set(o.read.values.flatMap { $0 }.map(\.producerId))
        #expect(pids.count == 2)
        for p in 0..<Int32(3) {
            let idx = (o.read[p] ?? []).map { Int($0.value!)! }
            #expect(idx == idx.sorted())
        }
    }
}
