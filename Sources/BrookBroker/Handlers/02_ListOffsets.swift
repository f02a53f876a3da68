import BrookProtocol

extension Broker {
    static let latestTimestamp: Int64 = -1
    static let earliestTimestamp: Int64 = -2
    static let maxTimestamp: Int64 = -3

    func handleListOffsets(_ r: ListOffsetsRequest, _ ctx: RequestContext) -> ListOffsetsResponse {
        var resp = ListOffsetsResponse()
        resp.topics = r.topics.map { t in
            var tr = ListOffsetsResponse.ListOffsetsTopicResponse()
            tr.name = t.name
            tr.partitions = t.partitions.map { p in
                var pr = ListOffsetsResponse.ListOffsetsPartitionResponse()
                pr.partitionIndex = p.partitionIndex
                guard let state = partition(t.name, p.partitionIndex) else {
                    pr.errorCode = ErrorCode.unknownTopicOrPartition.rawValue
                    return pr
                }
                var offset: Int64 = -1
                var ts: Int64 = -1
                switch p.timestamp {
                case Self.latestTimestamp:
                    offset = state.highWatermark
                case Self.earliestTimestamp:
                    offset = state.logStartOffset
                case Self.maxTimestamp:
                    if let found = try? state.log.maxTimestampOffset() {
                        offset = found.offset
                        ts = found.timestamp
                    }
                default:
                    if let found = try? state.log.offset(forTimestamp: p.timestamp), found.offset < state.highWatermark {
                        offset = found.offset
                        ts = found.timestamp
                    }
                }
                pr.offset = offset
                pr.timestamp = ts
                pr.leaderEpoch = offset >= 0 ? 0 : -1
                if ctx.version == 0 { pr.oldStyleOffsets = offset >= 0 ? [offset] : [] }
                return pr
            }
            return tr
        }
        return resp
    }
}
