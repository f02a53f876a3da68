import BrookProtocol
import NIOCore
import Testing

/// Offset APIs (ListOffsets, OffsetCommit, OffsetFetch, OffsetDelete, DeleteRecords) against
/// hand-built frames. Bodies only: headers are not included.
extension SpecFrameTests {
    @Test func listOffsetsV0OldStyleV1AndFlexibleV7() throws {
        // ListOffsets Request (Version: 0) => replica_id [name [partition_index timestamp max_num_offsets]]
        let q0 = try decodeExactly(ListOffsetsRequest.self, version: 0,
            i32(-1) + arr(1) + str("t") + arr(1) + i32(0) + i64(-2) + i32(3))
        #expect(q0 == with(ListOffsetsRequest()) {
            $0.replicaId = -1
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.timestamp = -2; $0.maxNumOffsets = 3 }] }]
        })
        // Response (Version: 0) => [name [partition_index error_code [old_style_offsets]]]
        let r0 = try decodeExactly(ListOffsetsResponse.self, version: 0,
            arr(1) + str("t") + arr(1) + i32(0) + i16(0) + arr(2) + i64(42) + i64(0))
        #expect(r0 == with(ListOffsetsResponse()) {
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.oldStyleOffsets = [42, 0] }] }]
        })
        // v1 drops max_num_offsets; the response carries timestamp + offset instead of old_style_offsets
        let q1 = try decodeExactly(ListOffsetsRequest.self, version: 1,
            i32(-1) + arr(1) + str("t") + arr(1) + i32(2) + i64(-1))
        #expect(q1 == with(ListOffsetsRequest()) {
            $0.replicaId = -1
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.partitionIndex = 2; $0.timestamp = -1 }] }]
        })
        let r1 = try decodeExactly(ListOffsetsResponse.self, version: 1,
            arr(1) + str("t") + arr(1) + i32(2) + i16(0) + i64(-1) + i64(1_000))
        #expect(r1 == with(ListOffsetsResponse()) {
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.partitionIndex = 2; $0.offset = 1_000 }] }]
        })
        // v7 (flexible) => replica_id isolation_level [name [partition_index current_leader_epoch timestamp]]
        let q7 = try decodeExactly(ListOffsetsRequest.self, version: 7,
            i32(-1) + i8(1) + carr(1) + cstr("t") + carr(1) + i32(0) + i32(4) + i64(-3) + noTags + noTags + noTags)
        #expect(q7 == with(ListOffsetsRequest()) {
            $0.replicaId = -1; $0.isolationLevel = 1
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.currentLeaderEpoch = 4; $0.timestamp = -3 }] }]
        })
        // Response (Version: 7) => throttle_time_ms [name [partition_index error_code timestamp offset leader_epoch]]
        let r7 = try decodeExactly(ListOffsetsResponse.self, version: 7,
            i32(0) + carr(1) + cstr("t") + carr(1) + i32(0) + i16(0) + i64(1_700_000_000_000) + i64(77) + i32(4) + noTags + noTags + noTags)
        #expect(r7 == with(ListOffsetsResponse()) {
            $0.topics = [with(.init()) {
                $0.name = "t"
                $0.partitions = [with(.init()) { $0.timestamp = 1_700_000_000_000; $0.offset = 77; $0.leaderEpoch = 4 }]
            }]
        })
    }

    @Test func offsetCommitV1CommitTimestampAndFlexibleV8() throws {
        // OffsetCommit Request (Version: 1) => group_id generation_id member_id [name [partition_index committed_offset commit_timestamp committed_metadata]]
        let q1 = try decodeExactly(OffsetCommitRequest.self, version: 1,
            str("g") + i32(2) + str("m") + arr(1) + str("t") + arr(1) + i32(0) + i64(10) + i64(1_600_000_000_000) + str("meta"))
        #expect(q1 == with(OffsetCommitRequest()) {
            $0.groupId = "g"; $0.generationIdOrMemberEpoch = 2; $0.memberId = "m"
            $0.topics = [with(.init()) {
                $0.name = "t"
                $0.partitions = [with(.init()) { $0.committedOffset = 10; $0.commitTimestamp = 1_600_000_000_000; $0.committedMetadata = "meta" }]
            }]
        })
        // Response (Version: 1) => [name [partition_index error_code]] (throttle_time_ms only from v3)
        let r1 = try decodeExactly(OffsetCommitResponse.self, version: 1, arr(1) + str("t") + arr(1) + i32(0) + i16(0))
        let t = with(OffsetCommitResponse.OffsetCommitResponseTopic()) { $0.name = "t"; $0.partitions = [.init()] }
        #expect(r1 == with(OffsetCommitResponse()) { $0.topics = [t] })
        // v8 (flexible) => group_id generation_id_or_member_epoch member_id group_instance_id
        //   [name [partition_index committed_offset committed_leader_epoch committed_metadata]]
        let q8 = try decodeExactly(OffsetCommitRequest.self, version: 8,
            cstr("g") + i32(9) + cstr("m") + cstr("i-1")
                + carr(1) + cstr("t") + carr(2) + i32(0) + i64(10) + i32(3) + cstr(nil) + noTags
                + i32(1) + i64(20) + i32(-1) + cstr("") + noTags + noTags + noTags)
        #expect(q8 == with(OffsetCommitRequest()) {
            $0.groupId = "g"; $0.generationIdOrMemberEpoch = 9; $0.memberId = "m"; $0.groupInstanceId = "i-1"
            $0.topics = [with(.init()) {
                $0.name = "t"
                $0.partitions = [
                    with(.init()) { $0.committedOffset = 10; $0.committedLeaderEpoch = 3 },
                    with(.init()) { $0.partitionIndex = 1; $0.committedOffset = 20; $0.committedMetadata = "" },
                ]
            }]
        })
        let r8 = try decodeExactly(OffsetCommitResponse.self, version: 8,
            i32(3) + carr(1) + cstr("t") + carr(1) + i32(0) + i16(22) + noTags + noTags + noTags)
        #expect(r8 == with(OffsetCommitResponse()) {
            $0.throttleTimeMs = 3
            $0.topics = [with(t) { $0.partitions = [with(.init()) { $0.errorCode = 22 }] }]
        })
    }

    @Test func offsetFetchV1V2AllTopicsV5AndFlexibleV7() throws {
        // OffsetFetch Request (Version: 1) => group_id [name [partition_indexes]]
        let q1 = try decodeExactly(OffsetFetchRequest.self, version: 1,
            str("g") + arr(1) + str("t") + arr(2) + i32(0) + i32(1))
        let topic = with(OffsetFetchRequest.OffsetFetchRequestTopic()) { $0.name = "t"; $0.partitionIndexes = [0, 1] }
        #expect(q1 == with(OffsetFetchRequest()) { $0.groupId = "g"; $0.topics = [topic] })
        // Response (Version: 1) => [name [partition_index committed_offset metadata error_code]]
        let r1 = try decodeExactly(OffsetFetchResponse.self, version: 1,
            arr(1) + str("t") + arr(1) + i32(0) + i64(-1) + str(nil) + i16(0))
        let p = with(OffsetFetchResponse.OffsetFetchResponsePartition()) { $0.committedOffset = -1 }
        #expect(r1 == with(OffsetFetchResponse()) { $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [p] }] })
        // v2: a null topic array asks for every committed topic; the response gains a top-level error_code
        let q2 = try decodeExactly(OffsetFetchRequest.self, version: 2, str("g") + arr(nil))
        #expect(q2 == with(OffsetFetchRequest()) { $0.groupId = "g"; $0.topics = nil })
        let r2 = try decodeExactly(OffsetFetchResponse.self, version: 2, arr(0) + i16(16))
        #expect(r2 == with(OffsetFetchResponse()) { $0.errorCode = 16 })
        // v5 response => throttle_time_ms [name [partition_index committed_offset committed_leader_epoch metadata error_code]] error_code
        let r5 = try decodeExactly(OffsetFetchResponse.self, version: 5,
            i32(0) + arr(1) + str("t") + arr(1) + i32(0) + i64(100) + i32(6) + str("") + i16(0) + i16(0))
        #expect(r5 == with(OffsetFetchResponse()) {
            $0.topics = [with(.init()) {
                $0.name = "t"; $0.partitions = [with(p) { $0.committedOffset = 100; $0.committedLeaderEpoch = 6; $0.metadata = "" }]
            }]
        })
        // v7 (flexible) => group_id [topics] (compact, nullable) require_stable TAG_BUFFER
        let q7 = try decodeExactly(OffsetFetchRequest.self, version: 7,
            cstr("g") + carr(1) + cstr("t") + carr(2) + i32(0) + i32(1) + noTags + bool(true) + noTags)
        #expect(q7 == with(q1) { $0.requireStable = true })
        let q7all = try decodeExactly(OffsetFetchRequest.self, version: 7, cstr("g") + carr(nil) + bool(false) + noTags)
        #expect(q7all == q2)
        let r7 = try decodeExactly(OffsetFetchResponse.self, version: 7,
            i32(0) + carr(1) + cstr("t") + carr(1) + i32(0) + i64(100) + i32(-1) + cstr(nil) + i16(0) + noTags + noTags + i16(0) + noTags)
        #expect(r7 == with(OffsetFetchResponse()) { $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(p) { $0.committedOffset = 100 }] }] })
    }

    @Test func offsetFetchFlexibleV8BatchesGroups() throws {
        // OffsetFetch Request (Version: 8) => [group_id [name [partition_indexes]] (nullable)] require_stable TAG_BUFFER
        let q8 = try decodeExactly(OffsetFetchRequest.self, version: 8,
            carr(2) + cstr("g1") + carr(1) + cstr("t") + carr(1) + i32(3) + noTags + noTags
                + cstr("g2") + carr(nil) + noTags + bool(false) + noTags)
        #expect(q8 == with(OffsetFetchRequest()) {
            $0.topics = nil
            $0.groups = [
                with(.init()) { $0.groupId = "g1"; $0.topics = [with(.init()) { $0.name = "t"; $0.partitionIndexes = [3] }] },
                with(.init()) { $0.groupId = "g2"; $0.topics = nil },
            ]
        })
        // Response (Version: 8) => throttle_time_ms [group_id [name [partition_index committed_offset
        //   committed_leader_epoch metadata error_code]] error_code] TAG_BUFFER
        let r8 = try decodeExactly(OffsetFetchResponse.self, version: 8,
            i32(0) + carr(2)
                + cstr("g1") + carr(1) + cstr("t") + carr(1) + i32(3) + i64(5) + i32(2) + cstr("m") + i16(0) + noTags + noTags + i16(0) + noTags
                + cstr("g2") + carr(0) + i16(16) + noTags + noTags)
        #expect(r8 == with(OffsetFetchResponse()) {
            $0.groups = [
                with(.init()) {
                    $0.groupId = "g1"
                    $0.topics = [with(.init()) {
                        $0.name = "t"
                        $0.partitions = [with(.init()) { $0.partitionIndex = 3; $0.committedOffset = 5; $0.committedLeaderEpoch = 2; $0.metadata = "m" }]
                    }]
                },
                with(.init()) { $0.groupId = "g2"; $0.errorCode = 16 },
            ]
        })
    }

    @Test func offsetDeleteV0() throws {
        // OffsetDelete Request (Version: 0) => group_id [name [partition_index]]
        let q = try decodeExactly(OffsetDeleteRequest.self, version: 0,
            str("g") + arr(1) + str("t") + arr(2) + i32(0) + i32(1))
        #expect(q == with(OffsetDeleteRequest()) {
            $0.groupId = "g"
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.partitionIndex = 0 }, with(.init()) { $0.partitionIndex = 1 }] }]
        })
        // Response (Version: 0) => error_code throttle_time_ms [name [partition_index error_code]]
        let r = try decodeExactly(OffsetDeleteResponse.self, version: 0,
            i16(0) + i32(9) + arr(1) + str("t") + arr(1) + i32(1) + i16(86))
        #expect(r == with(OffsetDeleteResponse()) {
            $0.throttleTimeMs = 9
            $0.topics = [with(.init()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.partitionIndex = 1; $0.errorCode = 86 }] }]
        })
    }

    @Test func deleteRecordsV0AndFlexibleV2() throws {
        // DeleteRecords Request (Version: 0) => [name [partition_index offset]] timeout_ms
        let q0 = try decodeExactly(DeleteRecordsRequest.self, version: 0,
            arr(1) + str("t") + arr(1) + i32(0) + i64(50) + i32(30_000))
        let topic = with(DeleteRecordsRequest.DeleteRecordsTopic()) { $0.name = "t"; $0.partitions = [with(.init()) { $0.offset = 50 }] }
        #expect(q0 == with(DeleteRecordsRequest()) { $0.topics = [topic]; $0.timeoutMs = 30_000 })
        // Response (Version: 0) => throttle_time_ms [name [partition_index low_watermark error_code]]
        let r0 = try decodeExactly(DeleteRecordsResponse.self, version: 0,
            i32(0) + arr(1) + str("t") + arr(1) + i32(0) + i64(50) + i16(0))
        let result = with(DeleteRecordsResponse.DeleteRecordsTopicResult()) {
            $0.name = "t"; $0.partitions = [with(.init()) { $0.lowWatermark = 50 }]
        }
        #expect(r0 == with(DeleteRecordsResponse()) { $0.topics = [result] })
        // v2 (flexible)
        let q2 = try decodeExactly(DeleteRecordsRequest.self, version: 2,
            carr(1) + cstr("t") + carr(1) + i32(0) + i64(50) + noTags + noTags + i32(30_000) + noTags)
        #expect(q2 == q0)
        let r2 = try decodeExactly(DeleteRecordsResponse.self, version: 2,
            i32(0) + carr(1) + cstr("t") + carr(1) + i32(0) + i64(-1) + i16(1) + noTags + noTags + noTags)
        #expect(r2 == with(DeleteRecordsResponse()) {
            $0.topics = [with(result) { $0.partitions = [with(.init()) { $0.lowWatermark = -1; $0.errorCode = 1 }] }]
        })
    }
}
