import BrookProtocol
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Storage allocations made through `countingAllocator` (a C function pointer cannot capture).
private let countedAllocations = Atomic<Int>(0)

private let countingAllocator = ByteBufferAllocator(
    allocate: { size in
        countedAllocations.add(1, ordering: .relaxed)
        return malloc(size)
    },
    reallocate: { pointer, _, newSize in realloc(pointer, newSize) },
    deallocate: { free($0) },
    copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) })

@Suite("Records: the batch builder's buffer")
struct RecordBatchBuilderBufferTests {
    /// A producer hands each batch a buffer of the batch's size: if the builder kept a second
    /// reference to it, the first write would copy the whole storage (a ~1 MB memmove per batch).
    @Test func theBuilderWritesIntoTheBufferItIsGivenWithoutCopyingIt() throws {
        let before = countedAllocations.load(ordering: .relaxed)
        var builder = RecordBatchBuilder(appendingTo: countingAllocator.buffer(capacity: 64 * 1024))
        for i in 0..<100 {
            builder.append(timestamp: 1_700_000_000_000 + Int64(i), key: nil, value: ByteBuffer(string: "value \(i)"))
        }
        // Consumed, as the producer does: finishing a copy would copy the buffer.
        let batch = try (consume builder).finish()
        #expect(countedAllocations.load(ordering: .relaxed) - before == 1)
        let decoded = try RecordBatch.batches(in: batch)
        #expect(decoded.count == 1)
        #expect(decoded.first?.header.recordCount == 100)
    }
}
