import Brook
import Logging

/// Metadata keys of every pipeline log line about a record, in one place (the first three are
/// the ones the Brook client uses).
public enum PipelineLogKey {
    public static let topic = "kafka.topic"
    public static let partition = "kafka.partition"
    public static let offset = "kafka.offset"
    public static let key = "kafka.key"
    public static let group = "kafka.group"
    public static let error = "error"
    public static let attempt = "attempt"

    static func metadata(_ r: ConsumerRecord) -> Logger.Metadata {
        [
            topic: "\(r.topic)", partition: "\(r.partition)", offset: "\(r.offset)",
            key: "\(r.key.map { String(buffer: $0) } ?? "")",
        ]
    }
}
