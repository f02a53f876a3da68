import BrookProtocol
import NIOCore

/// Group administration: ListGroups, DescribeGroups, DeleteGroups.
extension GroupCoordinatorState {
    // MARK: - ListGroups / DescribeGroups

    func list(_ r: ListGroupsRequest, version: Int16) -> ListGroupsResponse {
        var response = ListGroupsResponse()
        if let e = unavailableError {
            response.errorCode = e.rawValue
            return response
        }
        let filter = version >= 4 ? Set(r.statesFilter.map { $0.lowercased() }) : []
        response.groups = groups.values
            .filter { !$0.is(.dead) && (filter.isEmpty || filter.contains($0.state.rawValue.lowercased())) }
            .sorted { $0.groupId < $1.groupId }
            .map { g in
                var lg = ListGroupsResponse.ListedGroup()
                lg.groupId = g.groupId
                lg.protocolType = g.protocolType ?? ""
                lg.groupState = g.state.rawValue
                return lg
            }
        return response
    }

    /// READ, DELETE and DESCRIBE (ACL operation codes 3, 6, 8): Brook has no authorizer, so every
    /// client may do everything a group allows.
    static let groupAuthorizedOperations: Int32 = (1 << 3) | (1 << 6) | (1 << 8)

    func describe(_ r: DescribeGroupsRequest, version: Int16) -> DescribeGroupsResponse {
        var response = DescribeGroupsResponse()
        response.groups = r.groups.map { id in
            var d = DescribeGroupsResponse.DescribedGroup()
            d.groupId = id
            if version >= 3 && r.includeAuthorizedOperations { d.authorizedOperations = Self.groupAuthorizedOperations }
            if let e = unavailableError {
                d.errorCode = e.rawValue
                return d
            }
            guard let g = groups[id], !g.is(.dead) else {
                d.groupState = ClassicGroupState.dead.rawValue
                return d
            }
            d.groupState = g.state.rawValue
            d.protocolType = g.protocolType ?? ""
            let stable = g.is(.stable)
            d.protocolData = stable ? (g.protocolName ?? "") : ""
            d.members = g.orderedMembers.map { m in
                var dm = DescribeGroupsResponse.DescribedGroupMember()
                dm.memberId = m.memberId
                dm.groupInstanceId = m.groupInstanceId
                dm.clientId = m.clientId
                dm.clientHost = m.clientHost
                if stable, let p = g.protocolName {
                    dm.memberMetadata = m.metadata(for: p) ?? ByteBuffer()
                    dm.memberAssignment = m.assignment
                }
                return dm
            }
            return d
        }
        return response
    }

    // MARK: - DeleteGroups

    func deleteGroups(_ r: DeleteGroupsRequest, now: Int64, waiter: CheckedContinuation<Void, Never>, _ effects: inout GroupEffects) -> DeleteGroupsResponse {
        var response = DeleteGroupsResponse()
        var records: [ConsumerOffsets.Record] = []
        for id in r.groupsNames {
            var result = DeleteGroupsResponse.DeletableGroupResult()
            result.groupId = id
            if let e = unavailableError {
                result.errorCode = e.rawValue
            } else if let g = groups[id], !g.is(.dead) {
                if g.is(.empty) {
                    g.transition(to: .dead, now: now)
                    groups.removeValue(forKey: id)
                    for tp in g.offsets.keys.sorted() {
                        records.append(.offsetCommit(.init(group: id, topic: tp.topic, partition: tp.partition), nil))
                    }
                    records.append(.groupMetadata(group: id, nil))
                    logger.info("group deleted", metadata: [BrookLogKey.group: "\(id)", BrookLogKey.offsetCount: "\(g.offsets.count)"])
                } else {
                    result.errorCode = ErrorCode.nonEmptyGroup.rawValue
                }
            } else {
                result.errorCode = ErrorCode.groupIdNotFound.rawValue
            }
            response.results.append(result)
        }
        recordGroupCount()
        finishTombstones(records, waiter: waiter, &effects)
        return response
    }
}
