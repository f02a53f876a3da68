import BrookProtocol
import NIOCore
import Testing

/// Group membership APIs (JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups,
/// ListGroups, DeleteGroups) against hand-built frames. Bodies only: headers are not included.
extension SpecFrameTests {
    @Test func joinGroupV0V5AndFlexibleV7() throws {
        // JoinGroup Request (Version: 0) => group_id session_timeout_ms member_id protocol_type [name metadata]
        let q0 = try decodeExactly(JoinGroupRequest.self, version: 0,
            str("g") + i32(10_000) + str("") + str("consumer") + arr(1) + str("range") + bytes([0, 1, 2]))
        let p = with(JoinGroupRequest.JoinGroupRequestProtocol()) { $0.name = "range"; $0.metadata = .of([0, 1, 2]) }
        #expect(q0 == with(JoinGroupRequest()) {
            $0.groupId = "g"; $0.sessionTimeoutMs = 10_000; $0.protocolType = "consumer"; $0.protocols = [p]
        })
        #expect(q0.rebalanceTimeoutMs == -1, "absent before v1: keeps its default")
        // JoinGroup Response (Version: 0) => error_code generation_id protocol_name leader member_id [member_id metadata]
        let r0 = try decodeExactly(JoinGroupResponse.self, version: 0,
            i16(0) + i32(1) + str("range") + str("m-1") + str("m-1") + arr(2) + str("m-1") + bytes([9]) + str("m-2") + bytes([]))
        #expect(r0 == with(JoinGroupResponse()) {
            $0.generationId = 1; $0.protocolName = "range"; $0.leader = "m-1"; $0.memberId = "m-1"
            $0.members = [
                with(.init()) { $0.memberId = "m-1"; $0.metadata = .of([9]) },
                with(.init()) { $0.memberId = "m-2" },
            ]
        })

        // v5 (classic): + rebalance_timeout_ms (v1+) and group_instance_id (v5+); response + throttle_time_ms (v2+)
        let q5 = try decodeExactly(JoinGroupRequest.self, version: 5,
            str("g") + i32(10_000) + i32(60_000) + str("m-1") + str("i-1") + str("consumer") + arr(0))
        #expect(q5 == with(JoinGroupRequest()) {
            $0.groupId = "g"; $0.sessionTimeoutMs = 10_000; $0.rebalanceTimeoutMs = 60_000
            $0.memberId = "m-1"; $0.groupInstanceId = "i-1"; $0.protocolType = "consumer"
        })
        let r5 = try decodeExactly(JoinGroupResponse.self, version: 5,
            i32(100) + i16(0) + i32(2) + str("range") + str("m-1") + str("m-1") + arr(1) + str("m-1") + str(nil) + bytes([7]))
        #expect(r5 == with(JoinGroupResponse()) {
            $0.throttleTimeMs = 100; $0.generationId = 2; $0.protocolName = "range"; $0.leader = "m-1"; $0.memberId = "m-1"
            $0.members = [with(.init()) { $0.memberId = "m-1"; $0.metadata = .of([7]) }]
        })

        // v7 (flexible): compact strings/bytes/arrays, TAG_BUFFERs; response protocol_type (v7+) and a null protocol_name
        let q7 = try decodeExactly(JoinGroupRequest.self, version: 7,
            cstr("g") + i32(45_000) + i32(300_000) + cstr("") + cstr(nil) + cstr("consumer")
                + carr(2) + cstr("range") + cbytes([1]) + noTags + cstr("sticky") + cbytes([]) + noTags + noTags)
        #expect(q7 == with(JoinGroupRequest()) {
            $0.groupId = "g"; $0.sessionTimeoutMs = 45_000; $0.rebalanceTimeoutMs = 300_000; $0.protocolType = "consumer"
            $0.protocols = [
                with(.init()) { $0.name = "range"; $0.metadata = .of([1]) },
                with(.init()) { $0.name = "sticky" },
            ]
        })
        let r7 = try decodeExactly(JoinGroupResponse.self, version: 7,
            i32(0) + i16(79) + i32(-1) + cstr("consumer") + cstr(nil) + cstr("") + cstr("m-9")
                + carr(1) + cstr("m-9") + cstr("i-9") + cbytes([5, 6]) + noTags + noTags)
        #expect(r7 == with(JoinGroupResponse()) {
            $0.errorCode = 79; $0.protocolType = "consumer"; $0.protocolName = nil; $0.memberId = "m-9"
            $0.members = [with(.init()) { $0.memberId = "m-9"; $0.groupInstanceId = "i-9"; $0.metadata = .of([5, 6]) }]
        })
    }

    @Test func heartbeatV0V3AndFlexibleV4() throws {
        // Heartbeat Request (Version: 0) => group_id generation_id member_id; Response (Version: 0) => error_code
        let q0 = try decodeExactly(HeartbeatRequest.self, version: 0, str("g") + i32(3) + str("m-1"))
        #expect(q0 == with(HeartbeatRequest()) { $0.groupId = "g"; $0.generationId = 3; $0.memberId = "m-1" })
        let r0 = try decodeExactly(HeartbeatResponse.self, version: 0, i16(27))
        #expect(r0 == with(HeartbeatResponse()) { $0.errorCode = 27 })
        // v3 => + group_instance_id (nullable); Response (Version: 3) => throttle_time_ms error_code
        let q3 = try decodeExactly(HeartbeatRequest.self, version: 3, str("g") + i32(3) + str("m-1") + str("i-1"))
        #expect(q3 == with(q0) { $0.groupInstanceId = "i-1" })
        let r3 = try decodeExactly(HeartbeatResponse.self, version: 3, i32(5) + i16(0))
        #expect(r3 == with(HeartbeatResponse()) { $0.throttleTimeMs = 5 })
        // v4 (flexible)
        let q4 = try decodeExactly(HeartbeatRequest.self, version: 4, cstr("g") + i32(-1) + cstr("m-1") + cstr(nil) + noTags)
        #expect(q4 == with(q0) { $0.generationId = -1 })
        let r4 = try decodeExactly(HeartbeatResponse.self, version: 4, i32(0) + i16(22) + noTags)
        #expect(r4 == with(HeartbeatResponse()) { $0.errorCode = 22 })
    }

    @Test func leaveGroupV0MemberIdV3MembersAndFlexibleV4() throws {
        // LeaveGroup Request (Version: 0) => group_id member_id; Response (Version: 0) => error_code
        let q0 = try decodeExactly(LeaveGroupRequest.self, version: 0, str("g") + str("m-1"))
        #expect(q0 == with(LeaveGroupRequest()) { $0.groupId = "g"; $0.memberId = "m-1" })
        #expect(try decodeExactly(LeaveGroupResponse.self, version: 0, i16(0)) == LeaveGroupResponse())
        // v3 => group_id [member_id group_instance_id]; Response => throttle_time_ms error_code [member_id group_instance_id error_code]
        let q3 = try decodeExactly(LeaveGroupRequest.self, version: 3,
            str("g") + arr(2) + str("m-1") + str(nil) + str("m-2") + str("i-2"))
        #expect(q3 == with(LeaveGroupRequest()) {
            $0.groupId = "g"
            $0.members = [with(.init()) { $0.memberId = "m-1" }, with(.init()) { $0.memberId = "m-2"; $0.groupInstanceId = "i-2" }]
        })
        let r3 = try decodeExactly(LeaveGroupResponse.self, version: 3,
            i32(1) + i16(0) + arr(1) + str("m-2") + str("i-2") + i16(25))
        #expect(r3 == with(LeaveGroupResponse()) {
            $0.throttleTimeMs = 1
            $0.members = [with(.init()) { $0.memberId = "m-2"; $0.groupInstanceId = "i-2"; $0.errorCode = 25 }]
        })
        // v4 (flexible)
        let q4 = try decodeExactly(LeaveGroupRequest.self, version: 4,
            cstr("g") + carr(1) + cstr("") + cstr("i-3") + noTags + noTags)
        #expect(q4 == with(LeaveGroupRequest()) { $0.groupId = "g"; $0.members = [with(.init()) { $0.groupInstanceId = "i-3" }] })
        let r4 = try decodeExactly(LeaveGroupResponse.self, version: 4,
            i32(0) + i16(0) + carr(1) + cstr("m-3") + cstr(nil) + i16(0) + noTags + noTags)
        #expect(r4 == with(LeaveGroupResponse()) { $0.members = [with(.init()) { $0.memberId = "m-3" }] })
    }

    @Test func syncGroupV0AndFlexibleV5() throws {
        // SyncGroup Request (Version: 0) => group_id generation_id member_id [member_id assignment]
        let q0 = try decodeExactly(SyncGroupRequest.self, version: 0,
            str("g") + i32(4) + str("m-1") + arr(2) + str("m-1") + bytes([0, 1]) + str("m-2") + bytes([2]))
        #expect(q0 == with(SyncGroupRequest()) {
            $0.groupId = "g"; $0.generationId = 4; $0.memberId = "m-1"
            $0.assignments = [
                with(.init()) { $0.memberId = "m-1"; $0.assignment = .of([0, 1]) },
                with(.init()) { $0.memberId = "m-2"; $0.assignment = .of([2]) },
            ]
        })
        // SyncGroup Response (Version: 0) => error_code assignment
        let r0 = try decodeExactly(SyncGroupResponse.self, version: 0, i16(0) + bytes([0, 1]))
        #expect(r0 == with(SyncGroupResponse()) { $0.assignment = .of([0, 1]) })
        // v5 (flexible) => group_id generation_id member_id group_instance_id protocol_type protocol_name [assignments] TAG_BUFFER
        let q5 = try decodeExactly(SyncGroupRequest.self, version: 5,
            cstr("g") + i32(4) + cstr("m-2") + cstr("i-2") + cstr("consumer") + cstr("range") + carr(0) + noTags)
        #expect(q5 == with(SyncGroupRequest()) {
            $0.groupId = "g"; $0.generationId = 4; $0.memberId = "m-2"; $0.groupInstanceId = "i-2"
            $0.protocolType = "consumer"; $0.protocolName = "range"
        })
        // Response (Version: 5) => throttle_time_ms error_code protocol_type protocol_name assignment TAG_BUFFER
        let r5 = try decodeExactly(SyncGroupResponse.self, version: 5,
            i32(0) + i16(0) + cstr("consumer") + cstr(nil) + cbytes([2]) + noTags)
        #expect(r5 == with(SyncGroupResponse()) { $0.protocolType = "consumer"; $0.assignment = .of([2]) })
    }

    @Test func describeGroupsV0AndFlexibleV5() throws {
        // DescribeGroups Request (Version: 0) => [groups]
        let q0 = try decodeExactly(DescribeGroupsRequest.self, version: 0, arr(2) + str("a") + str("b"))
        #expect(q0 == with(DescribeGroupsRequest()) { $0.groups = ["a", "b"] })
        // Response (Version: 0) => [error_code group_id group_state protocol_type protocol_data
        //                           [member_id client_id client_host member_metadata member_assignment]]
        let r0 = try decodeExactly(DescribeGroupsResponse.self, version: 0,
            arr(1) + i16(0) + str("a") + str("Stable") + str("consumer") + str("range")
                + arr(1) + str("m-1") + str("rdkafka") + str("/10.0.0.1") + bytes([1]) + bytes([2, 3]))
        let member = with(DescribeGroupsResponse.DescribedGroupMember()) {
            $0.memberId = "m-1"; $0.clientId = "rdkafka"; $0.clientHost = "/10.0.0.1"
            $0.memberMetadata = .of([1]); $0.memberAssignment = .of([2, 3])
        }
        let group = with(DescribeGroupsResponse.DescribedGroup()) {
            $0.groupId = "a"; $0.groupState = "Stable"; $0.protocolType = "consumer"; $0.protocolData = "range"
            $0.members = [member]
        }
        #expect(r0 == with(DescribeGroupsResponse()) { $0.groups = [group] })
        // v5 (flexible): request + include_authorized_operations (v3+); response + throttle_time_ms (v1+),
        // group_instance_id (v4+), authorized_operations (v3+)
        let q5 = try decodeExactly(DescribeGroupsRequest.self, version: 5, carr(1) + cstr("a") + bool(true) + noTags)
        #expect(q5 == with(DescribeGroupsRequest()) { $0.groups = ["a"]; $0.includeAuthorizedOperations = true })
        let r5 = try decodeExactly(DescribeGroupsResponse.self, version: 5,
            i32(0) + carr(1) + i16(0) + cstr("a") + cstr("Stable") + cstr("consumer") + cstr("range")
                + carr(1) + cstr("m-1") + cstr("i-1") + cstr("rdkafka") + cstr("/10.0.0.1") + cbytes([1]) + cbytes([2, 3]) + noTags
                + i32(0b1_1000) + noTags + noTags)
        #expect(r5 == with(DescribeGroupsResponse()) {
            $0.groups = [with(group) { $0.members = [with(member) { $0.groupInstanceId = "i-1" }]; $0.authorizedOperations = 0b1_1000 }]
        })
    }

    @Test func listGroupsV0AndFlexibleV4WithStatesFilter() throws {
        // ListGroups Request (Version: 0) => (empty); Response (Version: 0) => error_code [group_id protocol_type]
        #expect(try decodeExactly(ListGroupsRequest.self, version: 0, []) == ListGroupsRequest())
        let r0 = try decodeExactly(ListGroupsResponse.self, version: 0,
            i16(0) + arr(2) + str("a") + str("consumer") + str("b") + str(""))
        #expect(r0 == with(ListGroupsResponse()) {
            $0.groups = [with(.init()) { $0.groupId = "a"; $0.protocolType = "consumer" }, with(.init()) { $0.groupId = "b" }]
        })
        // v3 (flexible, no filter yet) => TAG_BUFFER only
        #expect(try decodeExactly(ListGroupsRequest.self, version: 3, noTags) == ListGroupsRequest())
        // v4 => [states_filter] TAG_BUFFER; Response => throttle_time_ms error_code [group_id protocol_type group_state TAG_BUFFER] TAG_BUFFER
        let q4 = try decodeExactly(ListGroupsRequest.self, version: 4, carr(2) + cstr("Stable") + cstr("Empty") + noTags)
        #expect(q4 == with(ListGroupsRequest()) { $0.statesFilter = ["Stable", "Empty"] })
        let r4 = try decodeExactly(ListGroupsResponse.self, version: 4,
            i32(0) + i16(0) + carr(1) + cstr("a") + cstr("consumer") + cstr("Stable") + noTags + noTags)
        #expect(r4 == with(ListGroupsResponse()) {
            $0.groups = [with(.init()) { $0.groupId = "a"; $0.protocolType = "consumer"; $0.groupState = "Stable" }]
        })
    }

    @Test func deleteGroupsV0AndFlexibleV2() throws {
        // DeleteGroups Request (Version: 0) => [groups_names]; Response => throttle_time_ms [group_id error_code]
        let q0 = try decodeExactly(DeleteGroupsRequest.self, version: 0, arr(2) + str("a") + str("b"))
        #expect(q0 == with(DeleteGroupsRequest()) { $0.groupsNames = ["a", "b"] })
        let r0 = try decodeExactly(DeleteGroupsResponse.self, version: 0,
            i32(0) + arr(2) + str("a") + i16(0) + str("b") + i16(69))
        #expect(r0 == with(DeleteGroupsResponse()) {
            $0.results = [with(.init()) { $0.groupId = "a" }, with(.init()) { $0.groupId = "b"; $0.errorCode = 69 }]
        })
        // v2 (flexible)
        let q2 = try decodeExactly(DeleteGroupsRequest.self, version: 2, carr(1) + cstr("a") + noTags)
        #expect(q2 == with(DeleteGroupsRequest()) { $0.groupsNames = ["a"] })
        let r2 = try decodeExactly(DeleteGroupsResponse.self, version: 2, i32(7) + carr(1) + cstr("a") + i16(68) + noTags + noTags)
        #expect(r2 == with(DeleteGroupsResponse()) {
            $0.throttleTimeMs = 7; $0.results = [with(.init()) { $0.groupId = "a"; $0.errorCode = 68 }]
        })
    }
}
