@testable import BrookOps
import Foundation
import Testing

/// The table, JSON, Prometheus text and Burrow-shaped answers of one known report.
@Suite("Lag rendering")
struct LagRenderingTests {
    /// Two observations of group "g" (t-0 lagging with a known first record, t-1 caught up).
    static func report() -> LagReport {
        var e = LagEvaluator(cluster: "prod", configuration: .init(maxLagSeconds: 60))
        let owner = PartitionOwner(consumerId: "c-1", host: "/10.0.0.1", clientId: "app \"x\"")
        func o(_ t: Int64, _ c0: Int64, _ end0: Int64) -> LagObservation {
            LagObservation(timeMs: t, groups: [GroupObservation(group: "g", partitions: [
                PartitionObservation(topic: "t", partition: 0, committedOffset: c0, logEndOffset: end0, logStartOffset: 2,
                                     firstUnconsumedTimestampMs: t - 2500, owner: owner),
                PartitionObservation(topic: "t", partition: 1, committedOffset: 7, logEndOffset: 7, owner: nil),
            ])])
        }
        _ = e.observe(o(1_000_000, 10, 30))
        return e.observe(o(1_010_000, 20, 45))
    }

    @Test func tableHasKafkaConsumerGroupsColumnsPlusThree() {
        #expect(LagTable.header == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID",
                                    "STATUS", "LAG-SECONDS", "ETA"])
        let rows = LagTable.rows(Self.report())
        #expect(rows[0] == ["g", "t", "0", "20", "45", "25", "c-1", "/10.0.0.1", "app \"x\"", "WARN", "2.500", "never"])
        #expect(rows[1] == ["g", "t", "1", "7", "7", "0", "-", "-", "-", "OK", "0.000", "0s"])
        #expect(LagTable.summary(Self.report())[0].hasPrefix("group g: WARN"))
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let text = try LagJSON.encode(Self.report())
        #expect(!text.contains("\n"))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["cluster", "time_ms", "observations", "window_rules_applied", "groups"])
        let g = try #require((obj["groups"] as? [[String: Any]])?.first)
        #expect(Set(g.keys) == ["group", "state", "status", "complete", "total_lag", "max_lag", "max_lag_seconds", "partitions"])
        #expect(g["status"] as? String == "WARN")
        let p = try #require((g["partitions"] as? [[String: Any]])?.first)
        #expect(Set(p.keys) == ["topic", "partition", "current_offset", "log_end_offset", "log_start_offset", "lag", "lag_seconds", "owner",
                                "status", "window_status", "over_max_lag_seconds", "consumption_rate", "production_rate", "eta_seconds",
                                "catching_up", "window_start", "window_end", "window_samples", "complete"])
        #expect(p["lag_seconds"] as? Double == 2.5)
        #expect((p["owner"] as? [String: Any])?["client_id"] as? String == "app \"x\"")
        #expect(p["eta_seconds"] is NSNull)
        // It decodes back to the same report.
        #expect(try JSONDecoder().decode(LagReport.self, from: Data(text.utf8)) == Self.report())
    }

    @Test func prometheusHasKafkaLagExporterNamesAndEscapedLabels() {
        let text = LagPrometheus.render(Self.report())
        for name in ["kafka_consumergroup_group_offset", "kafka_consumergroup_group_lag", "kafka_consumergroup_group_lag_seconds",
                     "kafka_consumergroup_group_max_lag", "kafka_consumergroup_group_max_lag_seconds", "kafka_consumergroup_group_sum_lag",
                     "kafka_consumergroup_group_topic_sum_lag", "kafka_partition_latest_offset", "kafka_partition_earliest_offset",
                     "kafka_consumergroup_group_status"] {
            #expect(text.contains("# TYPE \(name) gauge\n"), "\(name)")
        }
        #expect(text.contains(#"kafka_consumergroup_group_lag{cluster_name="prod",group="g",topic="t",partition="0",member_host="/10.0.0.1",consumer_id="c-1",client_id="app \"x\""} 25"#))
        #expect(text.contains(#"kafka_consumergroup_group_lag_seconds{cluster_name="prod",group="g",topic="t",partition="0",member_host="/10.0.0.1",consumer_id="c-1",client_id="app \"x\""} 2.5"#))
        #expect(text.contains(#"kafka_consumergroup_group_sum_lag{cluster_name="prod",group="g"} 25"#))
        #expect(text.contains(#"kafka_consumergroup_group_topic_sum_lag{cluster_name="prod",group="g",topic="t"} 25"#))
        #expect(text.contains(#"kafka_partition_earliest_offset{cluster_name="prod",topic="t",partition="0"} 2"#))
        #expect(text.contains(#"kafka_consumergroup_group_status{cluster_name="prod",group="g"} 2"#))
        #expect(!text.contains("NaN"))
        // Every sample line is NAME{labels} VALUE.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.range(of: #"^[a-z_]+\{.*\} -?[0-9.e+]+$"#, options: .regularExpression) != nil, "\(line)")
        }
    }

    @Test func unknownTimeLagIsLeftOutNotNaN() {
        var e = LagEvaluator()
        let r = e.observe(LagObservation(timeMs: 1000, groups: [GroupObservation(group: "g", partitions: [
            PartitionObservation(topic: "t", partition: 0, committedOffset: 1, logEndOffset: 5)
        ])]))
        let text = LagPrometheus.render(r)
        #expect(!text.contains("kafka_consumergroup_group_lag_seconds{"))
        #expect(!text.contains("NaN"))
    }

    @Test func burrowRoutesAnswerWithBurrowFields() throws {
        let r = Self.report()
        func json(_ path: String) throws -> (Int, [String: Any]) {
            let a = LagHTTPRoutes.respond(path: path, host: "h:1", report: r)
            #expect(a.contentType == "application/json")
            return (a.status, try #require(try JSONSerialization.jsonObject(with: Data(a.body.utf8)) as? [String: Any]))
        }
        let (s1, clusters) = try json("/v3/kafka")
        #expect(s1 == 200 && clusters["clusters"] as? [String] == ["prod"] && clusters["error"] as? Bool == false)
        #expect((clusters["request"] as? [String: Any])?["url"] as? String == "/v3/kafka")
        let (_, consumers) = try json("/v3/kafka/prod/consumer")
        #expect(consumers["consumers"] as? [String] == ["g"])
        let (_, lag) = try json("/v3/kafka/prod/consumer/g/lag")
        let status = try #require(lag["status"] as? [String: Any])
        #expect(Set(status.keys) == ["cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag", "totallag"])
        #expect(status["status"] as? String == "WARN" && status["totallag"] as? Int == 25 && status["partition_count"] as? Int == 2)
        let parts = try #require(status["partitions"] as? [[String: Any]])
        #expect(parts.count == 2)
        #expect(Set(parts[0].keys) == ["topic", "partition", "owner", "client_id", "status", "start", "end", "current_lag", "complete"])
        #expect(Set(try #require(parts[0]["end"] as? [String: Any]).keys) == ["offset", "timestamp", "observedAt", "lag"])
        // /status keeps only the partitions that are not OK.
        let (_, st) = try json("/v3/kafka/prod/consumer/g/status")
        #expect(((st["status"] as? [String: Any])?["partitions"] as? [[String: Any]])?.count == 1)
        let (s404, missing) = try json("/v3/kafka/prod/consumer/nope/status")
        #expect(s404 == 404 && missing["error"] as? Bool == true)
        let (s404c, _) = try json("/v3/kafka/other/consumer")
        #expect(s404c == 404)
        let metrics = LagHTTPRoutes.respond(path: "/metrics", host: "", report: r)
        #expect(metrics.status == 200 && metrics.body.contains("kafka_consumergroup_group_lag{"))
    }
}
