/// The health of a partition or group, with Burrow's names and numbers.
///
/// The raw values are Burrow's (`NOTFOUND` 0 … `REWIND` 6), so the Prometheus status gauge and
/// the Burrow-shaped HTTP answers carry the codes tools written for Burrow expect. A larger
/// value is worse; a group is never worse than ``err`` (see ``groupLevel``).
public enum LagStatus: Int, Sendable, Comparable, CaseIterable, Codable {
    case notFound = 0
    /// Lag was zero at some point of the window, or is within the allowed lag.
    case ok = 1
    /// The consumer commits and moves on, but its lag never fell during the window
    /// (or the time lag exceeds `--max-lag-seconds`).
    case warn = 2
    /// A group with a partition in ``stop``, ``stall`` or ``rewind``.
    case err = 3
    /// No commit for longer than the window spans, while there is lag.
    case stop = 4
    /// Commits keep coming with lag, but the offset never moves.
    case stall = 5
    /// A committed offset went backwards inside the window.
    case rewind = 6

    /// Burrow's name: `NOTFOUND`, `OK`, `WARN`, `ERR`, `STOP`, `STALL`, `REWIND`.
    public var name: String {
        switch self {
        case .notFound: return "NOTFOUND"
        case .ok: return "OK"
        case .warn: return "WARN"
        case .err: return "ERR"
        case .stop: return "STOP"
        case .stall: return "STALL"
        case .rewind: return "REWIND"
        }
    }

    /// How the status counts toward its group: STOP, STALL and REWIND show as ERR (Burrow).
    public var groupLevel: LagStatus { self > .err ? .err : self }

    public static func < (a: LagStatus, b: LagStatus) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = LagStatus.allCases.first(where: { $0.name == s }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown status \(s)"))
        }
        self = v
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}
