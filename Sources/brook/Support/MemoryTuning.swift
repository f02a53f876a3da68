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
    static func apply(arguments: [String] = CommandLine.arguments) {
        guard arguments.count > 1, clientCommands.contains(arguments[1]),
              ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil
        else { return }
        _ = brook_set_malloc_arenas(1)
    }
}
