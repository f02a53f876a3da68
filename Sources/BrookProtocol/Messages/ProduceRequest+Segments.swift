import NIOCore

extension ProduceRequest {
    /// The same bytes as ``encode(into:version:)``, as a list of buffers in which every
    /// partition's record batch is its own, uncopied buffer: the producer writes them to the
    /// socket as they are (a vectored write) instead of copying megabytes into one request
    /// buffer. The buffers between them hold the few bytes of framing.
    ///
    /// Hand-written beside the generated encoder because it must not copy; the tests check it
    /// against the generated one byte for byte at every version.
    public func encodeSegments(version: Int16, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> [ByteBuffer] {
        let flexible = Self.apiKey.isFlexible(version)
        var segments: [ByteBuffer] = []
        var glue = allocator.buffer(capacity: 64)
        func tags(_ fields: [TaggedField]) {
            glue.writeUnsignedVarint(UInt32(fields.count))
            for t in fields {
                glue.writeUnsignedVarint(t.tag)
                glue.writeUnsignedVarint(UInt32(t.data.readableBytes))
                glue.writeImmutableBuffer(t.data)
            }
        }
        if version >= 3 {
            glue.writeKafkaString(transactionalId, compact: flexible)
        }
        glue.writeInteger(acks)
        glue.writeInteger(timeoutMs)
        glue.writeKafkaLength(topicData.count, compact: flexible, wide: true)
        for topic in topicData {
            glue.writeKafkaString(topic.name, compact: flexible)
            glue.writeKafkaLength(topic.partitionData.count, compact: flexible, wide: true)
            for p in topic.partitionData {
                glue.writeInteger(p.index)
                if let records = p.records, records.readableBytes > 0 {
                    glue.writeKafkaLength(records.readableBytes, compact: flexible, wide: true)
                    segments.append(glue)
                    segments.append(records)
                    glue = allocator.buffer(capacity: 64)
                } else {
                    glue.writeKafkaBytes(p.records, compact: flexible)
                }
                if flexible { tags(p.unknownTaggedFields) }
            }
            if flexible { tags(topic.unknownTaggedFields) }
        }
        if flexible { tags(unknownTaggedFields) }
        if glue.readableBytes > 0 || segments.isEmpty { segments.append(glue) }
        return segments
    }
}
