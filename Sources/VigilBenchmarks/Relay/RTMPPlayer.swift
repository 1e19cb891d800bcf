import Foundation
import Glibc

/// The least of an RTMP player that nginx-rtmp serves a live stream to: the handshake,
/// `connect`, `createStream` and `play` (AMF0), then the server's chunks read as they come for
/// the video messages' timestamps and keyframes. Written for the benchmark only: it sends no
/// acknowledgements and understands nothing but what it needs.
enum RTMPPlayer {
    /// Connects to `rtmp://127.0.0.1:port/app/stream` and asks to play it; the socket, blocking.
    static func play(port: Int, app: String, stream: String, receiveBuffer: Int32? = nil) throws -> Int32 {
        let socket = try LoopbackSocket.connect(port: port, receiveBuffer: receiveBuffer)
        var c1 = [UInt8](repeating: 0, count: 1536)
        for index in 8..<c1.count { c1[index] = UInt8.random(in: 0...255) }
        try LoopbackSocket.send([0x03] + c1, on: socket)
        let s0s1s2 = try LoopbackSocket.receive(exactly: 1 + 1536 + 1536, from: socket)
        try LoopbackSocket.send(Array(s0s1s2[1..<1537]), on: socket)  // C2 echoes S1
        let url = "rtmp://127.0.0.1:\(port)/\(app)"
        try LoopbackSocket.send(message(stream: 3, type: 0x14, streamID: 0, body: AMF0.string("connect") + AMF0.number(1) + AMF0.object([
            ("app", AMF0.string(app)), ("type", AMF0.string("nonprivate")), ("flashVer", AMF0.string("FMLE/3.0")), ("tcUrl", AMF0.string(url)),
        ])), on: socket)
        try LoopbackSocket.send(message(stream: 3, type: 0x14, streamID: 0, body: AMF0.string("createStream") + AMF0.number(2) + AMF0.null), on: socket)
        // nginx-rtmp numbers the first stream of a connection 1.
        try LoopbackSocket.send(
            message(stream: 8, type: 0x14, streamID: 1, body: AMF0.string("play") + AMF0.number(0) + AMF0.null + AMF0.string(stream)), on: socket)
        return socket
    }

    /// One message in chunks of the default 128 bytes (type 0 header, then type 3 continuations).
    private static func message(stream: UInt8, type: UInt8, streamID: UInt32, body: [UInt8]) -> [UInt8] {
        let length = UInt32(body.count)
        var bytes: [UInt8] = [stream, 0, 0, 0, UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type]
        bytes += withUnsafeBytes(of: streamID.littleEndian, Array.init)
        for start in stride(from: 0, to: body.count, by: 128) {
            if start > 0 { bytes.append(0xC0 | stream) }
            bytes += body[start..<min(body.count, start + 128)]
        }
        return bytes
    }

    /// AMF0 values, as `connect`, `createStream` and `play` need them.
    enum AMF0 {
        static func string(_ text: String) -> [UInt8] {
            let utf8 = Array(text.utf8)
            return [0x02, UInt8(utf8.count >> 8), UInt8(utf8.count & 0xFF)] + utf8
        }

        static func number(_ value: Double) -> [UInt8] {
            [0x00] + withUnsafeBytes(of: value.bitPattern.bigEndian, Array.init)
        }

        static let null: [UInt8] = [0x05]

        static func object(_ properties: [(String, [UInt8])]) -> [UInt8] {
            var bytes: [UInt8] = [0x03]
            for (key, value) in properties { bytes += Array(string(key).dropFirst()) + value }
            return bytes + [0x00, 0x00, 0x09]
        }
    }

    /// The server's chunk stream, read as it comes: each video message's timestamp (ms) and
    /// whether it is a keyframe picture (not the decoder configuration sent first).
    struct ChunkReader {
        struct Video: Equatable {
            let timestamp: Int64
            let isKeyframe: Bool
        }

        private struct ChunkStream {
            var timestamp: Int64 = 0
            var delta: Int64 = 0
            var length = 0
            var type: UInt8 = 0
            var remaining = 0
            var first: [UInt8] = []
        }

        private var buffer: [UInt8] = []
        private var chunkSize = 128
        private var streams: [Int: ChunkStream] = [:]

        /// Reads `bytes`; the video messages that started in them.
        mutating func append(_ bytes: some Collection<UInt8>) -> [Video] {
            buffer += bytes
            var videos: [Video] = []
            var offset = 0
            while let (consumed, video) = chunk(at: offset) {
                offset += consumed
                if let video { videos.append(video) }
            }
            buffer.removeFirst(offset)
            return videos
        }

        /// The chunk at `offset` if it is whole: its size, and the video message it starts.
        private mutating func chunk(at offset: Int) -> (Int, Video?)? {
            guard offset < buffer.count else { return nil }
            var position = offset
            let format = buffer[position] >> 6
            let marker = Int(buffer[position] & 0x3F)
            var id = marker
            position += 1
            if marker < 2 {  // a chunk stream id in one or two more bytes
                guard position + marker < buffer.count else { return nil }
                id = 64 + Int(buffer[position]) + (marker == 1 ? Int(buffer[position + 1]) * 256 : 0)
                position += marker + 1
            }
            let headerLength = [11, 7, 3, 0][Int(format)]
            guard position + headerLength <= buffer.count else { return nil }
            var stream = streams[id] ?? ChunkStream()
            func uint24(_ at: Int) -> Int64 { Int64(buffer[at]) << 16 | Int64(buffer[at + 1]) << 8 | Int64(buffer[at + 2]) }
            var time: Int64 = format < 3 ? uint24(position) : 0
            if format <= 1 {
                stream.length = Int(uint24(position + 3))
                stream.type = buffer[position + 6]
            }
            position += headerLength
            if format < 3, time == 0xFFFFFF {
                guard position + 4 <= buffer.count else { return nil }
                time = Int64(buffer[position]) << 24 | uint24(position + 1)
                position += 4
            }
            let starts = stream.remaining == 0
            if starts {
                switch format {
                case 0: stream.timestamp = time
                case 1, 2: stream.delta = time; stream.timestamp += time
                default: stream.timestamp += stream.delta
                }
                stream.remaining = stream.length
                stream.first = []
            }
            let payload = min(chunkSize, stream.remaining)
            guard position + payload <= buffer.count else { return nil }
            if stream.first.count < 4 { stream.first += buffer[position..<min(position + payload, position + 4 - stream.first.count)] }
            stream.remaining -= payload
            position += payload
            var video: Video?
            if stream.remaining == 0 {
                if stream.type == 1, stream.first.count == 4 {  // Set Chunk Size
                    chunkSize = Int(stream.first[0] & 0x7F) << 24 | Int(stream.first[1]) << 16 | Int(stream.first[2]) << 8 | Int(stream.first[3])
                }
            }
            if starts, stream.type == 9, stream.first.count >= 2 {
                // FLV video tag: frame type 1 = keyframe; AVC packet type 1 = a picture (0 = configuration).
                video = Video(timestamp: stream.timestamp, isKeyframe: stream.first[0] >> 4 == 1 && stream.first[1] == 1)
            }
            streams[id] = stream
            return (position - offset, video)
        }
    }
}

/// Blocking loopback TCP for the benchmark's players.
enum LoopbackSocket {
    /// A connected socket; `receiveBuffer` is set before connecting (a small one for a slow player).
    static func connect(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw BenchSetupFailure("socket: \(errno)") }
        if var size = receiveBuffer { setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw BenchSetupFailure("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        return socket
    }

    static func send(_ bytes: [UInt8], on socket: Int32) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard count > 0 else { throw BenchSetupFailure("write: \(String(cString: strerror(errno)))") }
            sent += count
        }
    }

    static func receive(exactly count: Int, from socket: Int32) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let got = bytes[received...].withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            guard got > 0 else { throw BenchSetupFailure("the peer closed or was silent during the handshake") }
            received += got
        }
        return bytes
    }
}
