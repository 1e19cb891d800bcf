internal import CFFmpeg
import Foundation

/// A camera that does not exist: real H.264 made in process with libavcodec (libx264), each
/// picture showing the camera's id and the time, at a modest size and rate so that a demo's
/// incidents can show dozens of them on a small machine. The relay opens one for a camera whose
/// stream is `sim://ID`.
public final class SimulatedCamera {
    public let camera: String
    public let video: VideoStreamInfo
    public let framesPerSecond: Int
    public private(set) var parameterSets = Data()
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private let frame: UnsafeMutablePointer<AVFrame>
    private let packet: UnsafeMutablePointer<AVPacket>
    private var index: Int64 = 0
    private let started = ContinuousClock.now
    private var pending: [MediaPacket] = []

    public init(camera: String, width: Int = 320, height: Int = 180, framesPerSecond: Int = 10) throws(MediaError) {
        _ = FFmpegLog.quiet
        self.camera = camera
        self.framesPerSecond = framesPerSecond
        guard let codec = avcodec_find_encoder_by_name("libx264") else {
            throw MediaError(.codecUnsupported, message: "this FFmpeg has no libx264 encoder")
        }
        guard let context = avcodec_alloc_context3(codec), let frame = av_frame_alloc(), let packet = av_packet_alloc() else {
            throw MediaError(.sourceInvalid, message: "out of memory")
        }
        context.pointee.width = Int32(width)
        context.pointee.height = Int32(height)
        context.pointee.time_base = AVRational(num: 1, den: Int32(framesPerSecond))
        context.pointee.framerate = AVRational(num: Int32(framesPerSecond), den: 1)
        context.pointee.gop_size = Int32(framesPerSecond * 2)
        context.pointee.max_b_frames = 0
        context.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        context.pointee.bit_rate = 250_000
        av_opt_set(context.pointee.priv_data, "preset", "ultrafast", 0)
        av_opt_set(context.pointee.priv_data, "tune", "zerolatency", 0)
        // Parameter sets before every keyframe, so that any keyframe starts a decodable stream.
        av_opt_set(context.pointee.priv_data, "x264-params", "repeat-headers=1", 0)
        let opened = avcodec_open2(context, codec, nil)
        func fail(_ error: MediaError) -> MediaError {
            var ownedContext: UnsafeMutablePointer<AVCodecContext>? = context
            avcodec_free_context(&ownedContext)
            var ownedFrame: UnsafeMutablePointer<AVFrame>? = frame
            av_frame_free(&ownedFrame)
            var ownedPacket: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&ownedPacket)
            return error
        }
        guard opened >= 0 else { throw fail(MediaError.ffmpeg(.codecUnsupported, "libx264", opened)) }
        frame.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        let buffered = av_frame_get_buffer(frame, 0)
        guard buffered >= 0, let parameters = avcodec_parameters_alloc() else { throw fail(MediaError.ffmpeg(.sourceInvalid, "frame", buffered)) }
        avcodec_parameters_from_context(parameters, context)
        video = VideoStreamInfo(codec: .h264, parameters: parameters, timeBase: (1, Int32(framesPerSecond)))
        encoder = context
        self.frame = frame
        self.packet = packet
    }

    deinit {
        avcodec_free_context(&encoder)
        var ownedFrame: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&ownedFrame)
        var ownedPacket: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&ownedPacket)
    }

    /// The next packet, in real time: waits until its picture's moment has come.
    public func read() throws(MediaError) -> MediaPacket? {
        while pending.isEmpty {
            let due = started.advanced(by: .milliseconds(Int(index) * 1000 / framesPerSecond))
            let wait = ContinuousClock.now.duration(to: due)
            if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds)) }
            try encodeNextPicture()
        }
        return pending.removeFirst()
    }

    private func encodeNextPicture() throws(MediaError) {
        guard let encoder else { throw MediaError(.sourceInvalid, message: "closed") }
        let writable = av_frame_make_writable(frame)
        guard writable >= 0 else { throw MediaError.ffmpeg(.sourceInvalid, "frame", writable) }
        draw()
        frame.pointee.pts = index
        index += 1
        let sent = avcodec_send_frame(encoder, frame)
        guard sent >= 0 else { throw MediaError.ffmpeg(.sourceInvalid, "encode", sent) }
        pending += MediaPacket.receiveH264(from: encoder, through: packet, parameterSets: &parameterSets) { _ in 1 }
    }

    /// A dark picture with a bar sweeping across, the camera id and the UTC time in white.
    private func draw() {
        let width = Int(frame.pointee.width), height = Int(frame.pointee.height)
        let luma = frame.pointee.data.0!, lumaStride = Int(frame.pointee.linesize.0)
        let sweep = Int(index) * 4 % max(1, width)
        let bar = max(0, sweep - 5)..<min(width, sweep + 6)
        for y in 0..<height {
            let row = luma + y * lumaStride
            memset(row, 24, width)
            memset(row + bar.lowerBound, 110, bar.count)
        }
        for plane in [frame.pointee.data.1!, frame.pointee.data.2!] {
            let stride = Int(frame.pointee.linesize.1)
            for y in 0..<(height / 2) { memset(plane + y * stride, 128, width / 2) }
        }
        var now = time_t(Date().timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&now, &parts)
        let time = String(format: "%02d:%02d:%02d UTC", parts.tm_hour, parts.tm_min, parts.tm_sec)
        BitmapFont.draw(camera.uppercased(), into: luma, stride: lumaStride, width: width, height: height, x: 8, y: 8, scale: 2)
        BitmapFont.draw(time, into: luma, stride: lumaStride, width: width, height: height, x: 8, y: 30, scale: 2)
    }
}

/// A 5×7 font for ids and times: digits, capital letters, '-', ':', '.', '_', space.
enum BitmapFont {
    /// Each glyph is 7 rows of 5 bits, most significant bit on the left.
    static let glyphs: [Character: [UInt8]] = [
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31], "3": [31, 2, 4, 2, 1, 17, 14],
        "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14], "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8],
        "8": [14, 17, 17, 14, 17, 17, 14], "9": [14, 17, 17, 15, 1, 2, 12],
        "A": [14, 17, 17, 31, 17, 17, 17], "B": [30, 17, 17, 30, 17, 17, 30], "C": [14, 17, 16, 16, 16, 17, 14], "D": [28, 18, 17, 17, 17, 18, 28],
        "E": [31, 16, 16, 30, 16, 16, 31], "F": [31, 16, 16, 30, 16, 16, 16], "G": [14, 17, 16, 23, 17, 17, 15], "H": [17, 17, 17, 31, 17, 17, 17],
        "I": [14, 4, 4, 4, 4, 4, 14], "J": [7, 2, 2, 2, 2, 18, 12], "K": [17, 18, 20, 24, 20, 18, 17], "L": [16, 16, 16, 16, 16, 16, 31],
        "M": [17, 27, 21, 21, 17, 17, 17], "N": [17, 17, 25, 21, 19, 17, 17], "O": [14, 17, 17, 17, 17, 17, 14], "P": [30, 17, 17, 30, 16, 16, 16],
        "Q": [14, 17, 17, 17, 21, 18, 13], "R": [30, 17, 17, 30, 20, 18, 17], "S": [15, 16, 16, 14, 1, 1, 30], "T": [31, 4, 4, 4, 4, 4, 4],
        "U": [17, 17, 17, 17, 17, 17, 14], "V": [17, 17, 17, 17, 17, 10, 4], "W": [17, 17, 17, 21, 21, 21, 10], "X": [17, 17, 10, 4, 10, 17, 17],
        "Y": [17, 17, 10, 4, 4, 4, 4], "Z": [31, 1, 2, 4, 8, 16, 31],
        "-": [0, 0, 0, 31, 0, 0, 0], ":": [0, 12, 12, 0, 12, 12, 0], ".": [0, 0, 0, 0, 0, 12, 12], "_": [0, 0, 0, 0, 0, 0, 31], " ": [0, 0, 0, 0, 0, 0, 0],
    ]

    static func draw(_ text: String, into plane: UnsafeMutablePointer<UInt8>, stride: Int, width: Int, height: Int, x: Int, y: Int, scale: Int) {
        for (offset, character) in text.enumerated() {
            guard let rows = glyphs[character] ?? glyphs[" "] else { continue }
            for (row, bits) in rows.enumerated() {
                for column in 0..<5 where bits & (16 >> column) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = x + (offset * 6 + column) * scale + dx, py = y + row * scale + dy
                            if px < width, py < height { plane[py * stride + px] = 235 }
                        }
                    }
                }
            }
        }
    }
}

extension SimulatedCamera: PacketSource {
    public var interruption: StreamSource.Deadline? { nil }
    public func close() {}
}
