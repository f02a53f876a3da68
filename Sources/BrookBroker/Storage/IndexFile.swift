#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file of fixed-size big-endian entries, memory-mapped so that appending an index entry is a
/// store into memory rather than a syscall (one entry every 4 KiB of log would otherwise cost a
/// `pwrite` per few batches on the produce path).
///
/// The active segment's index is preallocated sparse and mapped read-write; unclean shutdown can
/// leave zeros past the real entries, which is fine because the active segment is always rebuilt
/// on unclean recovery. Sealing trims the file to its entries, so sealed indexes on disk are
/// exact. Not thread-safe: the owning `PartitionLog` serializes all access under its lock.
final class MappedIndex {
    let entrySize: Int
    let file: FileRef
    private var map: UnsafeMutableRawPointer?
    private var mapLength = 0
    private(set) var count: Int
    private(set) var writable = false

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Opens an existing index file; its size must be a whole number of entries.
    init(existing path: String, entrySize: Int) throws {
        self.entrySize = entrySize
        file = try FileRef(path: path)
        let size = try file.size()
        guard size % entrySize == 0 else {
            throw StorageError.corrupt("index \(path) has size \(size), not a multiple of \(entrySize)")
        }
        count = size / entrySize
        try mapFile(length: size, writable: false)
    }

    /// Creates an empty, writable index, replacing any file at `path`.
    init(creating path: String, entrySize: Int, capacityEntries: Int) throws {
        self.entrySize = entrySize
        file = try FileRef(path: path, create: true, truncate: true)
        count = 0
        try makeWritable(capacityEntries: capacityEntries)
    }

    deinit { unmap() }

    var capacity: Int { mapLength / entrySize }

    /// Extends the file (sparsely) to hold `capacityEntries` and maps it read-write.
    func makeWritable(capacityEntries: Int) throws {
        var length = max(capacityEntries, count + 1) * entrySize
        length = (length + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        length = length / entrySize * entrySize
        unmap()
        try file.truncate(to: length)
        try mapFile(length: length, writable: true)
    }

    /// Pointer to entry `i` (valid until the next append, seal or truncate).
    @inline(__always)
    func entry(_ i: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(map! + i * entrySize)
    }

    /// Appends one entry written by `body`, growing the mapping when full.
    func append(_ body: (UnsafeMutableRawPointer) -> Void) throws {
        precondition(writable, "append to a sealed index")
        if count == capacity {
            try makeWritable(capacityEntries: max(capacity * 2, 512))
        }
        body(map! + count * entrySize)
        count += 1
    }

    /// Trims the file to its entries and remaps read-only; called when a segment stops being
    /// the active one and at clean shutdown.
    func seal() throws {
        guard writable else { return }
        unmap()
        try file.truncate(to: count * entrySize)
        try mapFile(length: count * entrySize, writable: false)
    }

    /// Releases the mapping; the descriptor closes with the last `FileRef` reference.
    func close() { unmap() }

    private func mapFile(length: Int, writable: Bool) throws {
        self.writable = writable
        mapLength = length
        guard length > 0 else {
            map = nil
            return
        }
        let prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        let p = mmap(nil, length, prot, MAP_SHARED, file.fd, 0)
        guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
            mapLength = 0
            map = nil
            throw Sys.error("mmap", file.path)
        }
        map = p
    }

    private func unmap() {
        if let map { munmap(map, mapLength) }
        map = nil
        mapLength = 0
    }
}

/// Sparse offset index: (offset - baseOffset: u32, position: u32) for the last offset of a batch
/// every `indexIntervalBytes`, as Kafka's `.index`.
struct OffsetIndex {
    static let entrySize = 8
    let baseOffset: Int64
    let storage: MappedIndex

    var count: Int { storage.count }

    func entry(_ i: Int) -> (offset: Int64, position: Int) {
        let p = storage.entry(i)
        let rel: UInt32 = BigEndian.load(p, 0)
        let pos: UInt32 = BigEndian.load(p, 4)
        return (baseOffset + Int64(rel), Int(pos))
    }

    var lastEntry: (offset: Int64, position: Int)? {
        count > 0 ? entry(count - 1) : nil
    }

    /// The entry with the largest offset <= `target`, or the segment start.
    func lookup(_ target: Int64) -> (offset: Int64, position: Int) {
        var lo = 0
        var hi = count - 1
        var found = -1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if entry(mid).offset <= target {
                found = mid
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return found >= 0 ? entry(found) : (baseOffset, 0)
    }

    func append(offset: Int64, position: Int) throws {
        let rel = UInt32(offset - baseOffset)
        try storage.append { p in
            BigEndian.store(p, 0, rel)
            BigEndian.store(p, 4, UInt32(position))
        }
    }

    /// Kafka-style sanity check of a loaded index: entries point inside the log and, at the ends,
    /// increase. A full scan is left to recovery; lookups also verify the batch they land on.
    func isSane(logSize: Int, maxOffset: Int64) -> Bool {
        guard let last = lastEntry else { return true }
        let first = entry(0)
        return first.offset >= baseOffset && last.offset <= maxOffset && last.position < logSize
            && first.offset <= last.offset && first.position <= last.position
    }
}

/// Sparse time index: (max timestamp so far: i64, its batch's offset - baseOffset: u32), appended
/// only when the max timestamp grew, as Kafka's `.timeindex`.
struct TimeIndex {
    static let entrySize = 12
    let baseOffset: Int64
    let storage: MappedIndex

    var count: Int { storage.count }

    func entry(_ i: Int) -> (timestamp: Int64, offset: Int64) {
        let p = storage.entry(i)
        let ts: Int64 = BigEndian.load(p, 0)
        let rel: UInt32 = BigEndian.load(p, 8)
        return (ts, baseOffset + Int64(rel))
    }

    var lastEntry: (timestamp: Int64, offset: Int64)? {
        count > 0 ? entry(count - 1) : nil
    }

    /// The entry with the largest timestamp <= `target`, or nil (search from the segment start).
    func lookup(_ target: Int64) -> (timestamp: Int64, offset: Int64)? {
        var lo = 0
        var hi = count - 1
        var found: (timestamp: Int64, offset: Int64)? = nil
        while lo <= hi {
            let mid = (lo + hi) / 2
            let e = entry(mid)
            if e.timestamp <= target {
                found = e
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return found
    }

    /// Appends when `timestamp` is larger than the last entry's, keeping the index monotonic.
    /// An empty index behaves as if its last timestamp were -1 (Kafka's NO_TIMESTAMP), so batches
    /// without timestamps never get entries.
    func maybeAppend(timestamp: Int64, offset: Int64) throws {
        guard timestamp > (lastEntry?.timestamp ?? -1) else { return }
        let rel = UInt32(offset - baseOffset)
        try storage.append { p in
            BigEndian.store(p, 0, timestamp)
            BigEndian.store(p, 8, rel)
        }
    }

    func isSane(maxOffset: Int64) -> Bool {
        guard let last = lastEntry else { return true }
        let first = entry(0)
        return first.offset >= baseOffset && last.offset <= maxOffset && first.timestamp <= last.timestamp
    }
}
