#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import Synchronization

/// A mutex around the producer's shared state (``ProducerEngineState``), which holds
/// non-Sendable classes (batches, partitions).
///
/// `@unchecked Sendable` is safe because the state is reachable only inside `withLock`, with the
/// mutex held; a batch leaves it only to the one sender task that owns it while it is in flight.
/// The state lives behind a pointer so accessing it costs no dynamic exclusivity check (one per
/// field access on a class property), which the append path would pay per record.
final class ProducerLock<State>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let state: UnsafeMutablePointer<State>

    init(_ initial: State) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        state = .allocate(capacity: 1)
        state.initialize(to: initial)
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state.pointee)
    }
}

/// Kafka's sequence arithmetic: sequences wrap from Int32.max to 0.
@inline(__always)
func incrementSequence(_ sequence: Int32, by increment: Int32) -> Int32 {
    if sequence > Int32.max - increment { return increment - (Int32.max - sequence) - 1 }
    return sequence + increment
}

extension Murmur2 {
    /// Java's `toPositive(murmur2(key)) % partitions` for a key in a buffer.
    static func partition(keyBuffer key: ByteBuffer, partitions: Int32) -> Int32 {
        let h = key.withUnsafeReadableBytes { hash(raw: $0) }
        return (h & 0x7fff_ffff) % partitions
    }
}
