import CBrookNative
import Foundation

/// Process-wide allocator settings for the `brook` executable (libraries leave them to the
/// application that embeds them).
enum MemoryTuning {
    /// Commands that are one client: a producer or a consumer and little else.
    static let clientCommands: Set<String> = ["produce", "consume", "perf", "topics", "groups", "dlt"]

    /// For client commands, one malloc arena unless `MALLOC_ARENA_MAX` says otherwise. glibc
    /// gives busy threads arenas of their own, and memory freed on a thread other than the one
    /// that allocated it (delivery reports built on the event loop, freed by the reader) stays
    /// cached in those arenas: the producer with delivery reports peaked at 73 MiB RSS with a
    /// 27 MiB heap, 55 MiB with one arena, at the same throughput. Processes with many busy
    /// threads (`brook up`, the broker, the ledger workers and bench) keep glibc's default: there
    /// all threads would contend for one arena's lock, and the one comparison made (`brook
    /// ledger bench`, BENCHMARKS.md) did not show a gain worth that risk.
    ///
    /// For consumers (`consume`, `perf consume`), blocks up to 32 MiB come from the heap rather
    /// than from mmap, and 4 MiB of free memory is kept at its top: a consumer receives a fresh
    /// ~1 MiB buffer per fetch response, and mapped afresh each time every one page-faults and is
    /// zeroed again: about a tenth of the consumer's CPU at 1 KiB records. Producers keep
    /// glibc's default: their ~1 MB batches live long beside small allocations, and from the
    /// heap they left holes that raised the peak RSS from 35–40 to up to 61 MiB.
    static func apply(arguments: [String] = CommandLine.arguments) {
        guard arguments.count > 1, clientCommands.contains(arguments[1]) else { return }
        let env = ProcessInfo.processInfo.environment
        if env["MALLOC_ARENA_MAX"] == nil {
            _ = brook_set_malloc_arenas(1)
        }
        let consumer = arguments[1] == "consume" || (arguments[1] == "perf" && arguments.count > 2 && arguments[2] == "consume")
        if consumer && env["MALLOC_MMAP_THRESHOLD_"] == nil && env["MALLOC_TRIM_THRESHOLD_"] == nil {
            _ = brook_set_malloc_thresholds(mmapThreshold, trimThreshold)
        }
    }

    /// Blocks up to this size come from the heap.
    static let mmapThreshold = 32 * 1024 * 1024
    /// Free memory at the top of the heap kept for reuse.
    static let trimThreshold = 4 * 1024 * 1024
}
