import Brook
import BrookProtocol
import Logging

/// The pipeline's log metadata keys are ``BrookProtocol/BrookLogKey``, shared with the client
/// and the broker; this name stays for code written against it.
public typealias PipelineLogKey = BrookLogKey

extension BrookLogKey {
    /// Metadata of every pipeline log line about a record.
    static func metadata(_ r: ConsumerRecord) -> Logger.Metadata {
        [
            topic: "\(r.topic)", partition: "\(r.partition)", offset: "\(r.offset)",
            key: "\(r.key.map { String(buffer: $0) } ?? "")",
        ]
    }
}
