internal import CFFmpeg
import Foundation

/// A camera's video with its owner's privacy masks painted black before anything else sees it:
/// decoded, masked and encoded again (libx264, zero latency), once per camera, for every viewer,
/// recording and thumbnail alike.
///
/// The relay's one exception to "never decode on the video path", and only for a camera whose
/// registry entry has masks: the law wants them applied before any output, and a camera that
/// masks by itself is registered without them. Each output picture is the input picture of the
/// same timestamp; a keyframe of the camera's is a keyframe here (an IDR with its parameter sets),
/// so the GOP cache and late joiners behave as for any camera.
public final class PrivacyMaskedSource: PacketSource {
    /// The stream as it leaves: H.264 at the camera's size and time base.
    public let video: VideoStreamInfo
    /// The parameter sets of the latest keyframe out (every keyframe carries them).
    public private(set) var parameterSets = Data()
    public var interruption: StreamSource.Deadline? { inner.interruption }

    private let inner: any PacketSource
    private let masks: [Thumbnailer.Mask]
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private let frame: UnsafeMutablePointer<AVFrame>
    /// Encoded packets not yet read.
    private var pending: [MediaPacket] = []
    /// Each input packet's duration, by timestamp, until its picture is encoded.
    private var durations: [Int64: Int64] = [:]
    private var lastPts: Int64?
    private var ended = false

    /// Takes over `inner` (closed with this source, not when this throws).
    public init(_ inner: any PacketSource, masks: [Thumbnailer.Mask]) throws(MediaError) {
        _ = FFmpegLog.quiet
        let input = inner.video
        guard input.width > 0, input.height > 0 else {
            throw MediaError(.maskingFailed, message: "the camera's stream does not say its picture size; its masks cannot be placed")
        }
        // One thread: frame threads would hold pictures back, one per thread.
        var decoder: UnsafeMutablePointer<AVCodecContext>? = try input.openDecoder(threads: 1, failure: .maskingFailed)
        var encoder: UnsafeMutablePointer<AVCodecContext>?
        var (parameters, packet, frame) = (avcodec_parameters_alloc(), av_packet_alloc(), av_frame_alloc())
        do throws(MediaError) {
            let format = AVPixelFormat(input.parameters.pointee.format) == AV_PIX_FMT_YUVJ420P ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P
            encoder = try Self.openEncoder(width: Int32(input.width), height: Int32(input.height), format: format, timeBase: input.timeBase)
            guard let parameters, packet != nil, frame != nil else { throw MediaError(.maskingFailed, message: "out of memory") }
            avcodec_parameters_from_context(parameters, encoder)
        } catch {
            avcodec_free_context(&decoder)
            avcodec_free_context(&encoder)
            avcodec_parameters_free(&parameters)
            av_packet_free(&packet)
            av_frame_free(&frame)
            throw error
        }
        (self.inner, self.masks, self.decoder, self.encoder, self.packet, self.frame) = (inner, masks, decoder, encoder, packet!, frame!)
        video = VideoStreamInfo(codec: .h264, parameters: parameters!, timeBase: input.timeBase)
    }

    deinit {
        avcodec_free_context(&decoder)
        avcodec_free_context(&encoder)
        var (ownedPacket, ownedFrame): (UnsafeMutablePointer<AVPacket>?, UnsafeMutablePointer<AVFrame>?) = (packet, frame)
        av_packet_free(&ownedPacket)
        av_frame_free(&ownedFrame)
    }

    public func read() throws(MediaError) -> MediaPacket? {
        while pending.isEmpty {
            if ended { return nil }
            if let input = try inner.read() {
                try decode(input)
            } else {
                // The camera's stream ended: what the decoder and encoder still hold comes out.
                ended = true
                _ = avcodec_send_packet(decoder, nil)
                try drainDecoder()
                try flushEncoder()
            }
        }
        return pending.removeFirst()
    }

    public func close() {
        inner.close()
    }

    // MARK: The pipeline

    private func decode(_ input: MediaPacket) throws(MediaError) {
        guard let decoder else { return }
        if let pts = input.pts ?? input.dts { durations[pts] = input.duration }
        try input.decode(with: decoder, through: packet, failure: .maskingFailed)
        try drainDecoder()
        // Durations of pictures the decoder dropped would otherwise pile up.
        if durations.count > 256 { durations.removeAll() }
    }

    private func drainDecoder() throws(MediaError) {
        while avcodec_receive_frame(decoder, frame) >= 0 {
            defer { av_frame_unref(frame) }
            try encode(frame)
        }
    }

    /// Masks one decoded picture and hands it to the encoder.
    private func encode(_ decoded: UnsafeMutablePointer<AVFrame>) throws(MediaError) {
        guard let current = encoder else { return }
        let (width, height) = (decoded.pointee.width, decoded.pointee.height)
        if width != current.pointee.width || height != current.pointee.height {
            // The camera changed its size: a new encoder at the new size, whose first keyframe
            // brings the new parameter sets (the feed announces the change from them).
            let format = current.pointee.pix_fmt
            try flushEncoder()
            avcodec_free_context(&encoder)
            encoder = try Self.openEncoder(width: width, height: height, format: format, timeBase: video.timeBase)
        }
        guard let encoder else { return }
        // The encoder's pixel format as is (4:2:0, the masks' layout); anything else is converted.
        var picture = decoded
        var converted: UnsafeMutablePointer<AVFrame>?
        if AVPixelFormat(decoded.pointee.format) != encoder.pointee.pix_fmt {
            converted = try Thumbnailer.scale(decoded, width: Int(width), height: Int(height), format: encoder.pointee.pix_fmt, failure: .maskingFailed)
            picture = converted!
        } else {
            let writable = av_frame_make_writable(decoded)
            guard writable >= 0 else { throw .ffmpeg(.maskingFailed, "picture", writable) }
        }
        defer { av_frame_free(&converted) }
        Thumbnailer.blackOut(masks, in: picture)
        let timestamp = decoded.pointee.best_effort_timestamp == vigil_nopts() ? decoded.pointee.pts : decoded.pointee.best_effort_timestamp
        var pts = timestamp == vigil_nopts() ? (lastPts ?? -1) + 1 : timestamp
        if let lastPts, pts <= lastPts { pts = lastPts + 1 }
        lastPts = pts
        picture.pointee.pts = pts
        // The camera's keyframes stay keyframes: late joiners start where they would have.
        picture.pointee.pict_type = decoded.pointee.key_frame != 0 ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        let sent = avcodec_send_frame(encoder, picture)
        guard sent >= 0 else { throw .ffmpeg(.maskingFailed, "H.264 encoding", sent) }
        try drainEncoder()
    }

    /// What the encoder still holds comes out (before it ends, or is replaced).
    private func flushEncoder() throws(MediaError) {
        _ = avcodec_send_frame(encoder, nil)
        try drainEncoder()
    }

    private func drainEncoder() throws(MediaError) {
        guard let encoder else { return }
        pending += MediaPacket.receiveH264(from: encoder, through: packet, parameterSets: &parameterSets) { pts in
            pts.flatMap { durations.removeValue(forKey: $0) }
        }
    }

    /// libx264 for live video: no B-frames and no look-ahead (each picture out as it comes in),
    /// parameter sets before every keyframe, a keyframe where the camera had one.
    private static func openEncoder(
        width: Int32, height: Int32, format: AVPixelFormat, timeBase: (numerator: Int32, denominator: Int32)
    ) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        guard let codec = avcodec_find_encoder_by_name("libx264") else {
            throw MediaError(.codecUnsupported, message: "this FFmpeg has no libx264 encoder: masked cameras cannot be relayed")
        }
        guard let encoder = avcodec_alloc_context3(codec) else { throw MediaError(.maskingFailed, message: "out of memory") }
        encoder.pointee.width = width
        encoder.pointee.height = height
        encoder.pointee.pix_fmt = format
        encoder.pointee.time_base = AVRational(num: timeBase.numerator, den: timeBase.denominator)
        // A hint for rate control only: pictures keep their own timestamps.
        encoder.pointee.framerate = AVRational(num: 25, den: 1)
        encoder.pointee.max_b_frames = 0
        // The camera's keyframes decide; this only bounds a camera that sends too few.
        encoder.pointee.gop_size = 600
        av_opt_set(encoder.pointee.priv_data, "preset", "veryfast", 0)
        av_opt_set(encoder.pointee.priv_data, "tune", "zerolatency", 0)
        av_opt_set(encoder.pointee.priv_data, "crf", "23", 0)
        av_opt_set_int(encoder.pointee.priv_data, "forced-idr", 1, 0)
        av_opt_set(encoder.pointee.priv_data, "x264-params", "repeat-headers=1", 0)
        let opened = avcodec_open2(encoder, codec, nil)
        guard opened >= 0 else {
            var owned: UnsafeMutablePointer<AVCodecContext>? = encoder
            avcodec_free_context(&owned)
            throw .ffmpeg(.maskingFailed, "libx264", opened)
        }
        return encoder
    }
}
