/// A minimal JSON reader/writer for flat objects of strings and integers — the shape of a ledger
/// event. Foundation's JSONDecoder costs over 100 µs per event on Linux, which would cap a
/// worker far below the database; this costs about a microsecond.
enum FlatJSON {
    enum Value: Equatable {
        case string(String)
        case integer(Int64)
        /// Any other JSON value (float, bool, null, array, object): kept only to be rejected
        /// if a known field has it, and ignored for unknown fields.
        case other
    }

    struct Malformed: Error {
        var message: String
    }

    /// A parsed object: its fields in order. A ledger event has about eight, so a lookup scans
    /// them instead of hashing every key into a dictionary (measured: building the dictionary
    /// was most of a decode's cost).
    struct Object {
        var fields: [(key: String, value: Value)] = []

        /// The value of `key`; with duplicate keys the last one wins, as most parsers do.
        subscript(key: String) -> Value? {
            for f in fields.reversed() where f.key == key { return f.value }
            return nil
        }
    }

    /// Parses one object.
    static func parse<Bytes: Collection<UInt8>>(_ input: Bytes) throws(Malformed) -> Object {
        var p = Parser(bytes: Array(input))
        return try p.object()
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func fail(_ what: String) -> Malformed { Malformed(message: "\(what) at byte \(i)") }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(Malformed) {
            skipSpace()
            guard i < bytes.count, bytes[i] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
            i += 1
        }

        mutating func object() throws(Malformed) -> Object {
            try expect(UInt8(ascii: "{"))
            var out = Object()
            out.fields.reserveCapacity(12)
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipSpace()
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    out.fields.append((key, try value()))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; break }
                    throw fail("expected ',' or '}'")
                }
            }
            skipSpace()
            guard i == bytes.count else { throw fail("trailing bytes") }
            return out
        }

        mutating func value() throws(Malformed) -> Value {
            skipSpace()
            guard i < bytes.count else { throw fail("missing value") }
            switch bytes[i] {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            case UInt8(ascii: "{"), UInt8(ascii: "["): try skipNested(); return .other
            default:
                for literal in ["true", "false", "null"] where bytes[i...].starts(with: literal.utf8) {
                    i += literal.utf8.count
                    return .other
                }
                throw fail("unexpected value")
            }
        }

        /// Integers become `.integer`; fractions and exponents are `.other` (never money).
        mutating func number() throws(Malformed) -> Value {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            var isInteger = true
            while i < bytes.count {
                let b = bytes[i]
                if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") { i += 1; continue }
                if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
                    isInteger = false
                    i += 1
                    continue
                }
                break
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard isInteger else { return .other }
            guard let n = Int64(text) else { throw fail("bad integer '\(text)'") }
            return .integer(n)
        }

        mutating func string() throws(Malformed) -> String {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected string") }
            i += 1
            let start = i
            // Fast path: no escapes.
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") { i += 1 }
            guard i < bytes.count else { throw fail("unterminated string") }
            if bytes[i] == UInt8(ascii: "\"") {
                defer { i += 1 }
                return String(decoding: bytes[start..<i], as: UTF8.self)
            }
            var out = Array(bytes[start..<i])
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
                guard b == UInt8(ascii: "\\") else { out.append(b); i += 1; continue }
                guard i + 1 < bytes.count else { break }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                        throw fail("bad \\u escape")
                    }
                    i += 4
                    // Surrogate pairs are not needed for ledger fields; a lone surrogate is replaced.
                    out.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                default: throw fail("bad escape")
                }
            }
            throw fail("unterminated string")
        }

        mutating func skipNested() throws(Malformed) {
            var depth = 0
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""): _ = try string(); continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { i += 1; return }
                default: break
                }
                i += 1
            }
            throw fail("unterminated array or object")
        }
    }

    /// Writes `fields` (already in the desired order) as one compact object.
    static func write(_ fields: [(String, Value)]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(160)
        for (n, (key, value)) in fields.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let s): appendString(s, to: &out)
            case .integer(let v): out.append(contentsOf: String(v).utf8)
            case .other: out.append(contentsOf: "null".utf8)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0..<0x20:
                let hex = String(b, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
