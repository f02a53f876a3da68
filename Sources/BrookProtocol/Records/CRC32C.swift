import CBrookNative
import NIOCore

/// CRC-32C (Castagnoli), the checksum of Kafka record batches (magic 2).
public enum CRC32C {
    /// Checksum of `bytes`, optionally continuing a previous `crc`.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        brook_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Checksum of the readable bytes of `buffer` in `range` (absolute indices).
    public static func checksum(_ buffer: ByteBuffer, range: Range<Int>) -> UInt32 {
        buffer.withVeryUnsafeBytes { raw in
            checksum(UnsafeRawBufferPointer(rebasing: raw[range]))
        }
    }

    public static var usesHardware: Bool { brook_crc32c_hardware() != 0 }
}
