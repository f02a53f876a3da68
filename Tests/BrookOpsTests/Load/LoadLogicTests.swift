import Brook
@testable import BrookOps
import Foundation
import Testing

@Suite("Load test logic")
struct LoadLogicTests {
    @Test func zipfFollowsOneOverRank() {
        var seq = KeySequence(.zipf(keys: 100, exponent: 1.0), seed: 3)
        var counts = [Int](repeating: 0, count: 100)
        let n = 200_000
        for _ in 0..<n { counts[seq.next()!] += 1 }
        // P(k) = (1/(k+1)) / H_100, H_100 ≈ 5.187: key 0 ≈ 19.3%, key 1 half of it, key 9 a tenth.
        let h = (1...100).reduce(0.0) { $0 + 1.0 / Double($1) }
        #expect(abs(Double(counts[0]) / Double(n) - 1 / h) < 0.01)
        #expect(abs(Double(counts[0]) / Double(counts[1]) - 2) < 0.15)
        #expect(abs(Double(counts[0]) / Double(counts[9]) - 10) < 1.5)
        // Monotone in rank over the head.
        #expect(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[5])
    }

    @Test func otherDistributions() throws {
        var rr = KeySequence(.roundRobin(keys: 3))
        #expect((0..<7).map { _ in rr.next()! } == [0, 1, 2, 0, 1, 2, 0])
        var none = KeySequence(.none)
        #expect(none.next() == nil)
        var a = KeySequence(.random(keys: 10), seed: 9)
        var b = KeySequence(.random(keys: 10), seed: 9)
        let xs = (0..<1000).map { _ in a.next()! }
        #expect(xs == (0..<1000).map { _ in b.next()! })
        #expect(Set(xs) == Set(0..<10))
        #expect(try KeyDistribution.parse("zipf", keys: 5) == .zipf(keys: 5, exponent: 1))
        #expect(throws: LoadTestError.self) { try KeyDistribution.parse("gauss", keys: 5) }
        #expect(throws: LoadTestError.self) { try KeyDistribution.parse("random", keys: 0) }
    }

    @Test func throttleFollowsTheSchedule() {
        let t = ThroughputThrottle(recordsPerSecond: 1000)
        // Record 100 is due at 100 ms: at 50 ms, wait 50 ms; at 99 ms (1 ms early) send now.
        #expect(t.delay(beforeRecord: 100, elapsed: .milliseconds(50)) == .milliseconds(50))
        #expect(t.delay(beforeRecord: 100, elapsed: .milliseconds(99)) == nil)
        #expect(t.delay(beforeRecord: 100, elapsed: .milliseconds(200)) == nil)
        #expect(t.delay(beforeRecord: 0, elapsed: .zero) == nil)
        #expect(ThroughputThrottle(throughputFlag: -1).delay(beforeRecord: 1_000_000, elapsed: .zero) == nil)
        // Over a simulated run the throttle keeps the rate: sleeping as told, 5000 records take 5 s.
        var elapsed = Duration.zero
        for i in 0..<5000 { if let d = t.delay(beforeRecord: i, elapsed: elapsed) { elapsed += d } }
        #expect(elapsed >= .milliseconds(4990) && elapsed <= .seconds(5))
    }

    @Test func producerPerfTestLines() {
        #expect(ProducerPerfStats.progressLine(records: 50_000, bytes: 5_000_000, elapsedNanos: 5_000_000_000, avgLatencyMs: 1.234, maxLatencyMs: 20)
            == "50000 records sent, 10000.0 records/sec (0.95 MB/sec), 1.2 ms avg latency, 20.0 ms max latency.")
        var stats = ProducerPerfStats(startNanos: 0)
        for i in 1...1000 { stats.record(latencyNanos: Int64(i) * 1_000_000, bytes: 100) }
        #expect(stats.windowLine(nowNanos: 4_999_999_999) == nil)
        #expect(stats.windowLine(nowNanos: 5_000_000_000) == "1000 records sent, 200.0 records/sec (0.02 MB/sec), 500.5 ms avg latency, 1000.0 ms max latency.")
        let total = stats.totalLine(nowNanos: 10_000_000_000)
        #expect(total.hasPrefix("1000 records sent, 100.000000 records/sec (0.01 MB/sec), 500.50 ms avg latency, 1000.00 ms max latency, "))
        let l = stats.latency
        #expect(abs(l.p50 - 500) < 2 && abs(l.p95 - 950) < 2 && abs(l.p99 - 990) < 2 && abs(l.p999 - 999) < 2)
        let pattern = #/^\d+ records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, [\d.]+ ms 50th, [\d.]+ ms 95th, [\d.]+ ms 99th, [\d.]+ ms 99\.9th\.$/#
        #expect(total.wholeMatch(of: pattern) != nil)
    }

    @Test func consumerPerfTestCSV() {
        #expect(ConsumerPerfReport.header(detailed: false)
            == "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
        #expect(ConsumerPerfReport.header(detailed: true).hasPrefix("time, threadId, data.consumed.in.MB"))
        // 2 MiB and 1000 records in 2 s, of which 1 s joining the group.
        let s = ConsumerPerfReport.Sample(startMillis: 1_700_000_000_000, endMillis: 1_700_000_002_000, bytes: 2 * 1_048_576,
                                          records: 1000, rebalanceMillis: 1000)
        #expect(ConsumerPerfReport.row(s)
            == "2023-11-14 22:13:20:000, 2023-11-14 22:13:22:000, 2.0000, 1.0000, 1000, 500.0000, 1000, 1000, 2.0000, 1000.0000")
    }

    @Test func javaPropertiesMapOntoTheProducer() throws {
        let props = ClientProperties.parseFile("""
            # comment
            acks=1
            linger.ms: 20
            batch.size 65536
            compression.type=lz4
            key.serializer=org.apache.kafka.common.serialization.ByteArraySerializer
            """)
        var pc = ProducerConfiguration(bootstrapServers: [])
        try ClientProperties.apply(producer: props + [("max.in.flight.requests.per.connection", "1"), ("buffer.memory", "1048576")], to: &pc)
        #expect(pc.acks == .leader && pc.linger == .milliseconds(20) && pc.batchSize == 65536 && pc.compression == .lz4)
        #expect(pc.maxInFlightRequestsPerConnection == 1 && pc.bufferMemory == 1_048_576 && !pc.enableIdempotence)
        #expect { try ClientProperties.apply(producer: [("frobnicate.ms", "1")], to: &pc) } throws: { "\($0)".contains("unknown producer property frobnicate.ms") }
        #expect(throws: LoadTestError.self) { try ClientProperties.apply(producer: [("linger.ms", "soon")], to: &pc) }
        var cc = ConsumerConfiguration(client: ClientConfiguration(bootstrapServers: []))
        try ClientProperties.apply(consumer: [("max.partition.fetch.bytes", "65536"), ("fetch.max.wait.ms", "50")], to: &cc)
        #expect(cc.fetch.maxPartitionBytes == 65536 && cc.fetch.maxWait == .milliseconds(50))
        #expect(throws: LoadTestError.self) { try ClientProperties.apply(consumer: [("nope", "1")], to: &cc) }
        #expect(try ClientProperties.parsePairs(["a=b=c"]).first! == ("a", "b=c"))
    }

    @Test func benchmarkResultUsesOpenMessagingNames() throws {
        var acc = E2EAccumulator()
        for i in 1...100 { acc.published(latencyMicros: Int64(i) * 100) }
        for i in 1...90 { acc.consumed(latencyMicros: Int64(i) * 1000) }
        let interval = acc.closeInterval(seconds: 1)
        #expect(interval.publishRate == 100 && interval.consumeRate == 90 && interval.backlog == 10)
        #expect(interval.endToEndLatency.p50 <= interval.endToEndLatency.p99 && interval.endToEndLatency.p99 <= interval.endToEndLatency.max)
        var r = BenchmarkResult(workload: "w", messageSize: 100, partitions: 4, producersPerTopic: 1, consumersPerTopic: 1)
        r.append(interval)
        r.setAggregated(publish: LatencyPercentiles(acc.aggregatedPublish), endToEnd: LatencyPercentiles(acc.aggregatedE2E))
        let object = try JSONSerialization.jsonObject(with: r.json()) as! [String: Any]
        for key in ["publishRate", "consumeRate", "backlog", "publishLatency50pct", "publishLatency99pct", "publishLatency999pct",
                    "publishLatencyMax", "endToEndLatency50pct", "endToEndLatency99pct", "endToEndLatencyMax",
                    "aggregatedPublishLatency99pct", "aggregatedEndToEndLatency50pct", "aggregatedEndToEndLatency9999pct",
                    "aggregatedEndToEndLatencyMax", "messageSize", "partitions", "producersPerTopic", "consumersPerTopic"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect((object["backlog"] as? [Int]) == [10])
        #expect(interval.line.hasPrefix("Pub rate 100.0 msg/s | Cons rate 90.0 msg/s | Backlog 10 |"))
    }
}
