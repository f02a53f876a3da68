import BrookProtocol
import NIOCore
import NIOTestUtils
import Testing

/// Decoders checked byte for byte against frames written out by hand from the protocol
/// specification (kafka.apache.org/protocol), independent of Brook's encoder.
@Suite struct SpecFrameTests {
    @Test func apiVersionsV0ResponseAndV3Request() throws {
        // ApiVersions Response (Version: 0) => error_code [api_key min_version max_version]
        var b = buf(i16(0) + i32(2) + i16(0) + i16(0) + i16(9) + i16(18) + i16(0) + i16(3))
        let r = try ApiVersionsResponse(from: &b, version: 0)
        #expect(r.errorCode == 0)
        #expect(r.apiKeys.map { [$0.apiKey, $0.minVersion, $0.maxVersion] } == [[0, 0, 9], [18, 0, 3]])
        #expect(b.readableBytes == 0)
        // ApiVersions Request (Version: 3) => client_software_name client_software_version TAG_BUFFER
        var q = buf(cstr("librdkafka") + cstr("2.0.2") + [0])
        let req = try ApiVersionsRequest(from: &q, version: 3)
        #expect(req.clientSoftwareName == "librdkafka" && req.clientSoftwareVersion == "2.0.2")
        // v3 response: the body is flexible (compact array, tagged fields), throttle time present.
        var out = ByteBuffer()
        var resp = ApiVersionsResponse()
        var v = ApiVersionsResponse.ApiVersion()
        v.apiKey = 18; v.minVersion = 0; v.maxVersion = 3
        resp.apiKeys = [v]
        resp.encode(into: &out, version: 3)
        #expect(Array(out.readableBytesView) == i16(0) + [2] + i16(18) + i16(0) + i16(3) + [0] + i32(0) + [0])
    }

    @Test func metadataRequestV1NullMeansAllTopicsAndV9IsCompact() throws {
        var b = buf(i32(-1))
        #expect(try MetadataRequest(from: &b, version: 1).topics == nil)
        // v9: topics COMPACT_ARRAY of (name COMPACT_STRING, TAG_BUFFER), allow_auto bool,
        // include_cluster_ops bool, include_topic_ops bool, TAG_BUFFER
        var c = buf([2] + cstr("orders") + [0] + [1, 0, 0] + [0])
        let r = try MetadataRequest(from: &c, version: 9)
        #expect(r.topics?.map(\.name) == ["orders"])
        #expect(r.allowAutoTopicCreation)
        #expect(c.readableBytes == 0)
    }

    @Test func produceV3RequestKeepsRecordsAsBytes() throws {
        // Produce Request (Version: 3) => transactional_id acks timeout_ms [name [index records]]
        let records: [UInt8] = Array(repeating: 0xAB, count: 5)
        var b = buf(i16(-1) + i16(-1) + i32(30000) + i32(1) + str("t") + i32(1) + i32(4) + i32(5) + records)
        let r = try ProduceRequest(from: &b, version: 3)
        #expect(r.transactionalId == nil && r.acks == -1 && r.timeoutMs == 30000)
        #expect(r.topicData.first?.name == "t")
        #expect(r.topicData.first?.partitionData.first?.index == 4)
        #expect(r.topicData.first?.partitionData.first?.records.map { Array($0.readableBytesView) } == records)
    }

    @Test func fetchV4RequestAndV12ResponseTaggedFields() throws {
        // Fetch Request (Version: 4) => replica_id max_wait_ms min_bytes max_bytes isolation_level [topic [partition fetch_offset partition_max_bytes]]
        var b = buf(i32(-1) + i32(500) + i32(1) + i32(52_428_800) + [1] + i32(1) + str("t") + i32(1) + i32(0) + i64(42) + i32(1_048_576))
        let r = try FetchRequest(from: &b, version: 4)
        #expect(r.maxWaitMs == 500 && r.isolationLevel == 1)
        #expect(r.topics[0].partitions[0].fetchOffset == 42)
        // A v12 response partition whose diverging epoch (tag 0) is set carries it as a tagged field.
        var resp = FetchResponse()
        var t = FetchResponse.FetchableTopicResponse()
        t.topic = "t"
        var p = FetchResponse.PartitionData()
        p.divergingEpoch.epoch = 3
        p.divergingEpoch.endOffset = 9
        p.records = ByteBuffer()
        t.partitions = [p]
        resp.responses = [t]
        var out = ByteBuffer()
        resp.encode(into: &out, version: 12)
        let decoded = try FetchResponse(from: &out, version: 12)
        #expect(decoded.responses[0].partitions[0].divergingEpoch.endOffset == 9)
    }

    @Test func offsetCommitV2AndFindCoordinatorV4() throws {
        // OffsetCommit Request (Version: 2) => group_id generation_id member_id retention_time_ms [name [partition_index committed_offset committed_metadata]]
        var b = buf(str("g") + i32(5) + str("m") + i64(-1) + i32(1) + str("t") + i32(1) + i32(0) + i64(100) + i16(-1))
        let r = try OffsetCommitRequest(from: &b, version: 2)
        #expect(r.generationIdOrMemberEpoch == 5 && r.retentionTimeMs == -1)
        #expect(r.topics[0].partitions[0].committedOffset == 100)
        #expect(r.topics[0].partitions[0].committedMetadata == nil)
        // FindCoordinator Request (Version: 4) => key_type [coordinator_keys] TAG_BUFFER
        var f = buf([0] + [3] + cstr("g1") + cstr("g2") + [0])
        #expect(try FindCoordinatorRequest(from: &f, version: 4).coordinatorKeys == ["g1", "g2"])
    }

    @Test func requestHeaderV2ClientIdStaysClassic() throws {
        // Request Header v2 => api_key api_version correlation_id client_id(NULLABLE_STRING) TAG_BUFFER
        var b = buf(i16(3) + i16(12) + i32(7) + str("cli") + [0])
        let h = try RequestHeader.decode(from: &b)
        #expect(h.apiKey == 3 && h.apiVersion == 12 && h.correlationId == 7 && h.clientId == "cli")
        #expect(b.readableBytes == 0)
    }

    @Test func frameDecoderHandlesDripFedInput() throws {
        let frames: [ByteBuffer] = [buf([1, 2, 3]), buf([]), buf(Array(repeating: 9, count: 300))]
        var input = ByteBuffer()
        for f in frames {
            input.writeInteger(Int32(f.readableBytes))
            input.writeImmutableBuffer(f)
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(input, frames)]) {
            KafkaFrameDecoder(maxFrameSize: 1024)
        }
        // Sizing the buffer from a frame's length changes nothing about what comes out.
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: [(input, frames)]) {
            KafkaFrameDecoder(maxFrameSize: 1024, reserveUpTo: 1024)
        }
    }

    @Test func aPartialFrameMakesRoomForItsWholeSizeUpToTheLimit() {
        var partial = buf(i32(50_000) + [1, 2, 3])
        KafkaFrameDecoder.makeRoomForFrame(&partial, upTo: 100_000)
        #expect(partial.writableBytes >= 50_000 - 3)
        #expect(partial.readableBytes == 7)
        // Over the limit, or with none: growth is left to the handler.
        var large = buf(i32(500_000) + [1, 2, 3])
        KafkaFrameDecoder.makeRoomForFrame(&large, upTo: 100_000)
        #expect(large.capacity < 500_000)
        var unlimited = buf(i32(50_000) + [1, 2, 3])
        KafkaFrameDecoder.makeRoomForFrame(&unlimited, upTo: 0)
        #expect(unlimited.capacity < 50_000)
    }

    @Test func frameDecoderRejectsOversizedAndNegativeFrames() {
        var big = buf(i32(2000))
        #expect(throws: KafkaFrameDecoder.FrameError.tooLarge(size: 2000, max: 1024)) {
            _ = try KafkaFrameDecoder.nextFrame(&big, maxFrameSize: 1024)
        }
        var neg = buf(i32(-5))
        #expect(throws: KafkaFrameDecoder.FrameError.negativeSize(-5)) {
            _ = try KafkaFrameDecoder.nextFrame(&neg, maxFrameSize: 1024)
        }
    }
}
