import Brook
import BrookProtocol
import Foundation
import Logging
import NIOCore

/// Writes records to `<topic><suffix>` with the provenance headers of ``DeadLetterHeader``,
/// keyed as the original so that one key's dead letters stay in order in one DLT partition.
struct DeadLetterWriter: Sendable {
    var producer: KafkaProducer
    var suffix: String
    var group: String

    func topic(for source: String) -> String { source + suffix }

    func send(_ record: ConsumerRecord, errorType: String, message: String, attempts: Int, reason: DeadLetterReason) async throws {
        let now = currentTimeMillis()
        let headers = DeadLetterProvenance.headers(
            for: record, group: group, errorType: errorType, errorMessage: message, attempts: attempts, reason: reason, now: now)
        _ = try await producer.send(
            ProducerRecord(topic: topic(for: record.topic), key: record.key, value: record.value, headers: headers, timestamp: record.timestamp))
    }
}
