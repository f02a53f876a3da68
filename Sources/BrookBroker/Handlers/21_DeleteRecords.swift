import BrookProtocol

extension Broker {
    /// Moves the log start offset; offset -1 means the high watermark.
    func handleDeleteRecords(_ r: DeleteRecordsRequest, _ ctx: RequestContext) -> DeleteRecordsResponse {
        var resp = DeleteRecordsResponse()
        resp.topics = r.topics.map { t in
            var tr = DeleteRecordsResponse.DeleteRecordsTopicResult()
            tr.name = t.name
            tr.partitions = t.partitions.map { p in
                var pr = DeleteRecordsResponse.DeleteRecordsPartitionResult()
                pr.partitionIndex = p.partitionIndex
                guard let state = partition(t.name, p.partitionIndex), topic(named: t.name)?.isInternal == false else {
                    pr.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    pr.lowWatermark = -1
                    return pr
                }
                let target = p.offset == -1 ? state.highWatermark : p.offset
                guard target >= 0, target <= state.highWatermark else {
                    pr.errorCode = ErrorCode.offsetOutOfRange.rawValue
                    pr.lowWatermark = state.logStartOffset
                    return pr
                }
                do {
                    try state.log.deleteRecords(before: target)
                    pr.lowWatermark = state.logStartOffset
                } catch {
                    pr.errorCode = ErrorCode.kafkaStorageError.rawValue
                    pr.lowWatermark = state.logStartOffset
                }
                return pr
            }
            return tr
        }
        return resp
    }
}
