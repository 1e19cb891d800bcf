internal import CFFmpeg
import Foundation

/// A still picture of a camera: a JPEG made from one keyframe, privacy masks applied.
public struct Thumbnail: Sendable {
    public let camera: String
    public let jpeg: Data
    public let width: Int
    public let height: Int
    /// When the keyframe it was made from reached the relay.
    public let takenAt: Date

    public init(camera: String, jpeg: Data, width: Int, height: Int, takenAt: Date) {
        self.camera = camera
        self.jpeg = jpeg
        self.width = width
        self.height = height
        self.takenAt = takenAt
    }
}

/// Makes a thumbnail from one keyframe, off the video path: libavcodec decodes the keyframe
/// alone (non-key frames are discarded by the decoder), libswscale scales it down, the privacy
/// masks are blacked out, and libavcodec's mjpeg encoder writes the JPEG. No process is forked.
///
/// Each thumbnail uses a fresh decoder: a keyframe needs no earlier state, a corrupt packet
/// cannot poison the next thumbnail, and a resolution change needs no special case. Opening an
/// H.264 decoder costs far less than decoding the picture.
public enum Thumbnailer {
    /// A privacy mask: a polygon of `[x, y]` points, each a fraction (0…1) of the picture's width and height.
    public typealias Mask = [[Double]]

    /// - Parameters:
    ///   - keyframe: a keyframe packet (Annex B); `parameterSets` are put in front when it lacks them.
    ///   - maximumWidth: the thumbnail's width at most (the picture is never enlarged).
    public static func make(
        camera: String, keyframe: MediaPacket, parameterSets: Data, video: VideoStreamInfo, masks: [Mask], maximumWidth: Int = 320,
        takenAt: Date = Date()
    ) throws(MediaError) -> Thumbnail {
        _ = FFmpegLog.quiet
        guard keyframe.isKeyframe else { throw MediaError(.thumbnailFailed, message: "a thumbnail is made from a keyframe") }
        let picture = try decode(keyframe, parameterSets: parameterSets, video: video)
        defer {
            var owned: UnsafeMutablePointer<AVFrame>? = picture
            av_frame_free(&owned)
        }
        let sourceWidth = Int(picture.pointee.width), sourceHeight = Int(picture.pointee.height)
        // Even sizes: the JPEG's chroma is subsampled by two both ways.
        let width = max(2, min(maximumWidth, sourceWidth) & ~1)
        let height = max(2, (sourceHeight * width / max(1, sourceWidth)) & ~1)
        let scaled = try scale(picture, width: width, height: height)
        defer {
            var owned: UnsafeMutablePointer<AVFrame>? = scaled
            av_frame_free(&owned)
        }
        blackOut(masks, in: scaled)
        return Thumbnail(camera: camera, jpeg: try encodeJPEG(scaled), width: width, height: height, takenAt: takenAt)
    }

    /// Decodes one keyframe into a picture (the caller frees it).
    private static func decode(_ keyframe: MediaPacket, parameterSets: Data, video: VideoStreamInfo) throws(MediaError) -> UnsafeMutablePointer<AVFrame> {
        let codecId = video.codec == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC
        guard let codec = avcodec_find_decoder(codecId) else { throw MediaError(.codecUnsupported, message: "no \(video.codec) decoder") }
        guard let frame = av_frame_alloc() else { throw MediaError(.thumbnailFailed, message: "out of memory") }
        do {
            try withCodecContext(codec) { context, packet throws(MediaError) in
                let copied = avcodec_parameters_to_context(context, video.parameters)
                guard copied >= 0 else { throw .ffmpeg(.thumbnailFailed, "codec parameters", copied) }
                context.pointee.skip_frame = AVDISCARD_NONKEY
                context.pointee.thread_count = 1
                let opened = avcodec_open2(context, codec, nil)
                guard opened >= 0 else { throw .ffmpeg(.codecUnsupported, "\(video.codec) decoder", opened) }

                let data = AnnexB.withParameterSets(parameterSets, before: keyframe.data, codec: video.codec)
                let allocated = av_new_packet(packet, Int32(data.count))
                guard allocated >= 0 else { throw .ffmpeg(.thumbnailFailed, "packet", allocated) }
                data.withUnsafeBytes { buffer in
                    if let base = buffer.baseAddress { packet.pointee.data.update(from: base.assumingMemoryBound(to: UInt8.self), count: buffer.count) }
                }
                packet.pointee.flags = 0x0001
                let sent = avcodec_send_packet(context, packet)
                guard sent >= 0 else { throw .ffmpeg(.thumbnailFailed, "decode", sent) }
                // The end of the stream: the decoder gives up the picture it may hold back for reordering.
                _ = avcodec_send_packet(context, nil)
                let received = avcodec_receive_frame(context, frame)
                guard received >= 0 else { throw .ffmpeg(.thumbnailFailed, "the keyframe did not decode", received) }
                guard frame.pointee.width > 0, frame.pointee.height > 0 else { throw MediaError(.thumbnailFailed, message: "an empty picture") }
            }
        } catch {
            var ownedFrame: UnsafeMutablePointer<AVFrame>? = frame
            av_frame_free(&ownedFrame)
            throw error
        }
        return frame
    }

    /// Scales a picture to `format` (by default full-range YUV 4:2:0, the JPEG encoder's), the
    /// caller frees it; failures carry `failure`.
    static func scale(
        _ picture: UnsafeMutablePointer<AVFrame>, width: Int, height: Int, format: AVPixelFormat = AV_PIX_FMT_YUVJ420P,
        failure: MediaErrorCode = .thumbnailFailed
    ) throws(MediaError) -> UnsafeMutablePointer<AVFrame> {
        guard let scaled = av_frame_alloc() else { throw MediaError(failure, message: "out of memory") }
        func fail(_ error: MediaError) -> MediaError {
            var owned: UnsafeMutablePointer<AVFrame>? = scaled
            av_frame_free(&owned)
            return error
        }
        scaled.pointee.format = format.rawValue
        scaled.pointee.width = Int32(width)
        scaled.pointee.height = Int32(height)
        let buffered = av_frame_get_buffer(scaled, 0)
        guard buffered >= 0 else { throw fail(.ffmpeg(failure, "picture", buffered)) }
        guard let scaler = sws_getContext(
            picture.pointee.width, picture.pointee.height, AVPixelFormat(picture.pointee.format), Int32(width), Int32(height),
            format, Int32(SWS_BILINEAR), nil, nil, nil)
        else { throw fail(MediaError(failure, message: "cannot scale pixel format \(picture.pointee.format)")) }
        defer { sws_freeContext(scaler) }
        let rows = withUnsafePointer(to: &picture.pointee.data) { source in
            withUnsafePointer(to: &picture.pointee.linesize) { sourceStrides in
                withUnsafePointer(to: &scaled.pointee.data) { target in
                    withUnsafePointer(to: &scaled.pointee.linesize) { targetStrides in
                        sws_scale(
                            scaler,
                            UnsafeRawPointer(source).assumingMemoryBound(to: UnsafePointer<UInt8>?.self),
                            UnsafeRawPointer(sourceStrides).assumingMemoryBound(to: Int32.self), 0, picture.pointee.height,
                            UnsafeRawPointer(target).assumingMemoryBound(to: UnsafeMutablePointer<UInt8>?.self),
                            UnsafeRawPointer(targetStrides).assumingMemoryBound(to: Int32.self))
                    }
                }
            }
        }
        guard rows > 0 else { throw fail(MediaError(failure, message: "scaling failed")) }
        return scaled
    }

    /// Paints every pixel whose centre lies inside a mask black (even-odd rule, so a mask may
    /// have any shape). Masks are applied before encoding: the masked pixels never leave the relay.
    static func blackOut(_ masks: [Mask], in frame: UnsafeMutablePointer<AVFrame>) {
        let width = Int(frame.pointee.width), height = Int(frame.pointee.height)
        let luma = frame.pointee.data.0!, lumaStride = Int(frame.pointee.linesize.0)
        let blue = frame.pointee.data.1!, red = frame.pointee.data.2!, chromaStride = Int(frame.pointee.linesize.1)
        for mask in masks where mask.count >= 3 {
            let points = mask.compactMap { $0.count == 2 ? (x: $0[0] * Double(width), y: $0[1] * Double(height)) : nil }
            for y in 0..<height {
                let centreY = Double(y) + 0.5
                // Where the polygon's edges cross this row, left to right: inside between pairs.
                var crossings: [Double] = []
                for (index, a) in points.enumerated() {
                    let b = points[(index + 1) % points.count]
                    if (a.y <= centreY) != (b.y <= centreY) { crossings.append(a.x + (centreY - a.y) / (b.y - a.y) * (b.x - a.x)) }
                }
                crossings.sort()
                for pair in stride(from: 0, to: crossings.count - 1, by: 2) {
                    let first = max(0, Int((crossings[pair] - 0.5).rounded(.up)))
                    let last = min(width - 1, Int((crossings[pair + 1] - 0.5).rounded(.down)))
                    guard first <= last else { continue }
                    memset(luma + y * lumaStride + first, 0, last - first + 1)
                    let chromaRow = y / 2 * chromaStride
                    memset(blue + chromaRow + first / 2, 128, last / 2 - first / 2 + 1)
                    memset(red + chromaRow + first / 2, 128, last / 2 - first / 2 + 1)
                }
            }
        }
    }

    private static func encodeJPEG(_ frame: UnsafeMutablePointer<AVFrame>) throws(MediaError) -> Data {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else { throw MediaError(.codecUnsupported, message: "no mjpeg encoder") }
        return try withCodecContext(codec) { context, packet throws(MediaError) in
            context.pointee.width = frame.pointee.width
            context.pointee.height = frame.pointee.height
            context.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
            context.pointee.time_base = AVRational(num: 1, den: 1)
            // A fixed quality (qscale 4 of 2–31): sharp enough to read a scene, about 10–20 KB at 320 px.
            context.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            context.pointee.global_quality = 4 * Int32(FF_QP2LAMBDA)
            let opened = avcodec_open2(context, codec, nil)
            guard opened >= 0 else { throw .ffmpeg(.codecUnsupported, "mjpeg encoder", opened) }
            frame.pointee.quality = context.pointee.global_quality
            frame.pointee.pict_type = AV_PICTURE_TYPE_I
            let sent = avcodec_send_frame(context, frame)
            guard sent >= 0 else { throw .ffmpeg(.thumbnailFailed, "JPEG encoding", sent) }
            let received = avcodec_receive_packet(context, packet)
            guard received >= 0, let bytes = packet.pointee.data else { throw .ffmpeg(.thumbnailFailed, "JPEG encoding", received) }
            return Data(bytes: bytes, count: Int(packet.pointee.size))
        }
    }

    /// Runs `body` with a new context for `codec` and a packet, both freed afterwards.
    private static func withCodecContext<T>(
        _ codec: UnsafePointer<AVCodec>, _ body: (UnsafeMutablePointer<AVCodecContext>, UnsafeMutablePointer<AVPacket>) throws(MediaError) -> T
    ) throws(MediaError) -> T {
        var context = avcodec_alloc_context3(codec)
        var packet = av_packet_alloc()
        defer {
            avcodec_free_context(&context)
            av_packet_free(&packet)
        }
        guard let context, let packet else { throw MediaError(.thumbnailFailed, message: "out of memory") }
        return try body(context, packet)
    }
}
