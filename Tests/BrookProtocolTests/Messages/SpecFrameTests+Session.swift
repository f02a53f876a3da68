import BrookProtocol
import NIOCore
import Testing

/// Session-level APIs (SaslHandshake, SaslAuthenticate, InitProducerId, FindCoordinator,
/// ApiVersions) against hand-built frames. Bodies only: headers are not included.
extension SpecFrameTests {
    @Test func saslHandshakeV0AndV1() throws {
        // SaslHandshake Request (Version: 0 and 1) => mechanism; Response => error_code [mechanisms]
        for version: Int16 in [0, 1] {
            let q = try decodeExactly(SaslHandshakeRequest.self, version: version, str("PLAIN"))
            #expect(q == with(SaslHandshakeRequest()) { $0.mechanism = "PLAIN" })
            let r = try decodeExactly(SaslHandshakeResponse.self, version: version,
                i16(33) + arr(2) + str("PLAIN") + str("SCRAM-SHA-256"))
            #expect(r == with(SaslHandshakeResponse()) { $0.errorCode = 33; $0.mechanisms = ["PLAIN", "SCRAM-SHA-256"] })
        }
    }

    @Test func saslAuthenticateV0V1AndFlexibleV2() throws {
        let token = Array("\0user\0secret".utf8)
        // SaslAuthenticate Request (Version: 0) => auth_bytes; Response => error_code error_message auth_bytes
        let q0 = try decodeExactly(SaslAuthenticateRequest.self, version: 0, bytes(token))
        #expect(q0 == with(SaslAuthenticateRequest()) { $0.authBytes = .of(token) })
        let r0 = try decodeExactly(SaslAuthenticateResponse.self, version: 0, i16(58) + str("Authentication failed") + bytes([]))
        #expect(r0 == with(SaslAuthenticateResponse()) { $0.errorCode = 58; $0.errorMessage = "Authentication failed" })
        // v1 => response + session_lifetime_ms
        let r1 = try decodeExactly(SaslAuthenticateResponse.self, version: 1, i16(0) + str(nil) + bytes([1, 2]) + i64(3_600_000))
        #expect(r1 == with(SaslAuthenticateResponse()) { $0.authBytes = .of([1, 2]); $0.sessionLifetimeMs = 3_600_000 })
        // v2 (flexible): COMPACT_BYTES
        let q2 = try decodeExactly(SaslAuthenticateRequest.self, version: 2, cbytes(token) + noTags)
        #expect(q2 == q0)
        let r2 = try decodeExactly(SaslAuthenticateResponse.self, version: 2, i16(0) + cstr(nil) + cbytes([1, 2]) + i64(3_600_000) + noTags)
        #expect(r2 == r1)
    }

    @Test func initProducerIdV0AndFlexibleV4() throws {
        // InitProducerId Request (Version: 0) => transactional_id (nullable) transaction_timeout_ms
        let q0 = try decodeExactly(InitProducerIdRequest.self, version: 0, str(nil) + i32(60_000))
        #expect(q0 == with(InitProducerIdRequest()) { $0.transactionTimeoutMs = 60_000 })
        // Response (Version: 0) => throttle_time_ms error_code producer_id producer_epoch
        let r0 = try decodeExactly(InitProducerIdResponse.self, version: 0, i32(0) + i16(0) + i64(1_000) + i16(0))
        #expect(r0 == with(InitProducerIdResponse()) { $0.producerId = 1_000 })
        // v4 (flexible) => transactional_id transaction_timeout_ms producer_id producer_epoch TAG_BUFFER
        let q4 = try decodeExactly(InitProducerIdRequest.self, version: 4, cstr("tx-1") + i32(60_000) + i64(1_000) + i16(3) + noTags)
        #expect(q4 == with(InitProducerIdRequest()) {
            $0.transactionalId = "tx-1"; $0.transactionTimeoutMs = 60_000; $0.producerId = 1_000; $0.producerEpoch = 3
        })
        let r4 = try decodeExactly(InitProducerIdResponse.self, version: 4, i32(0) + i16(0) + i64(1_000) + i16(4) + noTags)
        #expect(r4 == with(InitProducerIdResponse()) { $0.producerId = 1_000; $0.producerEpoch = 4 })
    }

    @Test func findCoordinatorV1FlexibleV3AndBatchedV4() throws {
        // FindCoordinator Request (Version: 1) => key key_type; Response => throttle_time_ms error_code error_message node_id host port
        let q1 = try decodeExactly(FindCoordinatorRequest.self, version: 1, str("tx-1") + i8(1))
        #expect(q1 == with(FindCoordinatorRequest()) { $0.key = "tx-1"; $0.keyType = 1 })
        let r1 = try decodeExactly(FindCoordinatorResponse.self, version: 1,
            i32(0) + i16(15) + str("not available") + i32(-1) + str("") + i32(-1))
        #expect(r1 == with(FindCoordinatorResponse()) { $0.errorCode = 15; $0.errorMessage = "not available"; $0.nodeId = -1; $0.port = -1 })
        // v3 (flexible): same fields, compact strings, TAG_BUFFER
        let q3 = try decodeExactly(FindCoordinatorRequest.self, version: 3, cstr("g") + i8(0) + noTags)
        #expect(q3 == with(FindCoordinatorRequest()) { $0.key = "g" })
        let r3 = try decodeExactly(FindCoordinatorResponse.self, version: 3,
            i32(0) + i16(0) + cstr(nil) + i32(1) + cstr("localhost") + i32(9092) + noTags)
        #expect(r3 == with(FindCoordinatorResponse()) { $0.nodeId = 1; $0.host = "localhost"; $0.port = 9092 })
        // v4 => key_type [coordinator_keys]; Response => throttle_time_ms [key node_id host port error_code error_message]
        let q4 = try decodeExactly(FindCoordinatorRequest.self, version: 4, i8(0) + carr(2) + cstr("g1") + cstr("g2") + noTags)
        #expect(q4 == with(FindCoordinatorRequest()) { $0.coordinatorKeys = ["g1", "g2"] })
        let r4 = try decodeExactly(FindCoordinatorResponse.self, version: 4,
            i32(0) + carr(2)
                + cstr("g1") + i32(1) + cstr("localhost") + i32(9092) + i16(0) + cstr(nil) + noTags
                + cstr("g2") + i32(-1) + cstr("") + i32(-1) + i16(15) + cstr("loading") + noTags + noTags)
        #expect(r4 == with(FindCoordinatorResponse()) {
            $0.coordinators = [
                with(.init()) { $0.key = "g1"; $0.nodeId = 1; $0.host = "localhost"; $0.port = 9092 },
                with(.init()) { $0.key = "g2"; $0.nodeId = -1; $0.port = -1; $0.errorCode = 15; $0.errorMessage = "loading" },
            ]
        })
    }

    @Test func apiVersionsV3ResponseTaggedFeaturesAndUnknownTag() throws {
        // ApiVersions Response (Version: 3) => error_code [api_key min_version max_version TAG_BUFFER] throttle_time_ms
        //   TAG_BUFFER (0: supported_features, 1: finalized_features_epoch, 2: finalized_features, 3: zk_migration_ready)
        let features = carr(1) + cstr("metadata.version") + i16(1) + i16(20) + noTags
        let finalized = carr(1) + cstr("metadata.version") + i16(20) + i16(20) + noTags
        let r = try decodeExactly(ApiVersionsResponse.self, version: 3,
            i16(0) + carr(1) + i16(18) + i16(0) + i16(3) + noTags + i32(0)
                + tags((0, features), (1, i64(7)), (2, finalized), (3, bool(true)), (9, [0xEE])))
        #expect(r == with(ApiVersionsResponse()) {
            $0.apiKeys = [with(.init()) { $0.apiKey = 18; $0.maxVersion = 3 }]
            $0.supportedFeatures = [with(.init()) { $0.name = "metadata.version"; $0.minVersion = 1; $0.maxVersion = 20 }]
            $0.finalizedFeaturesEpoch = 7
            $0.finalizedFeatures = [with(.init()) { $0.name = "metadata.version"; $0.maxVersionLevel = 20; $0.minVersionLevel = 20 }]
            $0.zkMigrationReady = true
            $0.unknownTaggedFields = [TaggedField(tag: 9, data: .of([0xEE]))]
        })
        // Request (Version: 3) => client_software_name client_software_version TAG_BUFFER
        let q = try decodeExactly(ApiVersionsRequest.self, version: 3, cstr("brook") + cstr("0.1") + noTags)
        #expect(q == with(ApiVersionsRequest()) { $0.clientSoftwareName = "brook"; $0.clientSoftwareVersion = "0.1" })
    }
}
