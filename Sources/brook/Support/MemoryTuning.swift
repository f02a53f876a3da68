import CBrookNative
import Foundation

/// Process-wide allocator settings for the `brook` executable (libraries leave them to the
/// application that embeds them).
enum MemoryTuning {
    /// One malloc arena unless `MALLOC_ARENA_MAX` says otherwise. glibc gives busy threads
    /// arenas of their own, and memory freed on a thread other than the one that allocated it
    /// (records built by the event loop, handed to a task) stays cached in those arenas: the
    /// producer with delivery reports peaked at 73 MiB RSS with a 27 MiB heap, 55 MiB with one
    /// arena, at the same throughput (BENCHMARKS.md).
    static func apply() {
        if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil {
            _ = brook_set_malloc_arenas(1)
        }
    }
}
