import BrookProtocol
import NIOCore

/// `__consumer_offsets` partition 0 as the group coordinator sees it: appends go through the
/// same validation-free path and group commit as produce (the coordinator builds the batches).
struct BrokerOffsetsLog: OffsetsLog {
    let partition: PartitionState
    let committer: GroupCommitter
    let policy: FlushPolicy

    func appendDurably(_ batches: ByteBuffer) async throws -> Int64 {
        var infos: [BatchInfo] = []
        var index = batches.readerIndex
        while index < batches.writerIndex {
            let h = try RecordBatchHeader(parsing: batches, at: index)
            infos.append(BatchInfo(producerId: -1, producerEpoch: -1, baseSequence: -1, lastOffsetDelta: h.lastOffsetDelta,
                                   recordCount: h.recordCount, maxTimestamp: h.maxTimestamp))
            index += h.totalSize
        }
        let outcome = try partition.append(batches, info: infos, logAppendTime: nil)
        if policy == .fsync {
            try await committer.waitDurable(partition.log, upTo: outcome.lastOffset)
        }
        partition.advanceHighWatermark(to: outcome.lastOffset + 1)
        return outcome.firstOffset
    }

    func read(from offset: Int64, maxBytes: Int) throws -> ByteBuffer {
        try partition.log.read(from: offset, maxBytes: maxBytes, minOneBatch: true, upTo: partition.log.logEndOffset)
    }

    var logStartOffset: Int64 { partition.logStartOffset }
    var logEndOffset: Int64 { partition.logEndOffset }

    func deleteRecords(before offset: Int64) throws {
        try partition.log.deleteRecords(before: offset)
    }
}
