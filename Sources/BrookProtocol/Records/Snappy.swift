import CBrookNative
import NIOCore

/// Snappy as Kafka uses it.
///
/// Kafka's Java client writes xerial snappy-java's stream format: a 16-byte header (magic
/// `\x82SNAPPY\0`, version 1, compatible version 1) and then chunks, each an int32 big-endian
/// length followed by one raw snappy block. librdkafka reads that format and, when the magic is
/// absent, a single raw snappy block — which is also what it writes. Brook writes xerial's form
/// (every client reads it) and reads both.
@usableFromInline
enum Snappy {
    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let xerialHeaderSize = 16
    /// snappy-java's default block size; Java consumers size their buffers per chunk anyway.
    static let xerialChunkSize = 32 * 1024

    static func compressXerial(_ input: UnsafeRawBufferPointer, appendingTo out: inout ByteBuffer) {
        let chunks = (input.count + xerialChunkSize - 1) / xerialChunkSize
        out.reserveCapacity(
            minimumWritableBytes: xerialHeaderSize + chunks * (4 + brook_snappy_max_compressed_length(xerialChunkSize)))
        out.writeBytes(xerialMagic)
        out.writeInteger(Int32(1))
        out.writeInteger(Int32(1))
        var offset = 0
        while offset < input.count {
            let n = Swift.min(xerialChunkSize, input.count - offset)
            let lengthIndex = out.writerIndex
            out.writeInteger(Int32(0))
            let written = out.writeWithUnsafeMutableBytes(minimumWritableBytes: brook_snappy_max_compressed_length(n)) { dst in
                brook_snappy_compress(
                    input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), n,
                    dst.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            out.setInteger(Int32(written), at: lengthIndex)
            offset += n
        }
    }

    /// Compresses `input` as one raw snappy block (no framing), as librdkafka does.
    static func compressRaw(_ input: UnsafeRawBufferPointer, appendingTo out: inout ByteBuffer) {
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: brook_snappy_max_compressed_length(input.count)) { dst in
            brook_snappy_compress(
                input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                dst.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    static func isXerial(_ input: UnsafeRawBufferPointer) -> Bool {
        guard input.count >= xerialHeaderSize else { return false }
        for i in 0..<8 where input[i] != xerialMagic[i] { return false }
        return true
    }

    static func decompress(_ input: UnsafeRawBufferPointer, maxOutput: Int, appendingTo out: inout ByteBuffer) throws {
        if isXerial(input) {
            try decompressXerial(input, maxOutput: maxOutput, appendingTo: &out)
        } else {
            try decompressRaw(input, maxOutput: maxOutput, appendingTo: &out)
        }
    }

    private static func rawLength(_ block: UnsafeRawBufferPointer) throws -> Int {
        var length = 0
        guard brook_snappy_uncompressed_length(block.baseAddress?.assumingMemoryBound(to: UInt8.self), block.count, &length) > 0 else {
            throw ProtocolError.compression("snappy: malformed length preamble")
        }
        return length
    }

    private static func decodeBlock(_ block: UnsafeRawBufferPointer, length: Int, appendingTo out: inout ByteBuffer) throws {
        var ok = true
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { dst in
            ok = brook_snappy_decompress(
                block.baseAddress?.assumingMemoryBound(to: UInt8.self), block.count,
                dst.baseAddress?.assumingMemoryBound(to: UInt8.self), length) == 0
            return ok ? length : 0
        }
        if !ok { throw ProtocolError.compression("snappy: corrupt input") }
    }

    static func decompressRaw(_ input: UnsafeRawBufferPointer, maxOutput: Int, appendingTo out: inout ByteBuffer) throws {
        let length = try rawLength(input)
        guard length <= maxOutput else { throw CompressionCodec.tooLarge(maxOutput) }
        try decodeBlock(input, length: length, appendingTo: &out)
    }

    private static func decompressXerial(_ input: UnsafeRawBufferPointer, maxOutput: Int, appendingTo out: inout ByteBuffer) throws {
        // First pass: check the framing and add up the declared sizes, so the output is allocated
        // once and a bomb is refused before anything is decoded.
        var total = 0
        var pos = xerialHeaderSize
        while pos < input.count {
            let (block, next) = try chunk(input, at: pos)
            total += try rawLength(block)
            guard total <= maxOutput else { throw CompressionCodec.tooLarge(maxOutput) }
            pos = next
        }
        out.reserveCapacity(minimumWritableBytes: total)
        pos = xerialHeaderSize
        while pos < input.count {
            let (block, next) = try chunk(input, at: pos)
            try decodeBlock(block, length: try rawLength(block), appendingTo: &out)
            pos = next
        }
    }

    private static func chunk(_ input: UnsafeRawBufferPointer, at pos: Int) throws -> (UnsafeRawBufferPointer, Int) {
        guard input.count - pos >= 4 else { throw ProtocolError.compression("snappy: truncated xerial chunk length") }
        let length = Int(Int32(bigEndian: input.loadUnaligned(fromByteOffset: pos, as: Int32.self)))
        guard length >= 0, length <= input.count - pos - 4 else {
            throw ProtocolError.compression("snappy: xerial chunk length \(length) exceeds the remaining \(input.count - pos - 4) bytes")
        }
        return (UnsafeRawBufferPointer(rebasing: input[(pos + 4)..<(pos + 4 + length)]), pos + 4 + length)
    }
}
