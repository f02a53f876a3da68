import CBrookNative
import NIOCore

/// The compression of a record batch, stored in bits 0–2 of its attributes.
///
/// Each codec writes what Kafka's own clients write, so any consumer can read Brook's batches:
/// gzip with a gzip wrapper, snappy in xerial's framing, lz4 in the LZ4 frame format with
/// independent 64 KiB blocks, zstd frames. Decoding accepts the variants other clients send
/// (plain raw snappy from librdkafka, concatenated gzip members and frames).
public enum CompressionCodec: Int8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4

    /// The codec encoded in a batch's attributes; throws for the ids 5–7 no codec uses.
    @inlinable
    public init(attributes: Int16) throws {
        guard let codec = CompressionCodec(rawValue: Int8(attributes & 0x7)) else {
            throw ProtocolError.compression("unknown compression codec id \(attributes & 0x7)")
        }
        self = codec
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .gzip: return "gzip"
        case .snappy: return "snappy"
        case .lz4: return "lz4"
        case .zstd: return "zstd"
        }
    }

    /// The level used when none is given: zlib's default (6), lz4's fast mode (as librdkafka),
    /// zstd's default (3). Snappy has no levels.
    public var defaultLevel: Int {
        switch self {
        case .none, .snappy: return 0
        case .gzip: return 6
        case .lz4: return 0
        case .zstd: return 3
        }
    }

    /// Whether the codec's library could be loaded (lz4 and zstd are opened at run time).
    public var isAvailable: Bool {
        brook_codec_available(Int32(rawValue), nil, 0) != 0
    }

    /// Throws a ``ProtocolError/compression(_:)`` naming the missing library when the codec cannot be used.
    public func checkAvailable() throws {
        try withErrorBuffer { err in
            if brook_codec_available(Int32(rawValue), err, Self.errorCapacity) == 0 {
                throw ProtocolError.compression(String(cString: err))
            }
        }
    }

    // MARK: - public API

    /// Compresses the readable bytes of `input`.
    ///
    /// - Parameter level: codec-specific level; `nil` uses ``defaultLevel``.
    public func compress(
        _ input: ByteBuffer,
        level: Int? = nil,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> ByteBuffer {
        if self == .none { return input }
        var out = allocator.buffer(capacity: 0)
        try input.withUnsafeReadableBytes { raw in
            try compress(raw, level: level, appendingTo: &out)
        }
        return out
    }

    /// Decompresses the readable bytes of `input`.
    ///
    /// - Parameter maxOutput: the largest decompressed size accepted. Compressed data is
    ///   attacker-controlled and can expand a thousandfold or more, so decoding stops and
    ///   throws ``ProtocolError/compression(_:)`` as soon as the output would exceed it.
    public func decompress(
        _ input: ByteBuffer,
        maxOutput: Int,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) throws -> ByteBuffer {
        if self == .none {
            guard input.readableBytes <= maxOutput else { throw Self.tooLarge(maxOutput) }
            return input
        }
        var out = allocator.buffer(capacity: 0)
        try input.withUnsafeReadableBytes { raw in
            try decompress(raw, maxOutput: maxOutput, appendingTo: &out)
        }
        return out
    }

    // MARK: - raw forms used by the batch encoder and decoder

    /// Compresses `input` and writes the result at the writer index of `out`.
    @usableFromInline
    func compress(_ input: UnsafeRawBufferPointer, level: Int?, appendingTo out: inout ByteBuffer) throws {
        switch self {
        case .none:
            out.writeBytes(input)
        case .snappy:
            Snappy.compressXerial(input, appendingTo: &out)
        case .gzip, .lz4, .zstd:
            let level = Int32(clamping: level ?? defaultLevel)
            let codec = Int32(rawValue)
            try withErrorBuffer { err in
                let bound = brook_compress_bound(codec, level, input.count, err, Self.errorCapacity)
                if bound == 0 { throw ProtocolError.compression(String(cString: err)) }
                var written: Int64 = 0
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { dst in
                    written = brook_compress(
                        codec, level, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                        dst.baseAddress?.assumingMemoryBound(to: UInt8.self), dst.count, err, Self.errorCapacity)
                    return written < 0 ? 0 : Int(written)
                }
                if written < 0 { throw ProtocolError.compression(String(cString: err)) }
            }
        }
    }

    /// Decompresses `input` and writes the result at the writer index of `out`, never writing
    /// more than `maxOutput` bytes.
    @usableFromInline
    func decompress(_ input: UnsafeRawBufferPointer, maxOutput: Int, appendingTo out: inout ByteBuffer) throws {
        guard maxOutput >= 0 else { throw ProtocolError.compression("negative output bound \(maxOutput)") }
        switch self {
        case .none:
            guard input.count <= maxOutput else { throw Self.tooLarge(maxOutput) }
            out.writeBytes(input)
        case .snappy:
            try Snappy.decompress(input, maxOutput: maxOutput, appendingTo: &out)
        case .gzip, .lz4, .zstd:
            try decompressStream(input, maxOutput: maxOutput, appendingTo: &out)
        }
    }

    private func decompressStream(_ input: UnsafeRawBufferPointer, maxOutput: Int, appendingTo out: inout ByteBuffer) throws {
        // One byte past the bound lets the decoder prove the output is larger than allowed.
        let limit = maxOutput == Int.max ? Int.max : maxOutput + 1
        let inBase = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let start = out.writerIndex
        var chunk = Swift.min(Swift.max(sizeHint(input), 1024), limit)
        try withErrorBuffer { err in
            guard let decoder = brook_decoder_acquire(Int32(rawValue), err, Self.errorCapacity) else {
                throw ProtocolError.compression(String(cString: err))
            }
            defer { brook_decoder_release(decoder) }
            var inPos = 0
            while true {
                let allowed = limit - (out.writerIndex - start)
                if allowed <= 0 { throw Self.tooLarge(maxOutput) }
                var status: Int32 = 0
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: Swift.min(chunk, allowed)) { dst in
                    var outPos = 0
                    status = brook_decoder_run(
                        decoder, inBase, input.count, &inPos,
                        dst.baseAddress?.assumingMemoryBound(to: UInt8.self), Swift.min(dst.count, allowed),
                        &outPos, err, Self.errorCapacity)
                    return outPos
                }
                switch status {
                case Int32(BROOK_DECODE_DONE):
                    if out.writerIndex - start > maxOutput { throw Self.tooLarge(maxOutput) }
                    return
                case Int32(BROOK_DECODE_NEED_OUTPUT):
                    // Double what we have so far: amortised O(n) copying as the buffer grows.
                    chunk = Swift.max(out.writerIndex - start, 1024)
                default:
                    throw ProtocolError.compression(String(cString: err))
                }
            }
        }
    }

    /// A first guess of the decompressed size, from what the format's header or trailer declares,
    /// capped by how far the format can expand so a lying header cannot force a huge allocation.
    private func sizeHint(_ input: UnsafeRawBufferPointer) -> Int {
        let n = input.count
        switch self {
        case .gzip:
            // ISIZE: the last member's size mod 2^32, little endian. Deflate expands at most ~1032x.
            guard n >= 18 else { return 64 }
            let isize = Int(input.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self).littleEndian)
            return isize > 0 ? Swift.min(isize, n &* 1032) : n &* 4
        case .lz4:
            // FLG bit 3: an 8-byte content size follows FLG and BD. LZ4 expands at most ~255x.
            if n >= 15, input.loadUnaligned(as: UInt32.self).littleEndian == 0x184D_2204, input[4] & 0x08 != 0 {
                let size = input.loadUnaligned(fromByteOffset: 6, as: UInt64.self).littleEndian
                if size > 0 && size < UInt64(Int.max) { return Swift.min(Int(size), n &* 256) }
            }
            return n &* 4
        case .zstd:
            let size = brook_zstd_frame_content_size(input.baseAddress?.assumingMemoryBound(to: UInt8.self), n)
            return size > 0 && size < UInt64(Int.max) ? Int(size) : n &* 4
        case .none, .snappy:
            return n
        }
    }

    // MARK: - helpers

    @usableFromInline
    static let errorCapacity = 256

    @usableFromInline
    static func tooLarge(_ maxOutput: Int) -> ProtocolError {
        .compression("decompressed data exceeds the limit of \(maxOutput) bytes")
    }

    /// Runs `body` with a stack buffer for error messages from the C layer.
    @usableFromInline
    func withErrorBuffer<R>(_ body: (UnsafeMutablePointer<CChar>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: CChar.self, capacity: Self.errorCapacity) { buf in
            buf[0] = 0
            return try body(buf.baseAddress!)
        }
    }
}
