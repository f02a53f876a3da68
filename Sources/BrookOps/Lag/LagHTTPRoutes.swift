import Foundation

/// An HTTP answer of `brook lag serve`, independent of the server that sends it.
public struct LagHTTPResponse: Sendable, Hashable {
    /// The HTTP status code.
    public var status: Int
    /// The `Content-Type` header.
    public var contentType: String
    /// The body, UTF-8.
    public var body: String

    /// An answer.
    public init(status: Int, contentType: String, body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// The routes of `brook lag serve`, without I/O: `/metrics` (Prometheus text) and Burrow's v3
/// API shape (`/v3/kafka`, `/v3/kafka/{cluster}/consumer`,
/// `/v3/kafka/{cluster}/consumer/{group}/status` with the partitions that are not OK, and
/// `…/lag` with all of them), answered from the latest report.
public enum LagHTTPRoutes {
    static let prometheusType = "text/plain; version=0.0.4; charset=utf-8"
    static let jsonType = "application/json"

    /// The answer to `GET path` given the latest report (nil before the first evaluation).
    public static func respond(path rawPath: String, host: String, report: LagReport?) -> LagHTTPResponse {
        let path = String(rawPath.split(separator: "?", maxSplits: 1).first ?? "/")
        let parts = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        let request = BurrowRequest(url: path, host: host)
        if path == "/metrics" {
            return LagHTTPResponse(status: 200, contentType: prometheusType, body: report.map(LagPrometheus.render) ?? "")
        }
        if path == "/" {
            return LagHTTPResponse(status: 200, contentType: "text/plain; charset=utf-8",
                                   body: "brook lag serve: /metrics, /v3/kafka, /v3/kafka/{cluster}/consumer, /v3/kafka/{cluster}/consumer/{group}/status, …/lag\n")
        }
        guard parts.count >= 2, parts[0] == "v3", parts[1] == "kafka" else {
            return json(404, BurrowError(error: true, message: "not found", request: request))
        }
        let clusters = report.map { [$0.cluster] } ?? []
        if parts.count == 2 {
            return json(200, BurrowClusterList(error: false, message: "cluster list returned", clusters: clusters, request: request))
        }
        guard let report, parts[2] == report.cluster else {
            return json(404, BurrowError(error: true, message: "cluster not found", request: request))
        }
        if parts.count == 4, parts[3] == "consumer" {
            return json(200, BurrowConsumerList(error: false, message: "consumer list returned", consumers: report.groups.map(\.group), request: request))
        }
        if parts.count == 6, parts[3] == "consumer", parts[5] == "status" || parts[5] == "lag" {
            guard let g = report.groups.first(where: { $0.group == parts[4] }) else {
                return json(404, BurrowError(error: true, message: "cluster or consumer not found", request: request))
            }
            return json(200, BurrowStatusResponse(error: false, message: "consumer status returned",
                                                  status: BurrowGroupStatus(report.cluster, g, showAll: parts[5] == "lag"), request: request))
        }
        return json(404, BurrowError(error: true, message: "not found", request: request))
    }

    static func json(_ status: Int, _ value: some Encodable) -> LagHTTPResponse {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? e.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return LagHTTPResponse(status: status, contentType: jsonType, body: body + "\n")
    }
}

// Burrow's v3 response fields (its httpserver and protocol packages), in Brook's types.

struct BurrowRequest: Encodable {
    var url: String
    var host: String
}

struct BurrowError: Encodable {
    var error: Bool
    var message: String
    var request: BurrowRequest
}

struct BurrowClusterList: Encodable {
    var error: Bool
    var message: String
    var clusters: [String]
    var request: BurrowRequest
}

struct BurrowConsumerList: Encodable {
    var error: Bool
    var message: String
    var consumers: [String]
    var request: BurrowRequest
}

struct BurrowStatusResponse: Encodable {
    var error: Bool
    var message: String
    var status: BurrowGroupStatus
    var request: BurrowRequest
}

/// Burrow's stored commit: offset, commit time, when it was seen, and lag then.
struct BurrowOffset: Encodable {
    var offset: Int64
    var timestamp: Int64
    var observedAt: Int64
    var lag: Int64
    init(_ s: CommitSample) {
        offset = s.offset
        timestamp = s.timestampMs
        observedAt = s.timestampMs
        lag = s.lag
    }
}

struct BurrowPartitionStatus: Encodable {
    var topic: String
    var partition: Int32
    var owner: String
    var clientId: String
    var status: String
    var start: BurrowOffset?
    var end: BurrowOffset?
    var currentLag: Int64
    var complete: Double

    init(_ p: PartitionLag) {
        topic = p.topic
        partition = p.partition
        owner = p.owner?.host ?? ""
        clientId = p.owner?.clientId ?? ""
        status = p.status.name
        start = p.windowStart.map(BurrowOffset.init)
        end = p.windowEnd.map(BurrowOffset.init)
        currentLag = p.lag ?? 0
        complete = p.complete
    }

    enum CodingKeys: String, CodingKey {
        case topic, partition, owner, clientId = "client_id", status, start, end, currentLag = "current_lag", complete
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(topic, forKey: .topic)
        try c.encode(partition, forKey: .partition)
        try c.encode(owner, forKey: .owner)
        try c.encode(clientId, forKey: .clientId)
        try c.encode(status, forKey: .status)
        try c.encode(start, forKey: .start)
        try c.encode(end, forKey: .end)
        try c.encode(currentLag, forKey: .currentLag)
        try c.encode(complete, forKey: .complete)
    }
}

struct BurrowGroupStatus: Encodable {
    var cluster: String
    var group: String
    var status: String
    var complete: Double
    var partitions: [BurrowPartitionStatus]
    var partitionCount: Int
    var maxlag: BurrowPartitionStatus?
    var totallag: Int64

    /// `showAll` false keeps only the partitions that are not OK, as Burrow's `/status` does.
    init(_ cluster: String, _ g: GroupLag, showAll: Bool) {
        self.cluster = cluster
        group = g.group
        status = g.status.name
        complete = g.complete
        let all = g.partitions.filter { $0.currentOffset != nil }
        partitions = all.filter { showAll || $0.status > .ok }.map(BurrowPartitionStatus.init)
        partitionCount = all.count
        maxlag = all.max { ($0.lag ?? 0) < ($1.lag ?? 0) }.map(BurrowPartitionStatus.init)
        totallag = g.totalLag
    }

    enum CodingKeys: String, CodingKey {
        case cluster, group, status, complete, partitions, partitionCount = "partition_count", maxlag, totallag
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(group, forKey: .group)
        try c.encode(status, forKey: .status)
        try c.encode(complete, forKey: .complete)
        try c.encode(partitions, forKey: .partitions)
        try c.encode(partitionCount, forKey: .partitionCount)
        try c.encode(maxlag, forKey: .maxlag)
        try c.encode(totallag, forKey: .totallag)
    }
}
