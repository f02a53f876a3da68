@testable import Brook
import BrookBroker
import BrookProtocol
import Foundation
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Consumer against the embedded broker", .serialized)
struct ConsumerIntegrationTests {
    @Test func singleConsumerReadsEveryPartitionInOrder() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("orders", partitions: 4)
            let codecs: [CompressionCodec] = [.none, .gzip, .snappy, .none]
            var expected: [Int32: [String]] = [:]
            for p in Int32(0)..<4 {
                for batch in 0..<3 {
                    let values = (0..<50).map { "p\(p)-\(batch * 50 + $0)" }
                    try await broker.produce("orders", partition: p, values: values, keys: values, codec: codecs[Int(p)])
                    expected[p, default: []] += values
                }
            }
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "single"), logger: testLogger())
            try consumer.subscribe(topics: ["orders"])
            var seen: [Int32: [ConsumerRecord]] = [:]
            var total = 0
            for try await r in consumer.messages {
                seen[r.partition, default: []].append(r)
                total += 1
                if total == 600 { break }
            }
            await consumer.close()
            for p in Int32(0)..<4 {
                let records = seen[p] ?? []
                #expect(records.map { String(buffer: $0.value!) } == expected[p])
                #expect(records.map(\.offset) == Array(0..<150))
                #expect(records.allSatisfy { $0.key == $0.value })
            }
        }
    }

    @Test func batchesSequenceGroupsRecordsPerPartition() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("bulk", partitions: 2)
            try await broker.produce("bulk", partition: 0, values: (0..<10).map { "a\($0)" }, codec: .gzip)
            try await broker.produce("bulk", partition: 1, values: (0..<7).map { "b\($0)" })
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: nil), logger: testLogger())
            try consumer.assign([TP("bulk", 0), TP("bulk", 1)])
            var got: [Int32: [Int64]] = [:]
            var count = 0
            for try await batch in consumer.batches {
                #expect(batch.allSatisfy { $0.partition == batch.partition })
                got[batch.partition, default: []] += batch.map(\.offset)
                count += batch.count
                if count == 17 { break }
            }
            await consumer.close()
            #expect(got[0] == Array(0..<10))
            #expect(got[1] == Array(0..<7))
        }
    }

    @Test(arguments: ["range", "roundrobin"])
    func groupOfThreeSplitsSixPartitionsAndSurvivesALeave(assignor: String) async throws {
        try await withConsumerBroker { broker in
            let topic = "split-\(assignor)"
            try await broker.createTopic(topic, partitions: 6)
            for p in Int32(0)..<6 {
                try await broker.produce(topic, partition: p, values: (0..<20).map { "\(p)-\($0)" })
            }
            var config = testConsumerConfig(broker, group: "g-\(assignor)")
            config.group.assignors = [assignor == "range" ? .range : .roundRobin]
            let collected = Collected()
            var consumers: [KafkaConsumer] = []
            var tasks: [Task<Void, any Error>] = []
            for i in 0..<3 {
                let c = try KafkaConsumer(configuration: config, logger: testLogger())
                try c.subscribe(topics: [topic])
                consumers.append(c)
                tasks.append(consume(c, id: i, into: collected))
            }
            // Wait for a stable generation in which every member holds two partitions.
            try await eventually("three members with two partitions each") {
                let a = consumers.map { $0.assignment() }
                let gens = Set(consumers.map { $0.groupMembership().generationId })
                return a.allSatisfy { $0.count == 2 } && Set(a.flatMap { $0 }).count == 6 && gens.count == 1
            }
            let assignments = consumers.map { $0.assignment().map(\.partition).sorted() }
            if assignor == "range" {
                #expect(Set(assignments) == [[0, 1], [2, 3], [4, 5]])
            } else {
                #expect(Set(assignments) == [[0, 3], [1, 4], [2, 5]])
            }
            try await eventually("all 120 records") { collected.values.count == 120 }

            // One member leaves; the other two take over its partitions.
            let leaving = consumers.removeLast()
            await leaving.close()
            _ = try? await tasks.removeLast().value
            try await eventually("two members with three partitions each", timeout: .seconds(8)) {
                let a = consumers.map { $0.assignment() }
                return a.allSatisfy { $0.count == 3 } && Set(a.flatMap { $0 }).count == 6
            }
            for p in Int32(0)..<6 {
                try await broker.produce(topic, partition: p, values: (20..<30).map { "\(p)-\($0)" })
            }
            try await eventually("all 180 records, none lost") { collected.values.count == 180 }
            let expected = Set((0..<6).flatMap { p in (0..<30).map { "\(p)-\($0)" } })
            #expect(collected.values == expected)
            // Orderly rebalances commit what was processed before partitions move: no duplicates.
            #expect(collected.count == 180)
            for c in consumers { await c.close() }
            for t in tasks { _ = try? await t.value }
        }
    }

    @Test func cooperativeStickyGroupRebalancesIncrementally() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("coop", partitions: 6)
            for p in Int32(0)..<6 { try await broker.produce("coop", partition: p, values: (0..<10).map { "\(p)-\($0)" }) }
            var config = testConsumerConfig(broker, group: "coop")
            config.group.assignors = [.cooperativeSticky]
            let collected = Collected()
            let logA = RebalanceLog()
            let a = try KafkaConsumer(configuration: config, rebalanceListener: logA, logger: testLogger())
            try a.subscribe(topics: ["coop"])
            let ta = consume(a, id: 0, into: collected)
            try await eventually("a owns everything") { a.assignment().count == 6 }
            let b = try KafkaConsumer(configuration: config, logger: testLogger())
            try b.subscribe(topics: ["coop"])
            let tb = consume(b, id: 1, into: collected)
            try await eventually("a and b own three each") { a.assignment().count == 3 && b.assignment().count == 3 }
            // a never gave up the partitions it kept: only three were revoked, never all six.
            let revoked = logA.all.compactMap { e -> [TP]? in if case .revoked(let r) = e { return r } else { return nil } }
            #expect(revoked.flatMap { $0 }.count == 3)
            #expect(!logA.all.contains { if case .lost = $0 { return true } else { return false } })
            try await eventually("all 60 records") { collected.values.count == 60 }
            await a.close()
            await b.close()
            _ = try? await ta.value
            _ = try? await tb.value
        }
    }

    @Test func committedOffsetsResumeAfterRestart() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("resume", partitions: 1)
            try await broker.produce("resume", partition: 0, values: (0..<20).map { "v\($0)" })
            let config = testConsumerConfig(broker, group: "resume")
            let first = try KafkaConsumer(configuration: config, logger: testLogger())
            try first.subscribe(topics: ["resume"])
            var n = 0
            for try await r in first.messages {
                #expect(r.offset == Int64(n))
                n += 1
                if n == 8 { break }
            }
            // Leaving the loop closed the consumer, which committed the 8 records processed.
            await first.close()
            #expect(try await committedOffset(broker, group: "resume", TP("resume", 0)) == 8)

            var manual = config
            manual.offsets.enableAutoCommit = false
            let second = try KafkaConsumer(configuration: manual, logger: testLogger())
            try second.subscribe(topics: ["resume"])
            var offsets: [Int64] = []
            for try await r in second.messages {
                offsets.append(r.offset)
                if r.offset == 12 {
                    try await second.commit()
                    break
                }
            }
            #expect(offsets == Array(8...12))
            await second.close()
            #expect(try await committedOffset(broker, group: "resume", TP("resume", 0)) == 13)

            let third = try KafkaConsumer(configuration: manual, logger: testLogger())
            try third.subscribe(topics: ["resume"])
            var it = third.messages.makeAsyncIterator()
            #expect(try await it.next()?.offset == 13)
            try await third.commit(offsets: [TP("resume", 0): 5])
            await third.close()
            #expect(try await committedOffset(broker, group: "resume", TP("resume", 0)) == 5)
        }
    }

    @Test func staticMemberRestartKeepsItsPartitionsWithoutRebalance() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("static", partitions: 4)
            var config = testConsumerConfig(broker, group: "static")
            config.group.assignors = [.range]
            func make(_ instance: String, _ log: RebalanceLog) throws -> KafkaConsumer {
                var c = config
                c.group.groupInstanceId = instance
                let consumer = try KafkaConsumer(configuration: c, rebalanceListener: log, logger: testLogger())
                try consumer.subscribe(topics: ["static"])
                return consumer
            }
            let logA = RebalanceLog(), logB = RebalanceLog()
            let a = try make("instance-a", logA)
            let b = try make("instance-b", logB)
            let collected = Collected()
            let ta = consume(a, id: 0, into: collected)
            let tb = consume(b, id: 1, into: collected)
            try await eventually("both members assigned") {
                a.assignment().count == 2 && b.assignment().count == 2
                    && a.groupMembership().generationId == b.groupMembership().generationId
            }
            let aPartitions = a.assignment()
            let generation = b.groupMembership().generationId
            #expect(aPartitions == [TP("static", 0), TP("static", 1)])  // ordered by instance id
            let eventsB = logB.all.count

            await a.close()  // static: no LeaveGroup
            _ = try? await ta.value
            let logA2 = RebalanceLog()
            let a2 = try make("instance-a", logA2)
            let ta2 = consume(a2, id: 2, into: collected)
            try await eventually("restarted member has its partitions back") { a2.assignment() == aPartitions }
            #expect(a2.groupMembership().generationId == generation)
            try await Task.sleep(for: .milliseconds(600))
            #expect(b.groupMembership().generationId == generation)
            #expect(logB.all.count == eventsB)  // b saw no rebalance
            #expect(b.assignment().count == 2)
            for c in [a2, b] { await c.close() }
            _ = try? await ta2.value
            _ = try? await tb.value
        }
    }

    @Test func autoOffsetResetEarliestLatestAndError() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("reset", partitions: 1)
            try await broker.produce("reset", partition: 0, values: (0..<5).map { "old\($0)" })
            let tp = TP("reset", 0)

            let earliest = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "earliest"), logger: testLogger())
            try earliest.subscribe(topics: ["reset"])
            var it = earliest.messages.makeAsyncIterator()
            #expect(try await it.next().map { String(buffer: $0.value!) } == "old0")
            await earliest.close()

            var latestConfig = testConsumerConfig(broker, group: "latest")
            latestConfig.offsets.autoOffsetReset = .latest
            let latest = try KafkaConsumer(configuration: latestConfig, logger: testLogger())
            try latest.subscribe(topics: ["reset"])
            try await eventually("position resolved") { latest.position(tp) != nil }
            #expect(latest.position(tp) == 5)
            try await broker.produce("reset", partition: 0, values: ["new0", "new1"])
            var it2 = latest.messages.makeAsyncIterator()
            #expect(try await it2.next().map { String(buffer: $0.value!) } == "new0")
            #expect(try await it2.next().map { String(buffer: $0.value!) } == "new1")
            await latest.close()

            var noneConfig = testConsumerConfig(broker, group: "none")
            noneConfig.offsets.autoOffsetReset = .error
            let none = try KafkaConsumer(configuration: noneConfig, logger: testLogger())
            try none.subscribe(topics: ["reset"])
            var it3 = none.messages.makeAsyncIterator()
            await #expect(throws: KafkaConsumerError.noOffset(tp)) { _ = try await it3.next() }
            await none.close()
        }
    }

    @Test func outOfRangeSeekIsReset() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("oor", partitions: 1)
            try await broker.produce("oor", partition: 0, values: (0..<5).map { "v\($0)" })
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: nil), logger: testLogger())
            let tp = TP("oor", 0)
            try consumer.assign([tp])
            try await eventually("position") { consumer.position(tp) != nil }
            try consumer.seek(tp, to: 1000)
            var it = consumer.messages.makeAsyncIterator()
            #expect(try await it.next()?.offset == 0)  // earliest
            await consumer.close()
        }
    }

    @Test func pauseAndResume() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("pause", partitions: 2)
            let p0 = TP("pause", 0), p1 = TP("pause", 1)
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: nil), logger: testLogger())
            try consumer.assign([p0, p1])
            consumer.pause([p0])
            #expect(consumer.paused() == [p0])
            try await broker.produce("pause", partition: 0, values: ["a0", "a1"])
            try await broker.produce("pause", partition: 1, values: ["b0", "b1", "b2"])
            var it = consumer.messages.makeAsyncIterator()
            var got: [String] = []
            for _ in 0..<3 { got.append(String(buffer: try await it.next()!.value!)) }
            #expect(got == ["b0", "b1", "b2"])
            // Nothing from the paused partition, even after a while.
            try await Task.sleep(for: .milliseconds(300))
            try await broker.produce("pause", partition: 1, values: ["b3"])
            #expect(try await it.next().map { String(buffer: $0.value!) } == "b3")
            consumer.resume([p0])
            #expect(consumer.paused().isEmpty)
            #expect(try await it.next().map { String(buffer: $0.value!) } == "a0")
            #expect(try await it.next().map { String(buffer: $0.value!) } == "a1")
            await consumer.close()
        }
    }

    @Test func seekMovesThePosition() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("seek", partitions: 1)
            try await broker.produce("seek", partition: 0, values: (0..<10).map { "v\($0)" })
            let tp = TP("seek", 0)
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: nil), logger: testLogger())
            try consumer.assign([tp])
            var it = consumer.messages.makeAsyncIterator()
            for i in 0..<6 { #expect(try await it.next()?.offset == Int64(i)) }
            try consumer.seek(tp, to: 2)
            #expect(consumer.position(tp) == 2)
            #expect(try await it.next()?.offset == 2)
            #expect(try await it.next()?.offset == 3)
            try consumer.seekToEnd([tp])
            try await eventually("position at end") { consumer.position(tp) == 10 }
            try await broker.produce("seek", partition: 0, values: ["v10"])
            #expect(try await it.next()?.offset == 10)
            try consumer.seekToBeginning([tp])
            #expect(try await it.next()?.offset == 0)
            #expect(throws: KafkaConsumerError.notAssigned(TP("other", 0))) { try consumer.seek(TP("other", 0), to: 1) }
            await consumer.close()
        }
    }

    @Test func seekInAssignedListener() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("seek-listener", partitions: 1)
            try await broker.produce("seek-listener", partition: 0, values: (0..<10).map { "v\($0)" })
            let listener = RebalanceCallbacks(assigned: { tps, consumer in
                for tp in tps { try? consumer.seek(tp, to: 7) }
            })
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "seek-listener"), rebalanceListener: listener, logger: testLogger())
            try consumer.subscribe(topics: ["seek-listener"])
            var it = consumer.messages.makeAsyncIterator()
            #expect(try await it.next()?.offset == 7)
            await consumer.close()
        }
    }

    @Test func slowHandlerKeepsItsMembership() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("slow", partitions: 2)
            try await broker.produce("slow", partition: 0, values: ["s0", "s1"])
            try await broker.produce("slow", partition: 1, values: ["t0"])
            var config = testConsumerConfig(broker, group: "slow")
            config.group.sessionTimeout = .milliseconds(1500)
            config.group.heartbeatInterval = .milliseconds(300)
            config.group.rebalanceTimeout = .seconds(5)
            let log = RebalanceLog()
            let consumer = try KafkaConsumer(configuration: config, rebalanceListener: log, logger: testLogger())
            try consumer.subscribe(topics: ["slow"])
            var generation: Int32?
            var count = 0
            for try await _ in consumer.messages {
                if generation == nil { generation = consumer.groupMembership().generationId }
                // Far longer than the session timeout, between records.
                try await Task.sleep(for: .milliseconds(2500))
                count += 1
                if count == 3 { break }
            }
            #expect(consumer.groupMembership().generationId == generation)
            #expect(log.all == [.assigned([TP("slow", 0), TP("slow", 1)])])
            await consumer.close()
            #expect(try await committedOffset(broker, group: "slow", TP("slow", 0)) == 2)
        }
    }

    @Test func lagPerPartition() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("lag", partitions: 2)
            let old = currentTimeMillis() - 60_000
            try await broker.produce("lag", partition: 0, values: (0..<10).map { "v\($0)" }, timestamp: old)
            try await broker.produce("lag", partition: 1, values: (0..<3).map { "w\($0)" }, timestamp: old)
            let p0 = TP("lag", 0), p1 = TP("lag", 1)
            let gauges = TestGauges()
            let consumer = try KafkaConsumer(
                configuration: testConsumerConfig(broker, group: nil), rebalanceListener: nil, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                logger: testLogger(), metricsFactory: gauges)
            try consumer.assign([p0])
            var it = consumer.messages.makeAsyncIterator()
            for _ in 0..<4 { _ = try await it.next() }
            let lag = consumer.lag()[p0]!
            #expect(lag.position == 4)
            #expect(lag.highWatermark == 10)
            #expect(lag.records == 6)
            #expect(lag.lastConsumedTimestamp == old + 3)
            let timeLag = lag.timeLagMs(now: currentTimeMillis())!
            #expect(timeLag >= 59_000 && timeLag < 120_000)
            consumer.updateMetrics()
            let dims = [("topic", "lag"), ("partition", "0")]
            #expect(gauges.value("brook_consumer_lag", dims) == 6)
            #expect(gauges.value("brook_consumer_position", dims) == 4)
            #expect((59...120).contains(gauges.value("brook_consumer_time_lag_seconds", dims) ?? -1))
            #expect((gauges.value("brook_consumer_prefetch_bytes", []) ?? 0) > 0)
            for _ in 0..<6 { _ = try await it.next() }
            let caughtUp = consumer.lag()[p0]!
            #expect(caughtUp.records == 0)
            #expect(caughtUp.timeLagMs(now: currentTimeMillis()) == 0)
            #expect(consumer.lag()[p1] == nil)
            consumer.updateMetrics()
            #expect(gauges.value("brook_consumer_lag", dims) == 0)
            #expect(gauges.value("brook_consumer_time_lag_seconds", dims) == 0)
            await consumer.close()
        }
    }

    @Test func breakingOutOfTheLoopLeavesTheGroupAtOnce() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("leave", partitions: 2)
            try await broker.produce("leave", partition: 0, values: (0..<5).map { "a\($0)" })
            try await broker.produce("leave", partition: 1, values: (0..<5).map { "b\($0)" })
            var config = testConsumerConfig(broker, group: "leave")
            config.group.sessionTimeout = .seconds(60)
            config.group.assignors = [.range]
            let a = try KafkaConsumer(configuration: config, logger: testLogger())
            let b = try KafkaConsumer(configuration: config, logger: testLogger())
            try a.subscribe(topics: ["leave"])
            try b.subscribe(topics: ["leave"])
            let collected = Collected()
            let tb = consume(b, id: 1, into: collected)
            try await eventually("both assigned") { a.assignment().count == 1 && b.assignment().count == 1 }
            let started = ContinuousClock.now
            for try await _ in a.messages { break }
            // No explicit close: leaving the loop closed the consumer and sent LeaveGroup.
            try await eventually("b owns both partitions", timeout: .seconds(10)) { b.assignment().count == 2 }
            #expect(ContinuousClock.now - started < .seconds(10))
            await a.close()
            await b.close()
            _ = try? await tb.value
        }
    }

    @Test func prefetchIsBoundedInDecompressedBytes() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("big", partitions: 1)
            let value = String(repeating: "x", count: 1000)
            for _ in 0..<20 {
                // Compresses ~100×: counting compressed bytes would overshoot the bound badly.
                try await broker.produce("big", partition: 0, values: Array(repeating: value, count: 100), codec: .gzip)
            }
            let (peak, read) = try await prefetchPeak(broker, topic: "big", maxPrefetchBytes: 300_000, records: 2000) { $0.bufferedBytes }
            // Bound plus at most one batch (100 KB decompressed).
            #expect(peak > 0)
            #expect(peak <= 300_000 + 110_000)
            #expect(read == 2000)
        }
    }

    /// Small records: the decoded records' own footprint (~100 B each) counts against the bound,
    /// not only their bytes (counting bytes alone let 16 MiB of 100 B records take ~2× that).
    @Test func prefetchCountsEachDecodedRecordsFootprint() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("tiny", partitions: 1)
            for _ in 0..<6 {
                try await broker.produce("tiny", partition: 0, values: Array(repeating: "x", count: 1000))
            }
            let (peak, read) = try await prefetchPeak(broker, topic: "tiny", maxPrefetchBytes: 30_000, records: 6000) { s in
                s.chunks.reduce(0) { $0 + $1.records.count }
            }
            // Bound plus at most one batch (1,000 records) of decoded records: ~1,250 at most.
            // Counting only the ~8 bytes each record takes on the wire would buffer ~3,500.
            #expect(peak > 0)
            #expect(peak * MemoryLayout<ConsumerRecord>.stride <= 30_000 + 1000 * (MemoryLayout<ConsumerRecord>.stride + 16))
            #expect(read == 6000)
        }
    }

    /// Reads one record of partition 0 of `topic` with the given prefetch bound, samples
    /// `measure` of the consumer's state for a second while the prefetch fills, then reads on to
    /// `records`. Returns the peak sample and how many records were read.
    private func prefetchPeak(
        _ broker: ConsumerTestBroker, topic: String, maxPrefetchBytes: Int, records: Int, measure: (ConsumerState) -> Int
    ) async throws -> (peak: Int, read: Int) {
        var config = testConsumerConfig(broker, group: nil)
        config.fetch.maxPrefetchBytes = maxPrefetchBytes
        let consumer = try KafkaConsumer(configuration: config, logger: testLogger())
        try consumer.assign([TP(topic, 0)])
        var it = consumer.messages.makeAsyncIterator()
        _ = try await it.next()
        var peak = 0
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(50))
            peak = max(peak, consumer.state.withLock { measure($0) })
        }
        var n = 1
        while n < records, try await it.next() != nil { n += 1 }
        await consumer.close()
        return (peak, n)
    }

    @Test func memberRemovedByTheCoordinatorLosesItsPartitionsAndRejoins() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("lost", partitions: 2)
            let log = RebalanceLog()
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "lost"), rebalanceListener: log, logger: testLogger())
            try consumer.subscribe(topics: ["lost"])
            try await eventually("assigned") { consumer.assignment().count == 2 }
            let (memberId, generation) = consumer.groupMembership()
            // An administrator removes the member (as a session expiry would).
            let conn = try await broker.connection()
            var leave = LeaveGroupRequest()
            leave.groupId = "lost"
            var identity = LeaveGroupRequest.MemberIdentity()
            identity.memberId = memberId
            leave.members = [identity]
            let resp = try await conn.send(leave)
            conn.close()
            #expect(resp.errorCode == 0)
            try await eventually("rejoined in a new generation") {
                consumer.assignment().count == 2 && consumer.groupMembership().generationId > generation
            }
            let all = [TP("lost", 0), TP("lost", 1)]
            #expect(log.all == [.assigned(all), .lost(all), .assigned(all)])
            await consumer.close()
        }
    }

    @Test func staticMemberFencedByASecondInstance() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("fenced", partitions: 1)
            let config = testConsumerConfig(broker, group: "fenced", instance: "only-one")
            let first = try KafkaConsumer(configuration: config, logger: testLogger())
            try first.subscribe(topics: ["fenced"])
            try await eventually("first assigned") { first.assignment().count == 1 }
            let second = try KafkaConsumer(configuration: config, logger: testLogger())
            try second.subscribe(topics: ["fenced"])
            try await eventually("second assigned") { second.assignment().count == 1 }
            var it = first.messages.makeAsyncIterator()
            await #expect(throws: KafkaConsumerError.self) {
                while try await it.next() != nil {}
            }
            #expect(first.assignment().isEmpty)
            await first.close()
            await second.close()
        }
    }

    @Test func autoCommitRunsPeriodically() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("periodic", partitions: 1)
            try await broker.produce("periodic", partition: 0, values: (0..<5).map { "v\($0)" })
            var config = testConsumerConfig(broker, group: "periodic")
            config.offsets.autoCommitInterval = .milliseconds(200)
            let consumer = try KafkaConsumer(configuration: config, logger: testLogger())
            try consumer.subscribe(topics: ["periodic"])
            var it = consumer.messages.makeAsyncIterator()
            for _ in 0..<3 { _ = try await it.next() }
            // The third record is still being processed: only the first two count.
            try await eventually("auto-commit of the processed records") {
                try await committedOffset(broker, group: "periodic", TP("periodic", 0)) == 2
            }
            _ = try await it.next()
            try await eventually("auto-commit advances") {
                try await committedOffset(broker, group: "periodic", TP("periodic", 0)) == 3
            }
            await consumer.close()
            #expect(try await committedOffset(broker, group: "periodic", TP("periodic", 0)) == 4)
        }
    }

    @Test func gracefulShutdownOfAServiceGroupCommitsAndEndsTheSequence() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("graceful", partitions: 1)
            try await broker.produce("graceful", partition: 0, values: ["a", "b", "c"])
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "graceful"), logger: testLogger())
            try consumer.subscribe(topics: ["graceful"])
            let group = ServiceGroup(services: [consumer], gracefulShutdownSignals: [], logger: testLogger())
            let running = Task { try await group.run() }
            let seen = Mutex<[String]>([])
            let reader = Task {
                for try await r in consumer.messages {
                    seen.withLock { $0.append(String(buffer: r.value!)) }
                }
            }
            try await eventually("three records") { seen.withLock { $0.count } == 3 }
            await group.triggerGracefulShutdown()
            try await running.value
            try await reader.value  // the sequence ended
            #expect(try await committedOffset(broker, group: "graceful", TP("graceful", 0)) == 3)
        }
    }

    @Test func cancellingTheReaderEndsItsLoopWhileRecordsKeepComing() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("cancel-reader", partitions: 1)
            try await broker.produce("cancel-reader", partition: 0, values: (0..<2000).map { "r\($0)" })
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "cancel-reader"), logger: testLogger())
            try consumer.subscribe(topics: ["cancel-reader"])
            // The iterator takes prefetched records without an async call and checks for
            // cancellation on every 64th: the loop must still end soon after the cancel.
            let reader = Task { () -> Int in
                var seen = 0
                for try await _ in consumer.messages {
                    seen += 1
                    if seen == 10 { withUnsafeCurrentTask { $0?.cancel() } }
                }
                return seen
            }
            let seen = try await reader.value
            #expect(seen >= 10)
            #expect(seen <= 10 + 64)
            await consumer.close()
        }
    }

    @Test func consumerRunsAsAService() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("service", partitions: 1)
            try await broker.produce("service", partition: 0, values: ["x", "y"])
            let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: "service"), logger: testLogger())
            try consumer.subscribe(topics: ["service"])
            let run = Task { try await consumer.run() }
            var it = consumer.messages.makeAsyncIterator()
            _ = try await it.next()
            _ = try await it.next()
            run.cancel()
            try await run.value
            #expect(try await committedOffset(broker, group: "service", TP("service", 0)) == 2)
            #expect(try await it.next() == nil)
        }
    }
}

/// The group's committed offset, read with a fresh connection (nil when none).
func committedOffset(_ broker: ConsumerTestBroker, group: String, _ tp: TP) async throws -> Int64? {
    let conn = try await broker.connection()
    defer { conn.close() }
    var req = OffsetFetchRequest()
    req.groupId = group
    var t = OffsetFetchRequest.OffsetFetchRequestTopic()
    t.name = tp.topic
    t.partitionIndexes = [tp.partition]
    req.topics = [t]
    let resp = try await conn.send(req, version: 7)
    let offset = resp.topics.first?.partitions.first?.committedOffset ?? -1
    return offset >= 0 ? offset : nil
}

/// Consumer throughput against the embedded broker (BROOK_CONSUMER_BENCH=1 to run).
@Suite("Consumer throughput", .enabled(if: ProcessInfo.processInfo.environment["BROOK_CONSUMER_BENCH"] != nil))
struct ConsumerThroughputBench {
    @Test func messagesPerSecond() async throws {
        try await withConsumerBroker { broker in
            try await broker.createTopic("bench", partitions: 4)
            let value = String(repeating: "v", count: 100)
            let perBatch = 5000, batches = 50
            for b in 0..<batches {
                try await broker.produce("bench", partition: Int32(b % 4), values: Array(repeating: value, count: perBatch), codec: b % 2 == 0 ? .none : .gzip)
            }
            let total = perBatch * batches
            for mode in ["messages", "batches"] {
                let consumer = try KafkaConsumer(configuration: testConsumerConfig(broker, group: nil), logger: testLogger())
                try consumer.assign((0..<4).map { TP("bench", $0) })
                let start = ContinuousClock.now
                var n = 0
                var bytes = 0
                if mode == "messages" {
                    for try await r in consumer.messages {
                        n += 1
                        bytes += r.value?.readableBytes ?? 0
                        if n == total { break }
                    }
                } else {
                    for try await batch in consumer.batches {
                        n += batch.count
                        for r in batch { bytes += r.value?.readableBytes ?? 0 }
                        if n == total { break }
                    }
                }
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                print("consumer \(mode): \(n) records, \(Int(Double(n) / seconds)) records/s, \(Int(Double(bytes) / seconds / 1e6)) MB/s")
                await consumer.close()
            }
        }
    }
}
