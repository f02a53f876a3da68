/// The per-partition checkpoint: log start offset and recovery point, as a small text file so an
/// operator can read it. Replaced atomically (temp file, fsync, rename, directory fsync).
struct Checkpoint: Equatable {
    var logStartOffset: Int64
    var recoveryPoint: Int64

    static let header = "brook-partition-checkpoint 1"

    func write(to path: String) throws {
        let text = "\(Self.header)\nlog-start-offset \(logStartOffset)\nrecovery-point \(recoveryPoint)\n"
        try Sys.writeFileAtomically(path, Array(text.utf8))
    }

    /// Nil when the file does not exist; throws `StorageError.corrupt` when it does not parse.
    static func read(from path: String) throws -> Checkpoint? {
        guard let bytes = try Sys.readFile(path) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.first == Substring(header) else { throw StorageError.corrupt("checkpoint \(path) has no header") }
        var values: [Substring: Int64] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let v = Int64(parts[1]) else { throw StorageError.corrupt("checkpoint \(path): bad line \(line)") }
            values[parts[0]] = v
        }
        guard let start = values["log-start-offset"], let recovery = values["recovery-point"] else {
            throw StorageError.corrupt("checkpoint \(path) misses a field")
        }
        return Checkpoint(logStartOffset: start, recoveryPoint: recovery)
    }
}
