@testable import BrookBroker
import BrookProtocol
import Foundation
import NIOCore
import Testing

@Suite struct BrokerHandlerTests {
    @Test func apiVersionsAdvertisesEveryApiFromVersionZero() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        let r = try #require(try await h.send(ApiVersionsRequest(), version: 3))
        #expect(r.errorCode == 0)
        #expect(r.apiKeys.count == APIKey.allCases.count)
        #expect(r.apiKeys.allSatisfy { $0.minVersion == 0 })
        #expect(r.apiKeys.first { $0.apiKey == 0 }?.maxVersion == 9)
        await h.close()
    }

    @Test func unsupportedApiVersionsVersionAnswersV0WithRanges() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        // ApiVersions v99: header v1 fields, then nothing.
        var frame = ByteBuffer()
        RequestHeader(apiKey: 18, apiVersion: 99, correlationId: 1, clientId: "x").encode(into: &frame, headerVersion: 1)
        guard case .respond(var resp?) = await h.broker.handle(frame: frame, connection: h.connection) else {
            Issue.record("expected a response")
            return
        }
        _ = resp.readInteger(as: Int32.self)
        _ = try ResponseHeader.decode(from: &resp, headerVersion: 0)
        let body = try ApiVersionsResponse(from: &resp, version: 0)
        #expect(body.errorCode == ErrorCode.unsupportedVersion.rawValue)
        #expect(!body.apiKeys.isEmpty)
        await h.close()
    }

    @Test func malformedAndUnknownRequestsCloseTheConnection() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        if case .close = await h.raw([0, 1]) {} else { Issue.record("truncated header should close") }
        if case .close = await h.raw([0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]) {} else { Issue.record("unknown key should close") }
        // Metadata v1 with a topic array claiming a billion entries.
        if case .close = await h.raw([0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x3b, 0x9a, 0xca, 0x00]) {} else {
            Issue.record("oversized array should close")
        }
        // The broker still serves afterwards.
        #expect(try await h.send(ApiVersionsRequest(), version: 0)?.errorCode == 0)
        await h.close()
    }

    @Test func produceFetchAndListOffsets() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        let created = try #require(try await h.send(createTopicsRequest("orders", partitions: 3), version: 7))
        #expect(created.topics.first?.errorCode == 0)
        #expect(created.topics.first?.topicId != .zero)
        let p1 = try #require(try await h.send(produceRequest(topic: "orders", records: try makeBatch(["a", "b", "c"])), version: 9))
        #expect(p1.responses[0].partitionResponses[0].errorCode == 0)
        #expect(p1.responses[0].partitionResponses[0].baseOffset == 0)
        let p2 = try #require(try await h.send(produceRequest(topic: "orders", records: try makeBatch(["d"], codec: .zstd)), version: 7))
        #expect(p2.responses[0].partitionResponses[0].baseOffset == 3)
        let f = try #require(try await h.send(fetchRequest(topic: "orders", offset: 0), version: 11))
        #expect(f.responses[0].partitions[0].highWatermark == 4)
        #expect(try values(in: f) == ["a", "b", "c", "d"])
        let f2 = try #require(try await h.send(fetchRequest(topic: "orders", offset: 3), version: 4))
        #expect(try values(in: f2) == ["d"])
        var lo = ListOffsetsRequest()
        var t = ListOffsetsRequest.ListOffsetsTopic()
        t.name = "orders"
        var latest = ListOffsetsRequest.ListOffsetsPartition()
        latest.partitionIndex = 0
        latest.timestamp = -1
        var byTime = latest
        byTime.timestamp = 1_700_000_000_001
        t.partitions = [latest]
        lo.replicaId = -1
        lo.topics = [t]
        #expect(try await h.send(lo, version: 7)?.topics[0].partitions[0].offset == 4)
        lo.topics[0].partitions = [byTime]
        #expect(try await h.send(lo, version: 7)?.topics[0].partitions[0].offset == 1)
        let out = try #require(try await h.send(fetchRequest(topic: "orders", offset: 99), version: 11))
        #expect(out.responses[0].partitions[0].errorCode == ErrorCode.offsetOutOfRange.rawValue)
        await h.close()
    }

    @Test func longPollFetchWakesOnProduce() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        _ = try await h.send(createTopicsRequest("events"), version: 7)
        async let fetched = h.send(fetchRequest(topic: "events", offset: 0, maxWaitMs: 5000), version: 11)
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        _ = try await h.send(produceRequest(topic: "events", records: try makeBatch(["x"])), version: 9)
        let f = try #require(try await fetched)
        #expect(try values(in: f) == ["x"])
        #expect(ContinuousClock.now - started < .seconds(3))
        await h.close()
    }

    @Test func idempotentProducerDropsDuplicatesAndRejectsGaps() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        let pid = try #require(try await h.send(InitProducerIdRequest(), version: 4)).producerId
        #expect(pid >= 0)
        _ = try await h.send(createTopicsRequest("idem"), version: 7)
        let first = try makeBatch(["a", "b"], producerId: pid, epoch: 0, baseSequence: 0)
        let r1 = try #require(try await h.send(produceRequest(topic: "idem", records: first), version: 9))
        #expect(r1.responses[0].partitionResponses[0].baseOffset == 0)
        // The same batch again (a retry): acknowledged with its original offset, not appended.
        let r2 = try #require(try await h.send(produceRequest(topic: "idem", records: first), version: 9))
        #expect(r2.responses[0].partitionResponses[0].errorCode == 0)
        #expect(r2.responses[0].partitionResponses[0].baseOffset == 0)
        // A gap in sequence numbers.
        let gap = try makeBatch(["z"], producerId: pid, epoch: 0, baseSequence: 5)
        let r3 = try #require(try await h.send(produceRequest(topic: "idem", records: gap), version: 9))
        #expect(r3.responses[0].partitionResponses[0].errorCode == ErrorCode.outOfOrderSequenceNumber.rawValue)
        let next = try makeBatch(["c"], producerId: pid, epoch: 0, baseSequence: 2)
        #expect(try await h.send(produceRequest(topic: "idem", records: next), version: 9)?.responses[0].partitionResponses[0].baseOffset == 2)
        // State survives a restart: the retry of the last batch is still recognised.
        await h.close()
        let again = try await BrokerHarness(directory: h.directory)
        let r4 = try #require(try await again.send(produceRequest(topic: "idem", records: next), version: 9))
        #expect(r4.responses[0].partitionResponses[0].baseOffset == 2)
        let f = try #require(try await again.send(fetchRequest(topic: "idem", offset: 0), version: 11))
        #expect(try values(in: f) == ["a", "b", "c"])
        await again.close()
    }

    @Test func corruptBatchIsRefusedAndNothingIsAppended() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        _ = try await h.send(createTopicsRequest("c"), version: 7)
        var batch = try makeBatch(["hello"])
        let last = batch.writerIndex - 1
        batch.setInteger(batch.getInteger(at: last, as: UInt8.self)! ^ 0xff, at: last)
        let r = try #require(try await h.send(produceRequest(topic: "c", records: batch), version: 9))
        #expect(r.responses[0].partitionResponses[0].errorCode == ErrorCode.corruptMessage.rawValue)
        let f = try #require(try await h.send(fetchRequest(topic: "c", offset: 0), version: 11))
        #expect(f.responses[0].partitions[0].highWatermark == 0)
        await h.close()
    }

    @Test func topicAdminAndConfigs() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        let v = try #require(try await h.send(createTopicsRequest("t1", partitions: 2, validateOnly: true), version: 5))
        #expect(v.topics[0].errorCode == 0)
        #expect(try await h.send(MetadataRequest(), version: 12)?.topics.contains { $0.name == "t1" } == false)
        _ = try await h.send(createTopicsRequest("t1", partitions: 2, configs: ["retention.ms": "1000"]), version: 5)
        let dup = try #require(try await h.send(createTopicsRequest("t1"), version: 5))
        #expect(dup.topics[0].errorCode == ErrorCode.topicAlreadyExists.rawValue)
        let bad = try #require(try await h.send(createTopicsRequest("t2", configs: ["retention.ms": "soon"]), version: 5))
        #expect(bad.topics[0].errorCode == ErrorCode.invalidConfig.rawValue)
        let badName = try #require(try await h.send(createTopicsRequest("bad name!"), version: 5))
        #expect(badName.topics[0].errorCode == ErrorCode.invalidTopicException.rawValue)

        var cp = CreatePartitionsRequest()
        var cpt = CreatePartitionsRequest.CreatePartitionsTopic()
        cpt.name = "t1"
        cpt.count = 4
        cp.topics = [cpt]
        #expect(try await h.send(cp, version: 3)?.results[0].errorCode == 0)
        var md = MetadataRequest()
        md.allowAutoTopicCreation = false
        var mt = MetadataRequest.MetadataRequestTopic()
        mt.name = "t1"
        md.topics = [mt]
        #expect(try await h.send(md, version: 9)?.topics[0].partitions.count == 4)

        var dc = DescribeConfigsRequest()
        var res = DescribeConfigsRequest.DescribeConfigsResource()
        res.resourceType = 2
        res.resourceName = "t1"
        res.configurationKeys = nil
        dc.resources = [res]
        let described = try #require(try await h.send(dc, version: 4))
        let retention = described.results[0].configs.first { $0.name == "retention.ms" }
        #expect(retention?.value == "1000")
        #expect(retention?.configSource == 1)

        var inc = IncrementalAlterConfigsRequest()
        var ir = IncrementalAlterConfigsRequest.AlterConfigsResource()
        ir.resourceType = 2
        ir.resourceName = "t1"
        var set = IncrementalAlterConfigsRequest.AlterableConfig()
        set.name = "cleanup.policy"
        set.configOperation = 0
        set.value = "compact"
        var del = IncrementalAlterConfigsRequest.AlterableConfig()
        del.name = "retention.ms"
        del.configOperation = 1
        ir.configs = [set, del]
        inc.resources = [ir]
        #expect(try await h.send(inc, version: 1)?.responses[0].errorCode == 0)
        let after = try #require(try await h.send(dc, version: 4))
        #expect(after.results[0].configs.first { $0.name == "cleanup.policy" }?.value == "compact")
        #expect(after.results[0].configs.first { $0.name == "retention.ms" }?.configSource == 5)

        var dt = DeleteTopicsRequest()
        dt.topicNames = ["t1"]
        #expect(try await h.send(dt, version: 5)?.responses[0].errorCode == 0)
        #expect(try await h.send(md, version: 9)?.topics[0].errorCode != 0)
        await h.close()
    }

    @Test func deleteRecordsAdvancesLogStart() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        _ = try await h.send(createTopicsRequest("d"), version: 7)
        for i in 0..<5 { _ = try await h.send(produceRequest(topic: "d", records: try makeBatch(["v\(i)"])), version: 9) }
        var dr = DeleteRecordsRequest()
        var t = DeleteRecordsRequest.DeleteRecordsTopic()
        t.name = "d"
        var p = DeleteRecordsRequest.DeleteRecordsPartition()
        p.partitionIndex = 0
        p.offset = 3
        t.partitions = [p]
        dr.topics = [t]
        #expect(try await h.send(dr, version: 2)?.topics[0].partitions[0].lowWatermark == 3)
        let f = try #require(try await h.send(fetchRequest(topic: "d", offset: 0), version: 11))
        #expect(f.responses[0].partitions[0].errorCode == ErrorCode.offsetOutOfRange.rawValue)
        #expect(f.responses[0].partitions[0].logStartOffset == 3)
        await h.close()
    }

    @Test func compactedTopicsRefuseKeylessRecordsAndCompactInMaintenance() async throws {
        let h = try await BrokerHarness()
        defer { h.removeFiles() }
        _ = try await h.send(createTopicsRequest("state", configs: ["cleanup.policy": "compact", "segment.bytes": "300"]), version: 7)
        let keyless = try #require(try await h.send(produceRequest(topic: "state", records: try makeBatch(["v"])), version: 9))
        #expect(keyless.responses[0].partitionResponses[0].errorCode == ErrorCode.invalidRecord.rawValue)
        for i in 0..<20 {
            let r = try #require(try await h.send(produceRequest(topic: "state", records: try makeBatch(["v\(i)"], keys: ["k\(i % 2)"])), version: 9))
            #expect(r.responses[0].partitionResponses[0].errorCode == 0)
        }
        h.broker.runRetention()
        let log = try #require(h.broker.logs.log(topic: "state", partition: 0))
        var values: [String] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset {
            let batches = try RecordBatch.batches(in: try log.read(from: offset, maxBytes: 1 << 20))
            guard let last = batches.last else { break }
            for b in batches { for r in try b.decodeRecords() where b.offset(of: r) >= offset { values.append(String(buffer: r.value!)) } }
            offset = last.header.baseOffset + Int64(last.header.lastOffsetDelta) + 1
        }
        // Superseded values in sealed segments are gone; the newest of each key is still there.
        #expect(values.count < 20)
        #expect(values.suffix(2) == ["v18", "v19"])
        await h.close()
    }
}
