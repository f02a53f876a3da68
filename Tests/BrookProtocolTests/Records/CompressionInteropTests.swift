import BrookProtocol
import Foundation
import NIOCore
import Testing

/// Checks our gzip, lz4 and zstd against the reference command-line tools, in both directions.
@Suite("Records: codec interop with gzip, lz4 and zstd tools")
struct CompressionInteropTests {
    struct Tool: Sendable, CustomStringConvertible {
        var codec: CompressionCodec
        var path: String
        var compressArgs: [String]
        var decompressArgs: [String]
        var description: String { "\(codec)" }
    }

    static let tools: [Tool] = [
        Tool(codec: .gzip, path: "/usr/bin/gzip", compressArgs: ["-c"], decompressArgs: ["-dc"]),
        Tool(codec: .lz4, path: "/usr/bin/lz4", compressArgs: ["-c", "-q"], decompressArgs: ["-dc", "-q"]),
        Tool(codec: .zstd, path: "/usr/bin/zstd", compressArgs: ["-c", "-q"], decompressArgs: ["-dc", "-q"]),
    ]

    static let inputs: [(String, [UInt8])] = [
        ("empty", []),
        ("text 1MiB", RecordsTestSupport.textBytes(1 << 20)),
        ("random 300k", RecordsTestSupport.randomBytes(300_000, seed: 11)),
    ]

    /// Runs `tool args file` and returns its standard output.
    static func run(_ path: String, _ args: [String], input: [UInt8]) throws -> [UInt8] {
        let dir = FileManager.default.temporaryDirectory
        let file = dir.appendingPathComponent("brook-records-\(UUID().uuidString)")
        try Data(input).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args + [file.path]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read before waiting: a full pipe would otherwise block the tool forever.
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ProtocolError.compression("\(path) \(args) exited with \(process.terminationStatus)")
        }
        return [UInt8](data)
    }

    @Test("the tool decodes our output", .enabled(if: tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0.path) }), arguments: tools)
    func toolDecodesOurs(tool: Tool) throws {
        for (name, bytes) in Self.inputs {
            let ours = try tool.codec.compress(ByteBuffer(bytes: bytes))
            let decoded = try Self.run(tool.path, tool.decompressArgs, input: Array(ours.readableBytesView))
            #expect(decoded == bytes, "\(tool.codec) \(name)")
        }
    }

    @Test("we decode the tool's output", .enabled(if: tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0.path) }), arguments: tools)
    func weDecodeTools(tool: Tool) throws {
        for (name, bytes) in Self.inputs {
            let theirs = try Self.run(tool.path, tool.compressArgs, input: bytes)
            let decoded = try tool.codec.decompress(ByteBuffer(bytes: theirs), maxOutput: bytes.count)
            #expect(Array(decoded.readableBytesView) == bytes, "\(tool.codec) \(name)")
        }
    }

    @Test("we decode the tools' variants: lz4 with linked blocks and checksums, zstd long mode, gzip -9")
    func variants() throws {
        let bytes = RecordsTestSupport.textBytes(600_000)
        let cases: [(CompressionCodec, String, [String])] = [
            (.lz4, "/usr/bin/lz4", ["-c", "-q", "-BD", "-B4", "--content-size", "-BX"]),
            (.lz4, "/usr/bin/lz4", ["-c", "-q", "-9"]),
            (.zstd, "/usr/bin/zstd", ["-c", "-q", "--long=24", "-19"]),
            (.zstd, "/usr/bin/zstd", ["-c", "-q", "--no-check"]),
            (.gzip, "/usr/bin/gzip", ["-c", "-9"]),
        ]
        for (codec, path, args) in cases where FileManager.default.isExecutableFile(atPath: path) {
            let theirs = try Self.run(path, args, input: bytes)
            let decoded = try codec.decompress(ByteBuffer(bytes: theirs), maxOutput: bytes.count)
            #expect(Array(decoded.readableBytesView) == bytes, "\(codec) \(args)")
            #expect(throws: ProtocolError.self, "\(codec) \(args) bound") {
                try codec.decompress(ByteBuffer(bytes: theirs), maxOutput: bytes.count - 1)
            }
        }
    }
}
