import NIOCore

/// Splits a byte stream into Kafka frames (int32 size + payload).
///
/// Returns `.needMoreData` on an incomplete frame and throws on a negative size or one over
/// `maxFrameSize` (Kafka's `socket.request.max.bytes`), so the connection can be closed with a
/// reason instead of buffering without bound.
public struct KafkaFrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    public enum FrameError: Error, Equatable, CustomStringConvertible {
        case negativeSize(Int32)
        case tooLarge(size: Int, max: Int)
        public var description: String {
            switch self {
            case .negativeSize(let s): return "frame size \(s) is negative"
            case .tooLarge(let s, let m): return "frame of \(s) bytes exceeds the limit of \(m) bytes"
            }
        }
    }

    public let maxFrameSize: Int
    /// Once a frame's size is known, room for up to this many bytes is made at once.
    public let reserveUpTo: Int

    /// - Parameter reserveUpTo: when a frame has only partly arrived, the buffer is grown to its
    ///   whole size at once (up to this many bytes), so the rest is read into place instead of
    ///   the buffer doubling and copying its way up. 0 (the default) leaves growth to the
    ///   handler: right for a server, where a peer could otherwise make it allocate a large
    ///   frame it never sends. A client reading fetch responses from its broker sets it.
    public init(maxFrameSize: Int = 100 * 1024 * 1024, reserveUpTo: Int = 0) {
        self.maxFrameSize = maxFrameSize
        self.reserveUpTo = reserveUpTo
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(&buffer, maxFrameSize: maxFrameSize) else {
            Self.makeRoomForFrame(&buffer, upTo: reserveUpTo)
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// Grows `buffer`, holding the start of a frame, to the frame's whole size if that is at most
    /// `limit` bytes.
    public static func makeRoomForFrame(_ buffer: inout ByteBuffer, upTo limit: Int) {
        guard limit > 0, let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self), size >= 0 else { return }
        let missing = 4 + Int(size) - buffer.readableBytes
        if missing > buffer.writableBytes && 4 + Int(size) <= limit {
            buffer.reserveCapacity(minimumWritableBytes: missing)
        }
    }

    /// The frame-splitting logic without a channel, for tests and clients.
    public static func nextFrame(_ buffer: inout ByteBuffer, maxFrameSize: Int) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        if size < 0 { throw FrameError.negativeSize(size) }
        if Int(size) > maxFrameSize { throw FrameError.tooLarge(size: Int(size), max: maxFrameSize) }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))
    }
}
