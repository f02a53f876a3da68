/// Big-endian integers at byte offsets of raw memory, as batch headers and index entries store
/// them (unaligned: batches sit at any position of a file or buffer).
enum BigEndian {
    @inline(__always)
    static func load<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ offset: Int, as: T.Type = T.self) -> T {
        T(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inline(__always)
    static func store<T: FixedWidthInteger>(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: T) {
        p.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }
}
