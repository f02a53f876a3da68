import BrookProtocol
import NIOCore

/// Feeds arbitrary bytes to everything that decodes untrusted input on the broker: the request
/// header, every API's request body at the version the header names, and record batches
/// (framing, CRC, decompression and records). Any trap is a bug; thrown errors are expected.
func fuzzOne(_ bytes: UnsafeRawBufferPointer) {
    var buf = ByteBuffer(bytes: bytes)
    var frame = buf
    if let header = try? RequestHeader.decode(from: &frame), let api = APIKey(rawValue: header.apiKey),
       api.versions.contains(header.apiVersion) {
        if case .produce(let p)? = try? AnyRequest.decode(apiKey: api, version: header.apiVersion, from: &frame) {
            for t in p.topicData {
                for part in t.partitionData {
                    if let r = part.records { decodeBatches(r) }
                }
            }
        }
    }
    // Also treat the input as a body of each API at a version picked from the first bytes.
    if let sel = buf.readInteger(as: UInt16.self) {
        let all = APIKey.allCases
        let api = all[Int(sel) % all.count]
        let span = Int(api.versions.upperBound - api.versions.lowerBound) + 1
        let version = api.versions.lowerBound + Int16(Int(sel >> 8) % span)
        var body = buf
        _ = try? AnyRequest.decode(apiKey: api, version: version, from: &body)
        decodeBatches(buf)
    }
}

private func decodeBatches(_ records: ByteBuffer) {
    var index = records.readerIndex
    while index + RecordBatchHeader.size <= records.writerIndex {
        guard let h = try? RecordBatchHeader(parsing: records, at: index), h.totalSize > 0,
              index + h.totalSize <= records.writerIndex else { return }
        if let slice = records.getSlice(at: index, length: h.totalSize) {
            _ = try? RecordBatch(bytes: slice).decodeRecords(maxUncompressedBytes: 1 << 20)
        }
        index += h.totalSize
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links executables with `main` aliased to `<module>_main`; defining it here (and
/// handing control to libFuzzer's driver) keeps libFuzzer's own `main` out of the link.
@_cdecl("BrookFuzz_main")
public func brookFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in
        fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
#else
import Foundation

/// Without libFuzzer: replays files (a corpus or crash reproducers) through the same code.
@main
struct CorpusRunner {
    static func main() throws {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            let files = isDir.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).map { "\(path)/\($0)" } : [path]
            for f in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: f))
                data.withUnsafeBytes { fuzzOne($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs without a crash")
    }
}
#endif
