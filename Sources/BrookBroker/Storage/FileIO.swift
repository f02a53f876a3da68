#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file descriptor that is closed when the last reference goes away.
///
/// Reads and fsyncs run outside the partition lock; holding a `FileRef` keeps the descriptor
/// valid even if retention deletes the segment meanwhile (the inode lives until the last close),
/// so a descriptor number is never reused under a concurrent reader. Immutable, hence `Sendable`.
final class FileRef: Sendable {
    let fd: CInt
    let path: String

    init(fd: CInt, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Opens `path`; `create` adds O_CREAT, `truncate` O_TRUNC.
    convenience init(path: String, create: Bool = false, truncate: Bool = false) throws {
        var flags = O_RDWR | O_CLOEXEC
        if create { flags |= O_CREAT }
        if truncate { flags |= O_TRUNC }
        let fd = Sys.retrying { open(path, flags, 0o644) }
        guard fd >= 0 else { throw Sys.error("open", path) }
        self.init(fd: fd, path: path)
    }

    deinit { _ = Glibc_close(fd) }

    func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Sys.error("fstat", path) }
        return Int(st.st_size)
    }

    /// Last modification time in milliseconds since the epoch.
    func modificationTimeMs() -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return -1 }
        #if canImport(Darwin)
        return Int64(st.st_mtimespec.tv_sec) * 1000 + Int64(st.st_mtimespec.tv_nsec) / 1_000_000
        #else
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
        #endif
    }

    /// Makes written data durable. `fdatasync` suffices for segments: it still flushes the file
    /// size when it changed, and skips the timestamp-only metadata `fsync` would write.
    func syncData() throws {
        #if os(Linux)
        let rc = Sys.retrying { fdatasync(fd) }
        #else
        let rc = Sys.retrying { fsync(fd) }
        #endif
        guard rc == 0 else { throw Sys.error("fdatasync", path) }
    }

    func truncate(to size: Int) throws {
        guard Sys.retrying({ ftruncate(fd, off_t(size)) }) == 0 else { throw Sys.error("ftruncate", path) }
    }

    /// Writes all `count` bytes at `offset`, retrying short writes.
    func write(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pwrite(fd, bytes + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw Sys.error("pwrite", path)
            }
            done += n
        }
    }

    /// Writes the iovecs in order at `offset`. `pwritev` keeps one syscall per append even with
    /// patched headers; a short write (disk full, signal) falls back to finishing piece by piece.
    func write(_ iov: UnsafeMutableBufferPointer<iovec>, totalBytes: Int, at offset: Int) throws {
        var index = 0
        var written = 0
        while index < iov.count {
            let batch = min(iov.count - index, Sys.iovMax)
            let n = pwritev(fd, iov.baseAddress! + index, CInt(batch), off_t(offset + written))
            if n < 0 {
                if errno == EINTR { continue }
                throw Sys.error("pwritev", path)
            }
            written += n
            // Skip the iovecs written fully; finish a partially written one with pwrite.
            var remaining = n
            while remaining > 0 && index < iov.count {
                let len = iov[index].iov_len
                if remaining >= len {
                    remaining -= len
                    index += 1
                } else {
                    let rest = len - remaining
                    try write(UnsafeRawPointer(iov[index].iov_base!) + remaining, count: rest, at: offset + written)
                    written += rest
                    remaining = 0
                    index += 1
                }
            }
        }
        assert(written == totalBytes)
    }

    /// Reads up to `count` bytes at `offset`; returns fewer only at end of file.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw Sys.error("pread", path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}

/// `close` shadowed by nothing, named so `deinit` reads unambiguously.
@inline(__always)
private func Glibc_close(_ fd: CInt) -> CInt {
    #if canImport(Glibc)
    Glibc.close(fd)
    #elseif canImport(Musl)
    Musl.close(fd)
    #else
    Darwin.close(fd)
    #endif
}

/// Thin, throwing wrappers over the POSIX calls the storage layer needs.
enum Sys {
    static let iovMax = 1024

    static func error(_ op: String, _ path: String) -> StorageError {
        .io(operation: op, path: path, errno: errno)
    }

    @inline(__always)
    static func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let rc = body()
            if rc == -1 && errno == EINTR { continue }
            return rc
        }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func unlink(_ path: String) throws {
        if Glibc_unlink(path) != 0 && errno != ENOENT { throw error("unlink", path) }
    }

    static func rename(_ from: String, _ to: String) throws {
        if Glibc_rename(from, to) != 0 { throw error("rename", from + " -> " + to) }
    }

    /// Creates `path` and its missing parents, durably: each new directory's entry is fsynced
    /// in its parent, or a crash could lose a whole new partition whose files were fsynced.
    static func makeDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        let parent = parentDirectory(path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 {
            if errno == EEXIST { return }
            throw error("mkdir", path)
        }
        try syncDirectory(parent)
    }

    static func parentDirectory(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }

    /// Names in `path`, without "." and "..".
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw error("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { ptr in
                ptr.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes creations, renames and unlinks inside `path` durable.
    static func syncDirectory(_ path: String) throws {
        let fd = retrying { open(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY) }
        guard fd >= 0 else { throw error("open", path) }
        defer { _ = Glibc_close(fd) }
        guard retrying({ fsync(fd) }) == 0 else { throw error("fsync", path) }
    }

    /// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
    /// write a temporary file, fsync it, rename over, fsync the directory.
    static func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        let file = try FileRef(path: tmp, create: true, truncate: true)
        try bytes.withUnsafeBytes { raw in
            try file.write(raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: raw.count, at: 0)
        }
        guard retrying({ fsync(file.fd) }) == 0 else { throw error("fsync", tmp) }
        try rename(tmp, path)
        try syncDirectory(parentDirectory(path))
    }

    /// The whole file, or nil if it does not exist.
    static func readFile(_ path: String) throws -> [UInt8]? {
        let fd = retrying { open(path, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw error("open", path)
        }
        let file = FileRef(fd: fd, path: path)
        let size = try file.size()
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: size, at: 0) }
        return Array(bytes[0..<n])
    }

    /// Creates an empty file (or leaves an existing one). Only its name matters, so making it
    /// durable is the directory fsync the caller does next.
    static func createEmptyFile(_ path: String) throws {
        _ = try FileRef(path: path, create: true)
    }

    /// Removes `path` recursively (files and directories); missing paths are fine.
    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw error("lstat", path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try listDirectory(path) { try removeTree(join(path, name)) }
            if rmdir(path) != 0 && errno != ENOENT { throw error("rmdir", path) }
        } else {
            try unlink(path)
        }
    }

    /// Monotonic nanoseconds, for measuring durations.
    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

@inline(__always)
private func Glibc_unlink(_ path: String) -> CInt {
    #if canImport(Glibc)
    Glibc.unlink(path)
    #elseif canImport(Musl)
    Musl.unlink(path)
    #else
    Darwin.unlink(path)
    #endif
}

@inline(__always)
private func Glibc_rename(_ from: String, _ to: String) -> CInt {
    #if canImport(Glibc)
    Glibc.rename(from, to)
    #elseif canImport(Musl)
    Musl.rename(from, to)
    #else
    Darwin.rename(from, to)
    #endif
}
