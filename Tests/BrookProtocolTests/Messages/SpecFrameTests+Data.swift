import BrookProtocol
import NIOCore
import Testing

/// Data-plane APIs (Produce, Fetch, Metadata) at the versions the older tests in
/// SpecFrameTests.swift leave out: the flexible ones, topic ids, and classic responses.
extension SpecFrameTests {
    @Test func produceV8RecordErrorsAndFlexibleV9() throws {
        let batch: [UInt8] = [0xAB, 0xCD, 0xEF]
        // Produce Response (Version: 8) => [name [index error_code base_offset log_append_time_ms log_start_offset
        //   [batch_index batch_index_error_message] error_message]] throttle_time_ms
        let r8 = try decodeExactly(ProduceResponse.self, version: 8,
            arr(1) + str("t") + arr(1) + i32(0) + i16(87) + i64(-1) + i64(-1) + i64(0)
                + arr(1) + i32(2) + str("bad key") + str("invalid record") + i32(0))
        let failed = with(ProduceResponse.PartitionProduceResponse()) {
            $0.errorCode = 87; $0.baseOffset = -1; $0.logStartOffset = 0; $0.errorMessage = "invalid record"
            $0.recordErrors = [with(.init()) { $0.batchIndex = 2; $0.batchIndexErrorMessage = "bad key" }]
        }
        #expect(r8 == with(ProduceResponse()) { $0.responses = [with(.init()) { $0.name = "t"; $0.partitionResponses = [failed] }] })
        // v9 (flexible) Request => transactional_id acks timeout_ms [name [index records TAG_BUFFER] TAG_BUFFER] TAG_BUFFER
        let q9 = try decodeExactly(ProduceRequest.self, version: 9,
            cstr("tx") + i16(-1) + i32(30_000) + carr(1) + cstr("t") + carr(2)
                + i32(0) + cbytes(batch) + noTags + i32(1) + cbytes(nil) + noTags + noTags + noTags)
        #expect(q9 == with(ProduceRequest()) {
            $0.transactionalId = "tx"; $0.acks = -1; $0.timeoutMs = 30_000
            $0.topicData = [with(.init()) {
                $0.name = "t"
                $0.partitionData = [with(.init()) { $0.records = .of(batch) }, with(.init()) { $0.index = 1; $0.records = nil }]
            }]
        })
        let r9 = try decodeExactly(ProduceResponse.self, version: 9,
            carr(1) + cstr("t") + carr(2)
                + i32(0) + i16(0) + i64(100) + i64(1_700_000_000_000) + i64(0) + carr(0) + cstr(nil) + noTags
                + i32(1) + i16(87) + i64(-1) + i64(-1) + i64(0) + carr(1) + i32(2) + cstr("bad key") + noTags + cstr("invalid record") + noTags
                + noTags + i32(5) + noTags)
        let ok = with(ProduceResponse.PartitionProduceResponse()) { $0.baseOffset = 100; $0.logAppendTimeMs = 1_700_000_000_000; $0.logStartOffset = 0 }
        #expect(r9 == with(ProduceResponse()) {
            $0.throttleTimeMs = 5
            $0.responses = [with(.init()) { $0.name = "t"; $0.partitionResponses = [ok, with(failed) { $0.index = 1 }] }]
        })
    }

    @Test func fetchV4ClassicResponseAndFlexibleV13TopicIds() throws {
        let batch: [UInt8] = [1, 2, 3, 4]
        // Fetch Response (Version: 4) => throttle_time_ms [topic [partition_index error_code high_watermark
        //   last_stable_offset [producer_id first_offset] (nullable) records]]
        let r4 = try decodeExactly(FetchResponse.self, version: 4,
            i32(0) + arr(1) + str("t") + arr(2)
                + i32(0) + i16(0) + i64(10) + i64(8) + arr(1) + i64(77) + i64(8) + bytes(batch)
                + i32(1) + i16(0) + i64(0) + i64(0) + arr(nil) + bytes(nil))
        #expect(r4 == with(FetchResponse()) {
            $0.responses = [with(.init()) {
                $0.topic = "t"
                $0.partitions = [
                    with(.init()) {
                        $0.highWatermark = 10; $0.lastStableOffset = 8; $0.records = .of(batch)
                        $0.abortedTransactions = [with(.init()) { $0.producerId = 77; $0.firstOffset = 8 }]
                    },
                    with(.init()) { $0.partitionIndex = 1; $0.lastStableOffset = 0; $0.abortedTransactions = nil; $0.records = nil },
                ]
            }]
        })
        // v13 (flexible) Request => replica_id max_wait_ms min_bytes max_bytes isolation_level session_id session_epoch
        //   [topic_id [partition current_leader_epoch fetch_offset last_fetched_epoch log_start_offset partition_max_bytes]]
        //   [topic_id [partitions]] rack_id TAG_BUFFER(0: cluster_id)
        let q13 = try decodeExactly(FetchRequest.self, version: 13,
            i32(-1) + i32(500) + i32(1) + i32(52_428_800) + i8(0) + i32(7) + i32(2)
                + carr(1) + uuid(Self.topicId) + carr(1) + i32(0) + i32(5) + i64(42) + i32(4) + i64(-1) + i32(1_048_576) + noTags + noTags
                + carr(1) + uuid(Self.topicId) + carr(1) + i32(3) + noTags
                + cstr("rack-a") + tags((0, cstr("cluster-1"))))
        #expect(q13 == with(FetchRequest()) {
            $0.clusterId = "cluster-1"; $0.maxWaitMs = 500; $0.minBytes = 1; $0.maxBytes = 52_428_800
            $0.sessionId = 7; $0.sessionEpoch = 2; $0.rackId = "rack-a"
            $0.topics = [with(.init()) {
                $0.topicId = Self.topicId
                $0.partitions = [with(.init()) {
                    $0.currentLeaderEpoch = 5; $0.fetchOffset = 42; $0.lastFetchedEpoch = 4; $0.partitionMaxBytes = 1_048_576
                }]
            }]
            $0.forgottenTopicsData = [with(.init()) { $0.topicId = Self.topicId; $0.partitions = [3] }]
        })
        // Response (Version: 13) => throttle_time_ms error_code session_id [topic_id [partition_index error_code
        //   high_watermark last_stable_offset log_start_offset [aborted_transactions] preferred_read_replica records
        //   TAG_BUFFER(0: diverging_epoch, 1: current_leader, 2: snapshot_id)]]
        let r13 = try decodeExactly(FetchResponse.self, version: 13,
            i32(0) + i16(0) + i32(7) + carr(1) + uuid(Self.topicId) + carr(1)
                + i32(0) + i16(0) + i64(10) + i64(10) + i64(0) + carr(nil) + i32(-1) + cbytes(batch)
                + tags((0, i32(3) + i64(9) + noTags), (1, i32(1) + i32(5) + noTags), (2, i64(100) + i32(2) + noTags))
                + noTags + noTags)
        #expect(r13 == with(FetchResponse()) {
            $0.sessionId = 7
            $0.responses = [with(.init()) {
                $0.topicId = Self.topicId
                $0.partitions = [with(.init()) {
                    $0.highWatermark = 10; $0.lastStableOffset = 10; $0.logStartOffset = 0; $0.records = .of(batch)
                    $0.divergingEpoch = with(.init()) { $0.epoch = 3; $0.endOffset = 9 }
                    $0.currentLeader = with(.init()) { $0.leaderId = 1; $0.leaderEpoch = 5 }
                    $0.snapshotId = with(.init()) { $0.endOffset = 100; $0.epoch = 2 }
                }]
            }]
        })
    }

    @Test func metadataV1ClassicResponseAndFlexibleV12TopicIds() throws {
        // Metadata Response (Version: 1) => [node_id host port rack] controller_id
        //   [error_code name is_internal [error_code partition_index leader_id [replica_nodes] [isr_nodes]]]
        let r1 = try decodeExactly(MetadataResponse.self, version: 1,
            arr(1) + i32(1) + str("localhost") + i32(9092) + str(nil) + i32(1)
                + arr(1) + i16(0) + str("t") + bool(false) + arr(1) + i16(0) + i32(0) + i32(1) + arr(1) + i32(1) + arr(1) + i32(1))
        let broker = with(MetadataResponse.MetadataResponseBroker()) { $0.nodeId = 1; $0.host = "localhost"; $0.port = 9092 }
        let partition = with(MetadataResponse.MetadataResponsePartition()) { $0.leaderId = 1; $0.replicaNodes = [1]; $0.isrNodes = [1] }
        #expect(r1 == with(MetadataResponse()) {
            $0.brokers = [broker]; $0.controllerId = 1
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [partition] }]
        })
        // v8 Request => [name] (nullable) allow_auto_topic_creation include_cluster_authorized_operations include_topic_authorized_operations
        let q8 = try decodeExactly(MetadataRequest.self, version: 8, arr(nil) + bool(false) + bool(true) + bool(true))
        #expect(q8 == with(MetadataRequest()) {
            $0.topics = nil; $0.allowAutoTopicCreation = false; $0.includeClusterAuthorizedOperations = true; $0.includeTopicAuthorizedOperations = true
        })
        // v12 (flexible) Request => [topic_id name (nullable)] allow_auto_topic_creation include_topic_authorized_operations TAG_BUFFER
        let q12 = try decodeExactly(MetadataRequest.self, version: 12,
            carr(2) + uuid(Self.topicId) + cstr(nil) + noTags + uuid(.zero) + cstr("t") + noTags + bool(true) + bool(false) + noTags)
        #expect(q12 == with(MetadataRequest()) {
            $0.topics = [with(.init()) { $0.topicId = Self.topicId; $0.name = nil }, with(.init()) { $0.name = "t" }]
        })
        // Response (Version: 12) => throttle_time_ms [node_id host port rack] cluster_id controller_id
        //   [error_code name (nullable) topic_id is_internal [error_code partition_index leader_id leader_epoch
        //   [replica_nodes] [isr_nodes] [offline_replicas]] topic_authorized_operations] TAG_BUFFER
        let r12 = try decodeExactly(MetadataResponse.self, version: 12,
            i32(0) + carr(1) + i32(1) + cstr("localhost") + i32(9092) + cstr("rack-a") + noTags + cstr("brook-1") + i32(1)
                + carr(2)
                + i16(0) + cstr("t") + uuid(Self.topicId) + bool(false)
                + carr(1) + i16(0) + i32(0) + i32(1) + i32(3) + carr(1) + i32(1) + carr(1) + i32(1) + carr(0) + noTags
                + i32(0x0F8) + noTags
                + i16(100) + cstr(nil) + uuid(KafkaUUID(high: 0, low: 1)) + bool(false) + carr(0) + i32(Int32.min) + noTags
                + noTags)
        #expect(r12 == with(MetadataResponse()) {
            $0.brokers = [with(broker) { $0.rack = "rack-a" }]; $0.clusterId = "brook-1"; $0.controllerId = 1
            $0.topics = [
                with(.init()) {
                    $0.name = "t"; $0.topicId = Self.topicId; $0.topicAuthorizedOperations = 0x0F8
                    $0.partitions = [with(partition) { $0.leaderEpoch = 3 }]
                },
                with(.init()) { $0.errorCode = 100; $0.name = nil; $0.topicId = KafkaUUID(high: 0, low: 1) },
            ]
        })
    }
}
