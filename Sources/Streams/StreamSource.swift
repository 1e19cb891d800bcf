internal import CFFmpeg
import Foundation
import Synchronization

/// What a source's video stream is: enough to mux it again without decoding.
public final class VideoStreamInfo: @unchecked Sendable {  // @unchecked: the parameters are written once, at creation, then only read.
    public let codec: VideoCodec
    public let width: Int
    public let height: Int
    /// The source's time base, as a fraction of a second.
    public let timeBase: (numerator: Int32, denominator: Int32)
    /// A copy of FFmpeg's codec parameters (owned; freed with this object).
    let parameters: UnsafeMutablePointer<AVCodecParameters>

    init(codec: VideoCodec, stream: UnsafeMutablePointer<AVStream>) throws(MediaError) {
        guard let parameters = avcodec_parameters_alloc() else { throw MediaError(.sourceInvalid, message: "out of memory") }
        let copied = avcodec_parameters_copy(parameters, stream.pointee.codecpar)
        guard copied >= 0 else {
            var owned: UnsafeMutablePointer<AVCodecParameters>? = parameters
            avcodec_parameters_free(&owned)
            throw MediaError.ffmpeg(.sourceInvalid, "codec parameters", copied)
        }
        self.codec = codec
        self.parameters = parameters
        width = Int(parameters.pointee.width)
        height = Int(parameters.pointee.height)
        timeBase = (stream.pointee.time_base.num, stream.pointee.time_base.den)
    }

    /// Takes ownership of `parameters`.
    init(codec: VideoCodec, parameters: UnsafeMutablePointer<AVCodecParameters>, timeBase: (Int32, Int32)) {
        self.codec = codec
        self.parameters = parameters
        width = Int(parameters.pointee.width)
        height = Int(parameters.pointee.height)
        self.timeBase = timeBase
    }

    deinit {
        var owned: UnsafeMutablePointer<AVCodecParameters>? = parameters
        avcodec_parameters_free(&owned)
    }

    /// The stream after a keyframe brought new parameter sets: its size as libavcodec's parser
    /// reads it from them, the sets as its extradata; nil when the size is the same (or unreadable).
    func following(_ parameterSets: Data, keyframe: Data) -> VideoStreamInfo? {
        guard let (width, height) = Self.dimensions(of: keyframe, codec: codec), width != self.width || height != self.height,
              let changed = avcodec_parameters_alloc()
        else { return nil }
        guard avcodec_parameters_copy(changed, parameters) >= 0 else {
            var owned: UnsafeMutablePointer<AVCodecParameters>? = changed
            avcodec_parameters_free(&owned)
            return nil
        }
        changed.pointee.width = Int32(width)
        changed.pointee.height = Int32(height)
        av_freep(&changed.pointee.extradata)
        changed.pointee.extradata_size = 0
        if let buffer = av_mallocz(parameterSets.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) {
            parameterSets.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: parameterSets.count)
            changed.pointee.extradata = buffer.assumingMemoryBound(to: UInt8.self)
            changed.pointee.extradata_size = Int32(parameterSets.count)
        }
        return VideoStreamInfo(codec: codec, parameters: changed, timeBase: timeBase)
    }

    /// The picture size a keyframe's parameter sets declare, read by libavcodec's parser (no decoding).
    static func dimensions(of keyframe: Data, codec: VideoCodec) -> (width: Int, height: Int)? {
        let id = codec == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC
        guard let parser = av_parser_init(Int32(id.rawValue)) else { return nil }
        defer { av_parser_close(parser) }
        var context: UnsafeMutablePointer<AVCodecContext>? = avcodec_alloc_context3(avcodec_find_decoder(id))
        guard let codecContext = context else { return nil }
        defer { avcodec_free_context(&context) }
        parser.pointee.flags |= PARSER_FLAG_COMPLETE_FRAMES
        // The parser reads a little past the end: the input gets FFmpeg's padding.
        var padded = keyframe
        padded.append(Data(count: Int(AV_INPUT_BUFFER_PADDING_SIZE)))
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize: Int32 = 0
        padded.withUnsafeBytes { bytes in
            _ = av_parser_parse2(
                parser, codecContext, &output, &outputSize, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(keyframe.count),
                vigil_nopts(), vigil_nopts(), 0)
        }
        let (width, height) = (Int(parser.pointee.width), Int(parser.pointee.height))
        return width > 0 && height > 0 ? (width, height) : nil
    }
}

/// Where a camera feed gets its packets: a real source (``StreamSource``) or a simulated camera.
public protocol PacketSource: AnyObject {
    var video: VideoStreamInfo { get }
    /// The latest parameter sets seen (Annex B).
    var parameterSets: Data { get }
    /// What another thread uses to make a blocked read give up; nil when reads never block long.
    var interruption: StreamSource.Deadline? { get }
    /// The next packet, or nil at the end of the stream.
    func read() throws(MediaError) -> MediaPacket?
    func close()
}

/// Reads the compressed video of one camera with libavformat, without decoding: RTSP (TCP or
/// UDP), MPEG-TS over UDP, TCP or HTTP, or a file.
///
/// Every blocking call has a deadline: an interrupt callback makes FFmpeg give up when the
/// source sends nothing for `timeout` (`source_stalled`), so a dead camera never hangs a relay.
/// Not thread-safe: one reader thread per source.
public final class StreamSource: PacketSource {
    public struct Options: Sendable {
        /// How long any read may wait for data.
        public var timeout: Duration
        /// `tcp` or `udp` for RTSP; nil lets FFmpeg choose.
        public var rtspTransport: String?

        public init(timeout: Duration = .seconds(5), rtspTransport: String? = nil) {
            self.timeout = timeout
            self.rtspTransport = rtspTransport
        }
    }

    public let url: String
    /// `url` as errors show it: without credentials.
    public var shownURL: String { StreamCredentials.redacted(url) }
    /// The stream as it stands: replaced when a keyframe brings parameter sets of another size
    /// (a camera reconfigured to another resolution), so that new viewers are told the new one.
    public private(set) var video: VideoStreamInfo
    /// The latest parameter sets seen in the stream (Annex B), kept for new subscribers.
    public private(set) var parameterSets = Data()
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private let videoIndex: Int32
    private let packet: UnsafeMutablePointer<AVPacket>
    private let deadline: Deadline
    private let timeout: Duration

    /// The interrupt callback's view of the current deadline (read from FFmpeg's thread); its
    /// ``cancel()`` makes a blocked read give up, from any thread.
    public final class Deadline: Sendable {
        let at = Atomic<Int64>(Int64.max)
        let cancelled = Atomic<Bool>(false)

        public init() {}

        /// Whether ``cancel()`` was called (a source that is not FFmpeg's polls it between reads).
        public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

        func arm(_ timeout: Duration) {
            at.store(Self.now() + Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000, ordering: .relaxed)
        }

        var expired: Bool { cancelled.load(ordering: .relaxed) || Self.now() > at.load(ordering: .relaxed) }

        public func cancel() {
            cancelled.store(true, ordering: .relaxed)
        }

        static func now() -> Int64 {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
        }
    }

    /// Opens the source and finds its video stream.
    ///
    /// - Throws: `source_unreachable` (cannot open), `source_stalled` (nothing within the
    ///   timeout), `source_invalid` (not a stream FFmpeg can read), `no_video_stream`,
    ///   `codec_unsupported` (neither H.264 nor H.265).
    public init(url: String, options: Options = Options()) throws(MediaError) {
        _ = FFmpegLog.quiet
        self.url = url
        let shownURL = StreamCredentials.redacted(url)
        timeout = options.timeout
        deadline = Deadline()
        guard let packet = av_packet_alloc() else { throw MediaError(.sourceInvalid, message: "out of memory") }
        self.packet = packet
        var context = avformat_alloc_context()
        guard context != nil else {
            var owned: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&owned)
            throw MediaError(.sourceInvalid, message: "out of memory")
        }
        context!.pointee.interrupt_callback = AVIOInterruptCB(
            callback: { opaque in
                guard let opaque else { return 0 }
                return Unmanaged<Deadline>.fromOpaque(opaque).takeUnretainedValue().expired ? 1 : 0
            },
            opaque: Unmanaged.passUnretained(deadline).toOpaque())
        var dictionary: OpaquePointer?
        // FFmpeg's own socket timeouts, in microseconds, beside the interrupt callback.
        let micros = Int64(options.timeout.components.seconds) * 1_000_000 + options.timeout.components.attoseconds / 1_000_000_000_000
        av_dict_set(&dictionary, "timeout", "\(micros)", 0)
        av_dict_set(&dictionary, "rw_timeout", "\(micros)", 0)
        if let transport = options.rtspTransport { av_dict_set(&dictionary, "rtsp_transport", transport, 0) }
        deadline.arm(options.timeout)
        let opened = avformat_open_input(&context, url, nil, &dictionary)
        av_dict_free(&dictionary)
        func fail(_ error: MediaError) -> MediaError {
            avformat_close_input(&context)
            var owned: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&owned)
            return error
        }
        guard opened >= 0 else {
            throw fail(opened == vigil_averror_exit()
                ? MediaError(.sourceStalled, message: "\(shownURL) sent nothing within \(options.timeout)")
                : opened == vigil_averror_invaliddata() ? MediaError.ffmpeg(.sourceInvalid, shownURL, opened)
                : MediaError.ffmpeg(.sourceUnreachable, shownURL, opened))
        }
        deadline.arm(options.timeout)
        let found = avformat_find_stream_info(context, nil)
        guard found >= 0 else {
            throw fail(found == vigil_averror_exit()
                ? MediaError(.sourceStalled, message: "\(shownURL) sent no picture within \(options.timeout)")
                : MediaError.ffmpeg(.sourceInvalid, shownURL, found))
        }
        let index = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard index >= 0, let stream = context!.pointee.streams[Int(index)] else {
            throw fail(MediaError(.noVideoStream, message: "\(shownURL) has no video stream"))
        }
        let codec: VideoCodec
        switch stream.pointee.codecpar.pointee.codec_id {
        case AV_CODEC_ID_H264: codec = .h264
        case AV_CODEC_ID_HEVC: codec = .hevc
        default:
            let name = String(cString: avcodec_get_name(stream.pointee.codecpar.pointee.codec_id))
            throw fail(MediaError(.codecUnsupported, message: "\(shownURL) carries \(name); relays pass H.264 and H.265 through"))
        }
        do {
            video = try VideoStreamInfo(codec: codec, stream: stream)
        } catch {
            throw fail(error)
        }
        videoIndex = index
        self.context = context
        if let extradata = stream.pointee.codecpar.pointee.extradata, stream.pointee.codecpar.pointee.extradata_size > 0 {
            let bytes = Data(bytes: extradata, count: Int(stream.pointee.codecpar.pointee.extradata_size))
            parameterSets = AnnexB.parameterSets(bytes, codec: codec)
        }
    }

    deinit {
        close()
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// The next video packet, or nil at the end of the stream.
    ///
    /// - Throws: `source_stalled` when nothing arrives within the timeout, `source_invalid`
    ///   for an unrecoverable read error. Corrupt packets are returned flagged, not thrown.
    public func read() throws(MediaError) -> MediaPacket? {
        guard let context else { return nil }
        while true {
            deadline.arm(timeout)
            let result = av_read_frame(context, packet)
            if result == vigil_averror_eof() { return nil }
            if result == vigil_averror_exit() {
                throw MediaError(.sourceStalled, message: "\(shownURL) sent nothing for \(timeout)")
            }
            guard result >= 0 else { throw MediaError.ffmpeg(.sourceInvalid, shownURL, result) }
            defer { av_packet_unref(packet) }
            guard packet.pointee.stream_index == videoIndex, let bytes = packet.pointee.data, packet.pointee.size > 0 else { continue }
            let data = Data(bytes: bytes, count: Int(packet.pointee.size))
            let nopts = vigil_nopts()
            let isKeyframe = packet.pointee.flags & 0x0001 != 0  // AV_PKT_FLAG_KEY
            if isKeyframe {
                let sets = AnnexB.parameterSets(data, codec: video.codec)
                if !sets.isEmpty, sets != parameterSets {
                    parameterSets = sets
                    if let changed = video.following(sets, keyframe: data) { video = changed }
                }
            }
            return MediaPacket(
                data: data, pts: packet.pointee.pts == nopts ? nil : packet.pointee.pts, dts: packet.pointee.dts == nopts ? nil : packet.pointee.dts,
                duration: packet.pointee.duration, isKeyframe: isKeyframe,
                isDisposable: !isKeyframe && AnnexB.isDisposable(data, codec: video.codec),
                isCorrupt: packet.pointee.flags & 0x0002 != 0)  // AV_PKT_FLAG_CORRUPT
        }
    }

    /// What another thread calls to make a blocked read give up at once (`source_stalled`).
    public var interruption: Deadline? { deadline }

    /// Closes the source; later reads return nil.
    public func close() {
        if context != nil { avformat_close_input(&context) }
    }
}

extension VideoStreamInfo {
    /// What a viewer needs to mux a relayed stream: sent in the reply to `feed.open`.
    public struct Description: Sendable, Codable, Equatable {
        public var codec: String
        public var width: Int
        public var height: Int
        public var timeBaseNumerator: Int32
        public var timeBaseDenominator: Int32
        /// Annex B parameter sets, base64.
        public var parameterSets: String
    }

    public func description(parameterSets: Data) -> Description {
        Description(
            codec: codec.rawValue, width: width, height: height, timeBaseNumerator: timeBase.numerator, timeBaseDenominator: timeBase.denominator,
            parameterSets: parameterSets.base64EncodedString())
    }

    /// A stream described by a relay, to mux it again on the viewer's side.
    public convenience init(_ description: Description) throws(MediaError) {
        guard let codec = VideoCodec(rawValue: description.codec), description.width > 0, description.height > 0,
              description.timeBaseNumerator > 0, description.timeBaseDenominator > 0,
              let sets = Data(base64Encoded: description.parameterSets)
        else { throw MediaError(.sourceInvalid, message: "not a video stream description") }
        guard let parameters = avcodec_parameters_alloc() else { throw MediaError(.sourceInvalid, message: "out of memory") }
        parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
        parameters.pointee.codec_id = codec == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC
        parameters.pointee.width = Int32(description.width)
        parameters.pointee.height = Int32(description.height)
        if !sets.isEmpty, let buffer = av_mallocz(sets.count + Int(AV_INPUT_BUFFER_PADDING_SIZE)) {
            sets.copyBytes(to: buffer.assumingMemoryBound(to: UInt8.self), count: sets.count)
            parameters.pointee.extradata = buffer.assumingMemoryBound(to: UInt8.self)
            parameters.pointee.extradata_size = Int32(sets.count)
        }
        self.init(codec: codec, parameters: parameters, timeBase: (description.timeBaseNumerator, description.timeBaseDenominator))
    }
}
