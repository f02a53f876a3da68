import BrookProtocol
import NIOCore

extension KafkaAdmin {
    /// The timestamp of the first record at or after each given offset of `topic`, read with one
    /// Fetch per leader.
    ///
    /// Lag tools use it for the exact time lag of a group: the age of the first record the group
    /// has not consumed yet. Control records (transaction markers) are skipped, since a group
    /// never consumes them. A partition whose offset is at the log end, or whose fetch found no
    /// data record, is absent from the result; a partition error throws
    /// ``KafkaClientError/broker(_:resource:message:)``.
    ///
    /// - Parameters:
    ///   - topic: The topic to read.
    ///   - offsets: The offset to read at, per partition (a group's committed offsets).
    ///   - maxBytesPerPartition: How much of each partition to fetch; the broker returns at least
    ///     one whole batch even when it is larger.
    /// - Returns: The record timestamp (milliseconds since the epoch) per partition.
    public func firstRecordTimestamps(topic: String, at offsets: [Int32: Int64], maxBytesPerPartition: Int32 = 64 * 1024) async throws -> [Int32: Int64] {
        guard !offsets.isEmpty else { return [:] }
        let t = try await cluster.metadata(for: topic)
        var byLeader: [Int32: [Int32: Int64]] = [:]
        for (p, o) in offsets {
            guard Int(p) < t.partitions.count else {
                throw KafkaClientError.broker(.unknownTopicOrPartition, resource: "\(topic)-\(p)", message: nil)
            }
            byLeader[t.partitions[Int(p)].leader, default: [:]][p] = o
        }
        var result: [Int32: Int64] = [:]
        for (leader, parts) in byLeader {
            let conn = try await cluster.connection(to: leader)
            var req = FetchRequest()
            req.replicaId = -1
            // No waiting: the caller wants what is there now, and an empty answer means "nothing".
            req.maxWaitMs = 0
            req.minBytes = 0
            req.maxBytes = Int32(clamping: Int(maxBytesPerPartition) * max(parts.count, 1))
            // Read committed: a group with read_committed never sees aborted records either way,
            // and uncommitted ones are not yet "waiting" for any consumer.
            req.isolationLevel = 1
            req.sessionId = 0
            req.sessionEpoch = -1
            var ft = FetchRequest.FetchTopic()
            ft.topic = topic
            ft.partitions = parts.sorted { $0.key < $1.key }.map { p, o in
                var x = FetchRequest.FetchPartition()
                x.partition = p
                x.fetchOffset = o
                x.partitionMaxBytes = maxBytesPerPartition
                x.currentLeaderEpoch = -1
                x.logStartOffset = -1
                return x
            }
            req.topics = [ft]
            // Versions 13+ name topics by id only; the consumer stays below them for the same reason.
            let version = try min(conn.version(for: .fetch), 12)
            let resp = try await conn.send(req, version: version)
            try KafkaClientError.check(resp.errorCode, resource: "fetch \(topic)")
            for rt in resp.responses {
                for rp in rt.partitions {
                    if rp.errorCode == ErrorCode.offsetOutOfRange.rawValue { continue }
                    try KafkaClientError.check(rp.errorCode, resource: "\(topic)-\(rp.partitionIndex)")
                    guard let records = rp.records, let from = parts[rp.partitionIndex] else { continue }
                    if let ts = try Self.firstDataTimestamp(in: records, from: from) { result[rp.partitionIndex] = ts }
                }
            }
        }
        return result
    }

    /// The timestamp of the first non-control record at or after `offset` in fetched batches.
    static func firstDataTimestamp(in records: ByteBuffer, from offset: Int64) throws -> Int64? {
        var it = RecordBatchIterator(records)
        while let batch = try it.next() {
            if batch.header.isControl { continue }
            // A batch ending before the offset (fetches start at a batch boundary) holds nothing wanted.
            if batch.header.baseOffset + Int64(batch.header.lastOffsetDelta) < offset { continue }
            for r in try batch.decodeRecords() where batch.offset(of: r) >= offset {
                return batch.timestamp(of: r)
            }
        }
        return nil
    }
}
