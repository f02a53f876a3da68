import BrookProtocol
import Logging
import Synchronization

/// The consumer's connection to its group coordinator. It lives with the I/O code, apart from
/// the membership state (``GroupMembershipStateMachine``), which only tells when to forget it.
final class CoordinatorLink: Sendable {
    private let connection = Mutex<BrokerConnection?>(nil)

    /// The connection, if one is open.
    var active: BrokerConnection? {
        connection.withLock { c in c.flatMap { $0.isActive ? $0 : nil } }
    }

    /// Keeps `conn` unless another task connected meanwhile; returns the connection to use
    /// (the one not kept is closed).
    func adopt(_ conn: BrokerConnection) -> BrokerConnection {
        let (winner, loser) = connection.withLock { c -> (BrokerConnection, BrokerConnection?) in
            if let current = c, current.isActive { return (current, conn) }
            c = conn
            return (conn, nil)
        }
        loser?.close()
        return winner
    }

    /// Forgets and closes the connection (only if it is still `conn`, when given).
    func forget(_ conn: BrokerConnection? = nil) {
        let old = connection.withLock { c -> BrokerConnection? in
            guard let current = c, conn == nil || current === conn else { return nil }
            c = nil
            return current
        }
        old?.close()
    }
}

extension KafkaConsumer {
    /// A dedicated connection to the group coordinator (its own socket, so that JoinGroup and
    /// heartbeats never wait behind fetch long-polls).
    func coordinatorConnection() async throws -> BrokerConnection {
        guard let group = configuration.groupId else { throw KafkaConsumerError.noGroup }
        if let c = coordinator.active { return c }
        if state.withLock({ $0.lifecycle == .closed }) { throw KafkaConsumerError.closed }
        let shared = try await cluster.coordinator(forGroup: group)
        let conn = try await BrokerConnection.connect(
            to: shared.address, nodeId: shared.nodeId, config: configuration.client, eventLoopGroup: cluster.group, logger: logger)
        let winner = coordinator.adopt(conn)
        logger.debug("group coordinator", metadata: [BrookLogKey.broker: "\(shared.nodeId) \(shared.address)"])
        return winner
    }

    /// Forgets the coordinator (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, connection failures).
    func coordinatorUnknown(_ conn: BrokerConnection? = nil) {
        coordinator.forget(conn)
    }
}
