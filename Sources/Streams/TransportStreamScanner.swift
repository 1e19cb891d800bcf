/// Reads an MPEG-TS byte stream as it arrives, without demuxing it, for what a player's side
/// needs to check (the tests and benchmarks): whether every 188-byte packet is in sync, whether
/// the stream starts where a decoder can (the PAT and PMT, then a keyframe), and when each video
/// picture starts, with its decoding time.
///
/// It knows the layout FFmpeg's muxer writes: the video at a PID from 0x100, the PMT at 0x1000.
public struct TransportStreamScanner: Sendable, CustomStringConvertible {
    /// A video picture's start: its decoding time (or presentation time, without one) in 90 kHz
    /// ticks, and whether it is a random access point (a keyframe).
    public struct Picture: Sendable, Equatable {
        public let decodingTime: Int64
        public let isKeyframe: Bool
    }

    public private(set) var packets = 0
    public private(set) var inSync = true
    public private(set) var pictures: [Picture] = []
    /// Whether the PAT and the PMT came before the first video, and that video is a keyframe.
    public private(set) var startsWithTablesAndAKeyframe = false
    private var tables: Set<Int> = []
    private var sawVideo = false
    private var partial: [UInt8] = []

    public init() {}

    public var description: String { "\(packets) packets of MPEG-TS, \(pictures.count) pictures" }

    /// Some packets, all in sync.
    public var isWhole: Bool { packets > 0 && inSync }

    /// Reads `bytes` (the rest of a packet cut short waits for the next call); the pictures that started in them.
    @discardableResult
    public mutating func append(_ bytes: some Collection<UInt8>) -> ArraySlice<Picture> {
        let known = pictures.count
        partial += bytes
        let whole = partial.count / 188 * 188
        var offset = 0
        while offset < whole {
            read(partial[offset..<offset + 188])
            offset += 188
        }
        partial.removeFirst(whole)
        return pictures[known...]
    }

    private mutating func read(_ packet: ArraySlice<UInt8>) {
        let base = packet.startIndex
        packets += 1
        guard packet[base] == 0x47 else {
            inSync = false
            return
        }
        let pid = Int(packet[base + 1] & 0x1F) << 8 | Int(packet[base + 2])
        guard (0x100..<0x1000).contains(pid) else {
            if !sawVideo { tables.insert(pid) }
            return
        }
        guard packet[base + 1] & 0x40 != 0 else { return }  // not the start of a PES
        let hasAdaptation = packet[base + 3] & 0x20 != 0
        let randomAccess = hasAdaptation && packet[base + 4] > 0 && packet[base + 5] & 0x40 != 0
        if !sawVideo {
            sawVideo = true
            startsWithTablesAndAKeyframe = tables.isSuperset(of: [0, 0x1000]) && randomAccess
        }
        let payload = base + 4 + (hasAdaptation ? 1 + Int(packet[base + 4]) : 0)
        guard payload + 19 <= packet.endIndex, packet[payload] == 0, packet[payload + 1] == 0, packet[payload + 2] == 1,
              packet[payload + 7] & 0x80 != 0
        else { return }
        // The DTS when there is one (pictures reordered), else the PTS.
        let t = payload + (packet[payload + 7] & 0x40 != 0 ? 14 : 9)
        let time = Int64(packet[t] & 0x0E) << 29 | Int64(packet[t + 1]) << 22 | Int64(packet[t + 2] & 0xFE) << 14 | Int64(packet[t + 3]) << 7
            | Int64(packet[t + 4]) >> 1
        pictures.append(Picture(decodingTime: time, isKeyframe: randomAccess))
    }
}
