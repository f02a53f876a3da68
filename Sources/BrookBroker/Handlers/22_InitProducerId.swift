import BrookProtocol
import Logging

extension Broker {
    /// Idempotent producers only: a transactional id is refused (no transactions in Brook).
    func handleInitProducerId(_ r: InitProducerIdRequest, _ ctx: RequestContext) -> InitProducerIdResponse {
        var resp = InitProducerIdResponse()
        if r.transactionalId != nil {
            resp.errorCode = ErrorCode.transactionalIdAuthorizationFailed.rawValue
            ctx.logger.warning("transactional producer refused: transactions are not supported")
            return resp
        }
        if r.producerId >= 0 && r.producerEpoch >= 0 && r.producerEpoch < Int16.max - 1 {
            // An idempotent producer bumping its epoch after a fatal-to-the-sequence error.
            resp.producerId = r.producerId
            resp.producerEpoch = r.producerEpoch + 1
            return resp
        }
        do {
            resp.producerId = try allocateProducerId()
            resp.producerEpoch = 0
        } catch {
            resp.errorCode = ErrorCode.kafkaStorageError.rawValue
        }
        return resp
    }

    /// Ids come from a block reserved in the catalog; a new block is saved before any of its
    /// ids is handed out, so a restart never reuses one.
    func allocateProducerId() throws -> Int64 {
        let needBlock: Bool = producerIds.withLock { $0.next >= $0.limit }
        if needBlock {
            try catalog.withLock { cat in
                let start = cat.nextProducerIdBlock
                cat.nextProducerIdBlock = start + 1000
                try cat.save(to: catalogURL)
                producerIds.withLock { $0 = (start, start + 1000) }
            }
        }
        return producerIds.withLock { s in
            defer { s.next += 1 }
            return s.next
        }
    }
}
