import Foundation
import Brook
import BrookProtocol

/// Java client properties (`--producer-props k=v`, `--producer.config FILE`,
/// `--consumer.config FILE`) mapped onto Brook's configurations, so a perf-test command line
/// carries over. A property Brook has no equivalent for is an error, never silently ignored;
/// serializer and deserializer classes are accepted and ignored (records are bytes here).
public enum ClientProperties {
    /// Parses a Java properties file: `key=value`, `key: value` or `key value`; `#` and `!`
    /// start comments; blank lines skipped. (No line continuations or escapes: client configs
    /// do not use them.)
    public static func parseFile(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" || $0 == " " }) else {
                out.append((line, ""))
                continue
            }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
            out.append((key, value))
        }
        return out
    }

    /// Parses `k=v` arguments.
    public static func parsePairs(_ pairs: [String]) throws -> [(String, String)] {
        try pairs.map { p in
            guard let eq = p.firstIndex(of: "=") else { throw LoadTestError.invalid("producer property \(p) is not key=value") }
            return (String(p[..<eq]), String(p[p.index(after: eq)...]))
        }
    }

    static let ignored: Set<String> = [
        "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    ]

    /// Applies producer properties; `bootstrap.servers` is returned for the caller to use.
    @discardableResult
    public static func apply(producer props: [(String, String)], to c: inout ProducerConfiguration) throws -> String? {
        var bootstrap: String?
        for (k, v) in props {
            switch k {
            case "bootstrap.servers": bootstrap = v
            case "client.id": c.client.clientId = v
            case "acks":
                switch v.lowercased() {
                case "all", "-1": c.acks = .all
                case "1": c.acks = .leader
                case "0": c.acks = .none
                default: throw bad(k, v, "all, -1, 1 or 0")
                }
            case "batch.size": c.batchSize = try int(k, v, min: 1)
            case "linger.ms": c.linger = .milliseconds(try int(k, v, min: 0))
            case "compression.type": c.compression = try codec(k, v)
            case "compression.level": c.compressionLevel = try int(k, v, min: Int.min)
            case "max.in.flight.requests.per.connection": c.maxInFlightRequestsPerConnection = try int(k, v, min: 1)
            case "buffer.memory": c.bufferMemory = try int(k, v, min: 1)
            case "enable.idempotence": c.enableIdempotence = try bool(k, v)
            case "retries": c.retries = try int(k, v, min: 0)
            case "delivery.timeout.ms": c.deliveryTimeout = .milliseconds(try int(k, v, min: 1))
            case "request.timeout.ms": c.requestTimeout = .milliseconds(try int(k, v, min: 1))
            case "retry.backoff.ms": c.retryBackoff = .milliseconds(try int(k, v, min: 0))
            case "retry.backoff.max.ms": c.retryBackoffMax = .milliseconds(try int(k, v, min: 0))
            case "max.request.size": c.maxRequestSize = try int(k, v, min: 1)
            case "max.block.ms": c.maxBlock = .milliseconds(try int(k, v, min: 0))
            case _ where ignored.contains(k): continue
            default: throw LoadTestError.invalid("unknown producer property \(k) (Brook's producer has no equivalent)")
            }
        }
        // Java turns idempotence off by default unless acks=all; an explicit true with other acks
        // is a configuration error there and here.
        if c.acks != .all {
            if props.contains(where: { $0.0 == "enable.idempotence" && $0.1.lowercased() == "true" }) {
                throw LoadTestError.invalid("enable.idempotence=true needs acks=all")
            }
            c.enableIdempotence = false
        }
        return bootstrap
    }

    /// Applies consumer properties; `bootstrap.servers` is returned for the caller to use.
    /// `max.prefetch.bytes` is Brook's own bound on fetched, unconsumed data.
    @discardableResult
    public static func apply(consumer props: [(String, String)], to c: inout ConsumerConfiguration) throws -> String? {
        var bootstrap: String?
        for (k, v) in props {
            switch k {
            case "bootstrap.servers": bootstrap = v
            case "client.id": c.client.clientId = v
            case "group.id": c.groupId = v
            case "group.instance.id": c.group.groupInstanceId = v
            case "fetch.min.bytes": c.fetch.minBytes = Int32(try int(k, v, min: 0))
            case "fetch.max.bytes": c.fetch.maxBytes = Int32(try int(k, v, min: 1))
            case "max.partition.fetch.bytes": c.fetch.maxPartitionBytes = Int32(try int(k, v, min: 1))
            case "fetch.max.wait.ms": c.fetch.maxWait = .milliseconds(try int(k, v, min: 0))
            case "max.prefetch.bytes": c.fetch.maxPrefetchBytes = try int(k, v, min: 1)
            case "check.crcs": c.fetch.checkCRCs = try bool(k, v)
            case "allow.auto.create.topics": c.fetch.allowAutoCreateTopics = try bool(k, v)
            case "session.timeout.ms": c.group.sessionTimeout = .milliseconds(try int(k, v, min: 1))
            case "heartbeat.interval.ms": c.group.heartbeatInterval = .milliseconds(try int(k, v, min: 1))
            case "max.poll.interval.ms": c.group.rebalanceTimeout = .milliseconds(try int(k, v, min: 1))
            case "enable.auto.commit": c.offsets.enableAutoCommit = try bool(k, v)
            case "auto.commit.interval.ms": c.offsets.autoCommitInterval = .milliseconds(try int(k, v, min: 1))
            case "auto.offset.reset":
                guard let r = AutoOffsetReset(rawValue: v.lowercased()) else { throw bad(k, v, "earliest, latest or none") }
                c.offsets.autoOffsetReset = r
            case _ where ignored.contains(k): continue
            default: throw LoadTestError.invalid("unknown consumer property \(k) (Brook's consumer has no equivalent)")
            }
        }
        return bootstrap
    }

    static func int(_ k: String, _ v: String, min: Int) throws -> Int {
        guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= min else { throw bad(k, v, "an integer ≥ \(min)") }
        return n
    }

    static func bool(_ k: String, _ v: String) throws -> Bool {
        switch v.lowercased() {
        case "true": return true
        case "false": return false
        default: throw bad(k, v, "true or false")
        }
    }

    static func codec(_ k: String, _ v: String) throws -> CompressionCodec {
        guard let c = CompressionCodec.allCases.first(where: { "\($0)" == v.lowercased() }) else {
            throw bad(k, v, "none, gzip, snappy, lz4 or zstd")
        }
        return c
    }

    static func bad(_ k: String, _ v: String, _ expected: String) -> LoadTestError {
        .invalid("\(k)=\(v): expected \(expected)")
    }
}
