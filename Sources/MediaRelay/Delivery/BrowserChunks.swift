import Streams

/// A camera's packets as fragmented MP4 in WebSocket messages, made once for every browser
/// that plays the camera (Media Source Extensions play fMP4; a WebSocket, not HTTP, because a
/// browser opens at most six HTTP connections to a host and a video wall has sixteen tiles).
///
/// Each packet is one fragment (`moof` + `mdat`), one binary message. A keyframe's chunk begins
/// with the initialization segment (`ftyp` + `moov`) as a message of its own, so that a browser
/// may start at any keyframe (a joiner, or one moved to the next keyframe for being late), and a
/// browser already playing takes the same segment again, unchanged, at no cost but ~1 KB a GOP.
/// A new stream description at a keyframe (a source restarted with another size) starts a new
/// muxer there, and its new initialization segment reaches everyone with that keyframe.
/// Timestamps that go back (a source that restarted, a wrapped clock) are shifted forward by
/// the writer, so the browser's timeline only grows.
final class BrowserChunks: ChunkMaker {
    private let muxer: CameraMuxer
    /// The current muxer's `ftyp` and `moov`, framed as one message.
    private var initialization: [UInt8] = []

    init(feed: CameraFeed) {
        muxer = CameraMuxer(feed: feed, container: .fragmentedMP4)
    }

    func chunks(of packet: MediaPacket) throws -> [Chunk] {
        guard let muxed = try muxer.mux(packet) else { return [] }
        var output = muxed.bytes
        if muxed.restarted {
            // A new muxer's first output: its initialization segment, then the first fragment.
            let split = MP4Boxes.endOfInitialization(output)
            initialization = WebSocketFrame.binary(output[..<split])
            output.removeFirst(split)
        }
        guard !output.isEmpty else { return [] }
        let fragment = WebSocketFrame.binary(output[...])
        return [Chunk(packet.isKeyframe ? initialization + fragment : fragment, startsAtKeyframe: packet.isKeyframe)]
    }
}

/// The top-level boxes of an MP4 byte stream.
enum MP4Boxes {
    /// Where the leading `ftyp` and `moov` boxes end (0 when the bytes do not begin with them).
    static func endOfInitialization(_ bytes: [UInt8]) -> Int {
        var offset = 0
        while offset + 8 <= bytes.count {
            let size = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            guard type == "ftyp" || type == "moov", size >= 8, offset + size <= bytes.count else { break }
            offset += size
        }
        return offset
    }
}

/// Server-to-client WebSocket frames (RFC 6455 §5.2): never masked.
enum WebSocketFrame {
    /// One final binary frame holding `payload`.
    static func binary(_ payload: ArraySlice<UInt8>) -> [UInt8] {
        var frame: [UInt8] = [0x82]
        frame.reserveCapacity(payload.count + 10)
        switch payload.count {
        case ..<126: frame.append(UInt8(payload.count))
        case ..<65_536: frame += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            frame.append(127)
            frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        frame += payload
        return frame
    }

    /// A close frame with a status code (1000: normal; 1008: policy, as for a revoked view).
    static func close(code: UInt16, reason: String) -> [UInt8] {
        let payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8.prefix(120))
        return [0x88, UInt8(payload.count)] + payload
    }
}
