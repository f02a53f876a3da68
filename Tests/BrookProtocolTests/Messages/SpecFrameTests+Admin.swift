import BrookProtocol
import NIOCore
import Testing

/// Admin APIs (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
/// IncrementalAlterConfigs, DescribeCluster) against hand-built frames. Bodies only.
extension SpecFrameTests {
    static let topicId = KafkaUUID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)

    @Test func createTopicsV0() throws {
        // CreateTopics Request (Version: 0) => [name num_partitions replication_factor
        //   [partition_index [broker_ids]] [name value]] timeout_ms
        let q0 = try decodeExactly(CreateTopicsRequest.self, version: 0,
            arr(1) + str("t") + i32(-1) + i16(-1)
                + arr(2) + i32(0) + arr(1) + i32(1) + i32(1) + arr(0)
                + arr(2) + str("cleanup.policy") + str("compact") + str("retention.ms") + str(nil)
                + i32(5_000))
        #expect(q0 == with(CreateTopicsRequest()) {
            $0.timeoutMs = 5_000
            $0.topics = [with(.init()) {
                $0.name = "t"; $0.numPartitions = -1; $0.replicationFactor = -1
                $0.assignments = [with(.init()) { $0.brokerIds = [1] }, with(.init()) { $0.partitionIndex = 1 }]
                $0.configs = [
                    with(.init()) { $0.name = "cleanup.policy"; $0.value = "compact" },
                    with(.init()) { $0.name = "retention.ms" },
                ]
            }]
        })
        // Response (Version: 0) => [name error_code]
        let r0 = try decodeExactly(CreateTopicsResponse.self, version: 0, arr(1) + str("t") + i16(36))
        #expect(r0 == with(CreateTopicsResponse()) { $0.topics = [with(.init()) { $0.name = "t"; $0.errorCode = 36 }] })
    }

    @Test func createTopicsFlexibleV5TaggedConfigErrorAndV7TopicId() throws {
        // v5 (flexible) request => [topics] timeout_ms validate_only TAG_BUFFER
        let q5 = try decodeExactly(CreateTopicsRequest.self, version: 5,
            carr(1) + cstr("t") + i32(3) + i16(1) + carr(0) + carr(1) + cstr("min.insync.replicas") + cstr("1") + noTags + noTags
                + i32(60_000) + bool(true) + noTags)
        #expect(q5 == with(CreateTopicsRequest()) {
            $0.validateOnly = true
            $0.topics = [with(.init()) {
                $0.name = "t"; $0.numPartitions = 3; $0.replicationFactor = 1
                $0.configs = [with(.init()) { $0.name = "min.insync.replicas"; $0.value = "1" }]
            }]
        })
        // Response (Version: 5) => throttle_time_ms [name error_code error_message num_partitions replication_factor
        //   [name value read_only config_source is_sensitive] (nullable) TAG_BUFFER(0: topic_config_error_code)]
        let r5 = try decodeExactly(CreateTopicsResponse.self, version: 5,
            i32(0) + carr(2)
                + cstr("t") + i16(0) + cstr(nil) + i32(3) + i16(1)
                + carr(1) + cstr("cleanup.policy") + cstr("delete") + bool(false) + i8(5) + bool(false) + noTags
                + tags((0, i16(29)))
                + cstr("u") + i16(36) + cstr("Topic 'u' already exists.") + i32(-1) + i16(-1) + carr(nil) + noTags
                + noTags)
        let ok = with(CreateTopicsResponse.CreatableTopicResult()) {
            $0.name = "t"; $0.numPartitions = 3; $0.replicationFactor = 1; $0.topicConfigErrorCode = 29
            $0.configs = [with(.init()) { $0.name = "cleanup.policy"; $0.value = "delete"; $0.configSource = 5 }]
        }
        let exists = with(CreateTopicsResponse.CreatableTopicResult()) {
            $0.name = "u"; $0.errorCode = 36; $0.errorMessage = "Topic 'u' already exists."; $0.configs = nil
        }
        #expect(r5 == with(CreateTopicsResponse()) { $0.topics = [ok, exists] })
        // v7 adds topic_id (UUID) after the name
        let r7 = try decodeExactly(CreateTopicsResponse.self, version: 7,
            i32(0) + carr(1) + cstr("t") + uuid(Self.topicId) + i16(0) + cstr(nil) + i32(3) + i16(1) + carr(0) + noTags + noTags)
        #expect(r7 == with(CreateTopicsResponse()) {
            $0.topics = [with(.init()) { $0.name = "t"; $0.topicId = Self.topicId; $0.numPartitions = 3; $0.replicationFactor = 1; $0.configs = [] }]
        })
    }

    @Test func deleteTopicsV0FlexibleV5AndV6ByTopicId() throws {
        // DeleteTopics Request (Version: 0) => [topic_names] timeout_ms; Response => [name error_code]
        let q0 = try decodeExactly(DeleteTopicsRequest.self, version: 0, arr(2) + str("a") + str("b") + i32(1_000))
        #expect(q0 == with(DeleteTopicsRequest()) { $0.topicNames = ["a", "b"]; $0.timeoutMs = 1_000 })
        let r0 = try decodeExactly(DeleteTopicsResponse.self, version: 0, arr(1) + str("a") + i16(3))
        #expect(r0 == with(DeleteTopicsResponse()) { $0.responses = [with(.init()) { $0.name = "a"; $0.errorCode = 3 }] })
        // v5 (flexible) => [topic_names] timeout_ms TAG_BUFFER; Response => throttle_time_ms [name error_code error_message]
        let q5 = try decodeExactly(DeleteTopicsRequest.self, version: 5, carr(2) + cstr("a") + cstr("b") + i32(1_000) + noTags)
        #expect(q5 == q0)
        let r5 = try decodeExactly(DeleteTopicsResponse.self, version: 5,
            i32(0) + carr(1) + cstr("a") + i16(3) + cstr("unknown") + noTags + noTags)
        #expect(r5 == with(DeleteTopicsResponse()) {
            $0.responses = [with(.init()) { $0.name = "a"; $0.errorCode = 3; $0.errorMessage = "unknown" }]
        })
        // v6 => [name (nullable) topic_id] timeout_ms; Response => [name (nullable) topic_id error_code error_message]
        let q6 = try decodeExactly(DeleteTopicsRequest.self, version: 6,
            carr(2) + cstr(nil) + uuid(Self.topicId) + noTags + cstr("b") + uuid(.zero) + noTags + i32(1_000) + noTags)
        #expect(q6 == with(DeleteTopicsRequest()) {
            $0.timeoutMs = 1_000
            $0.topics = [with(.init()) { $0.topicId = Self.topicId }, with(.init()) { $0.name = "b" }]
        })
        let r6 = try decodeExactly(DeleteTopicsResponse.self, version: 6,
            i32(0) + carr(1) + cstr(nil) + uuid(Self.topicId) + i16(0) + cstr(nil) + noTags + noTags)
        #expect(r6 == with(DeleteTopicsResponse()) { $0.responses = [with(.init()) { $0.topicId = Self.topicId }] })
    }

    @Test func createPartitionsV0AndFlexibleV2() throws {
        // CreatePartitions Request (Version: 0) => [name count [broker_ids] (nullable)] timeout_ms validate_only
        let q0 = try decodeExactly(CreatePartitionsRequest.self, version: 0,
            arr(2) + str("a") + i32(4) + arr(nil) + str("b") + i32(2) + arr(1) + arr(2) + i32(1) + i32(2)
                + i32(30_000) + bool(false))
        #expect(q0 == with(CreatePartitionsRequest()) {
            $0.timeoutMs = 30_000
            $0.topics = [
                with(.init()) { $0.name = "a"; $0.count = 4; $0.assignments = nil },
                with(.init()) { $0.name = "b"; $0.count = 2; $0.assignments = [with(.init()) { $0.brokerIds = [1, 2] }] },
            ]
        })
        // Response (Version: 0) => throttle_time_ms [name error_code error_message]
        let r0 = try decodeExactly(CreatePartitionsResponse.self, version: 0,
            i32(0) + arr(2) + str("a") + i16(0) + str(nil) + str("b") + i16(37) + str("too few"))
        #expect(r0 == with(CreatePartitionsResponse()) {
            $0.results = [with(.init()) { $0.name = "a" }, with(.init()) { $0.name = "b"; $0.errorCode = 37; $0.errorMessage = "too few" }]
        })
        // v2 (flexible)
        let q2 = try decodeExactly(CreatePartitionsRequest.self, version: 2,
            carr(1) + cstr("a") + i32(4) + carr(nil) + noTags + i32(30_000) + bool(true) + noTags)
        #expect(q2 == with(CreatePartitionsRequest()) {
            $0.timeoutMs = 30_000; $0.validateOnly = true; $0.topics = [with(.init()) { $0.name = "a"; $0.count = 4 }]
        })
        let r2 = try decodeExactly(CreatePartitionsResponse.self, version: 2,
            i32(0) + carr(1) + cstr("a") + i16(0) + cstr(nil) + noTags + noTags)
        #expect(r2 == with(CreatePartitionsResponse()) { $0.results = [with(.init()) { $0.name = "a" }] })
    }

    @Test func describeConfigsV0IsDefaultAndV1Synonyms() throws {
        // DescribeConfigs Request (Version: 0) => [resource_type resource_name [configuration_keys] (nullable)]
        let q0 = try decodeExactly(DescribeConfigsRequest.self, version: 0,
            arr(2) + i8(2) + str("t") + arr(nil) + i8(4) + str("1") + arr(1) + str("log.dirs"))
        #expect(q0 == with(DescribeConfigsRequest()) {
            $0.resources = [
                with(.init()) { $0.resourceType = 2; $0.resourceName = "t"; $0.configurationKeys = nil },
                with(.init()) { $0.resourceType = 4; $0.resourceName = "1"; $0.configurationKeys = ["log.dirs"] },
            ]
        })
        // Response (Version: 0) => throttle_time_ms [error_code error_message resource_type resource_name
        //   [name value read_only is_default is_sensitive]]
        let r0 = try decodeExactly(DescribeConfigsResponse.self, version: 0,
            i32(0) + arr(1) + i16(0) + str(nil) + i8(2) + str("t")
                + arr(2) + str("cleanup.policy") + str("delete") + bool(false) + bool(true) + bool(false)
                + str("sasl.jaas.config") + str(nil) + bool(false) + bool(false) + bool(true))
        #expect(r0 == with(DescribeConfigsResponse()) {
            $0.results = [with(.init()) {
                $0.resourceType = 2; $0.resourceName = "t"
                $0.configs = [
                    with(.init()) { $0.name = "cleanup.policy"; $0.value = "delete"; $0.isDefault = true },
                    with(.init()) { $0.name = "sasl.jaas.config"; $0.isSensitive = true },
                ]
            }]
        })
        // v1 => + include_synonyms; configs: name value read_only config_source is_sensitive [name value source]
        let q1 = try decodeExactly(DescribeConfigsRequest.self, version: 1, arr(1) + i8(2) + str("t") + arr(0) + bool(true))
        #expect(q1 == with(DescribeConfigsRequest()) {
            $0.includeSynonyms = true; $0.resources = [with(.init()) { $0.resourceType = 2; $0.resourceName = "t"; $0.configurationKeys = [] }]
        })
        let r1 = try decodeExactly(DescribeConfigsResponse.self, version: 1,
            i32(0) + arr(1) + i16(0) + str(nil) + i8(2) + str("t")
                + arr(1) + str("retention.ms") + str("1000") + bool(false) + i8(1) + bool(false)
                + arr(2) + str("retention.ms") + str("1000") + i8(1) + str("log.retention.ms") + str(nil) + i8(5))
        #expect(r1 == with(DescribeConfigsResponse()) {
            $0.results = [with(.init()) {
                $0.resourceType = 2; $0.resourceName = "t"
                $0.configs = [with(.init()) {
                    $0.name = "retention.ms"; $0.value = "1000"; $0.configSource = 1
                    $0.synonyms = [
                        with(.init()) { $0.name = "retention.ms"; $0.value = "1000"; $0.source = 1 },
                        with(.init()) { $0.name = "log.retention.ms"; $0.source = 5 },
                    ]
                }]
            }]
        })
    }

    @Test func describeConfigsFlexibleV4Documentation() throws {
        // v4 (flexible) => [resource_type resource_name [configuration_keys]] include_synonyms include_documentation TAG_BUFFER
        let q4 = try decodeExactly(DescribeConfigsRequest.self, version: 4,
            carr(1) + i8(2) + cstr("t") + carr(nil) + noTags + bool(false) + bool(true) + noTags)
        #expect(q4 == with(DescribeConfigsRequest()) {
            $0.includeDocumentation = true; $0.resources = [with(.init()) { $0.resourceType = 2; $0.resourceName = "t" }]
        })
        // configs: name value read_only config_source is_sensitive [synonyms] config_type documentation TAG_BUFFER
        let r4 = try decodeExactly(DescribeConfigsResponse.self, version: 4,
            i32(0) + carr(1) + i16(0) + cstr(nil) + i8(2) + cstr("t")
                + carr(1) + cstr("segment.bytes") + cstr("1024") + bool(true) + i8(1) + bool(false) + carr(0) + i8(3) + cstr("Segment size.") + noTags
                + noTags + noTags)
        #expect(r4 == with(DescribeConfigsResponse()) {
            $0.results = [with(.init()) {
                $0.resourceType = 2; $0.resourceName = "t"
                $0.configs = [with(.init()) {
                    $0.name = "segment.bytes"; $0.value = "1024"; $0.readOnly = true; $0.configSource = 1
                    $0.configType = 3; $0.documentation = "Segment size."
                }]
            }]
        })
    }

    @Test func alterConfigsV0AndFlexibleV2() throws {
        // AlterConfigs Request (Version: 0) => [resource_type resource_name [name value]] validate_only
        let q0 = try decodeExactly(AlterConfigsRequest.self, version: 0,
            arr(1) + i8(2) + str("t") + arr(2) + str("retention.ms") + str("100") + str("cleanup.policy") + str(nil) + bool(true))
        let resource = with(AlterConfigsRequest.AlterConfigsResource()) {
            $0.resourceType = 2; $0.resourceName = "t"
            $0.configs = [with(.init()) { $0.name = "retention.ms"; $0.value = "100" }, with(.init()) { $0.name = "cleanup.policy" }]
        }
        #expect(q0 == with(AlterConfigsRequest()) { $0.resources = [resource]; $0.validateOnly = true })
        // Response (Version: 0) => throttle_time_ms [error_code error_message resource_type resource_name]
        let r0 = try decodeExactly(AlterConfigsResponse.self, version: 0,
            i32(0) + arr(1) + i16(40) + str("bad value") + i8(2) + str("t"))
        let response = with(AlterConfigsResponse.AlterConfigsResourceResponse()) {
            $0.errorCode = 40; $0.errorMessage = "bad value"; $0.resourceType = 2; $0.resourceName = "t"
        }
        #expect(r0 == with(AlterConfigsResponse()) { $0.responses = [response] })
        // v2 (flexible)
        let q2 = try decodeExactly(AlterConfigsRequest.self, version: 2,
            carr(1) + i8(2) + cstr("t") + carr(2) + cstr("retention.ms") + cstr("100") + noTags + cstr("cleanup.policy") + cstr(nil) + noTags
                + noTags + bool(true) + noTags)
        #expect(q2 == q0)
        let r2 = try decodeExactly(AlterConfigsResponse.self, version: 2,
            i32(0) + carr(1) + i16(40) + cstr("bad value") + i8(2) + cstr("t") + noTags + noTags)
        #expect(r2 == r0)
    }

    @Test func incrementalAlterConfigsV0AndFlexibleV1() throws {
        // IncrementalAlterConfigs Request (Version: 0) => [resource_type resource_name [name config_operation value]] validate_only
        let q0 = try decodeExactly(IncrementalAlterConfigsRequest.self, version: 0,
            arr(1) + i8(2) + str("t") + arr(2) + str("retention.ms") + i8(0) + str("100") + str("cleanup.policy") + i8(1) + str(nil)
                + bool(false))
        let resource = with(IncrementalAlterConfigsRequest.AlterConfigsResource()) {
            $0.resourceType = 2; $0.resourceName = "t"
            $0.configs = [
                with(.init()) { $0.name = "retention.ms"; $0.configOperation = 0; $0.value = "100" },
                with(.init()) { $0.name = "cleanup.policy"; $0.configOperation = 1 },
            ]
        }
        #expect(q0 == with(IncrementalAlterConfigsRequest()) { $0.resources = [resource] })
        // Response (Version: 0) => throttle_time_ms [error_code error_message resource_type resource_name]
        let r0 = try decodeExactly(IncrementalAlterConfigsResponse.self, version: 0,
            i32(2) + arr(1) + i16(0) + str(nil) + i8(2) + str("t"))
        #expect(r0 == with(IncrementalAlterConfigsResponse()) {
            $0.throttleTimeMs = 2; $0.responses = [with(.init()) { $0.resourceType = 2; $0.resourceName = "t" }]
        })
        // v1 (flexible)
        let q1 = try decodeExactly(IncrementalAlterConfigsRequest.self, version: 1,
            carr(1) + i8(2) + cstr("t") + carr(2) + cstr("retention.ms") + i8(0) + cstr("100") + noTags
                + cstr("cleanup.policy") + i8(1) + cstr(nil) + noTags + noTags + bool(false) + noTags)
        #expect(q1 == q0)
        let r1 = try decodeExactly(IncrementalAlterConfigsResponse.self, version: 1,
            i32(2) + carr(1) + i16(0) + cstr(nil) + i8(2) + cstr("t") + noTags + noTags)
        #expect(r1 == r0)
    }

    @Test func describeClusterFlexibleV0AndV1EndpointType() throws {
        // DescribeCluster is flexible from v0. Request (Version: 0) => include_cluster_authorized_operations TAG_BUFFER
        let q0 = try decodeExactly(DescribeClusterRequest.self, version: 0, bool(true) + noTags)
        #expect(q0 == with(DescribeClusterRequest()) { $0.includeClusterAuthorizedOperations = true })
        // Response (Version: 0) => throttle_time_ms error_code error_message cluster_id controller_id
        //   [broker_id host port rack TAG_BUFFER] cluster_authorized_operations TAG_BUFFER
        let r0 = try decodeExactly(DescribeClusterResponse.self, version: 0,
            i32(0) + i16(0) + cstr(nil) + cstr("brook-1") + i32(1)
                + carr(1) + i32(1) + cstr("localhost") + i32(9092) + cstr(nil) + noTags + i32(0x0DF8) + noTags)
        let broker = with(DescribeClusterResponse.DescribeClusterBroker()) { $0.brokerId = 1; $0.host = "localhost"; $0.port = 9092 }
        let cluster = with(DescribeClusterResponse()) {
            $0.clusterId = "brook-1"; $0.controllerId = 1; $0.brokers = [broker]; $0.clusterAuthorizedOperations = 0x0DF8
        }
        #expect(r0 == cluster)
        // v1 => + endpoint_type (request last; response after error_message)
        let q1 = try decodeExactly(DescribeClusterRequest.self, version: 1, bool(false) + i8(2) + noTags)
        #expect(q1 == with(DescribeClusterRequest()) { $0.endpointType = 2 })
        let r1 = try decodeExactly(DescribeClusterResponse.self, version: 1,
            i32(0) + i16(0) + cstr(nil) + i8(2) + cstr("brook-1") + i32(1)
                + carr(1) + i32(1) + cstr("localhost") + i32(9092) + cstr("rack-a") + noTags + i32(0x0DF8) + noTags)
        #expect(r1 == with(cluster) { $0.endpointType = 2; $0.brokers = [with(broker) { $0.rack = "rack-a" }] })
    }
}
