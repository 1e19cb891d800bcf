internal import CFFmpeg
import Foundation

/// The viewing copy of an evidence export: the footage decoded, the camera's privacy masks
/// painted black, a visible watermark drawn on every picture (who exported it, for which
/// incident, when, and each picture's own footage time), re-encoded to H.264 in MP4. The only
/// place Vigil re-encodes; the originals beside it stay byte for byte as recorded.
public enum ViewingCopy {
    /// A recorded segment to read, with the wall-clock time its first packet was received.
    public struct Input: Sendable {
        public var url: URL
        public var start: Date

        public init(url: URL, start: Date) {
            self.url = url
            self.start = start
        }
    }

    /// DejaVu Sans, from Debian's fonts-dejavu-core.
    public static let fontFile = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

    /// Writes the copy of `from...to` of `inputs` (in time order) to `output` (MP4); returns the pictures written.
    public static func make(
        _ inputs: [Input], from: Date, to: Date, masks: [Thumbnailer.Mask], watermark: String, output: URL
    ) throws(MediaError) -> Int {
        _ = FFmpegLog.quiet
        guard FileManager.default.fileExists(atPath: fontFile) else {
            throw MediaError(.muxFailed, message: "the watermark's font \(fontFile) is missing (Debian package fonts-dejavu-core)")
        }
        // The watermark's words go through a file: nothing a user typed is parsed as filter syntax.
        let textFile = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-watermark-\(UUID().uuidString).txt")
        do {
            try Data(watermark.utf8).write(to: textFile)
        } catch {
            throw MediaError(.muxFailed, message: "cannot write the watermark's text: \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(at: textFile) }
        var pipeline: Pipeline?
        var pictures = 0
        for input in inputs {
            let source = try StreamSource(url: input.url.path)
            defer { source.close() }
            if pipeline == nil {
                pipeline = try Pipeline(video: source.video, masks: masks, textFile: textFile.path, epoch: from, output: output)
            }
            let timeBase = Double(source.video.timeBase.numerator) / Double(max(1, source.video.timeBase.denominator))
            var firstTimestamp: Int64?
            while let packet = try source.read() {
                guard let timestamp = packet.pts ?? packet.dts else { continue }
                let first = firstTimestamp ?? timestamp
                firstTimestamp = first
                let wall = input.start.addingTimeInterval(Double(timestamp - first) * timeBase)
                pictures += try pipeline!.decode(packet, at: wall, from: from, to: to)
            }
        }
        guard let pipeline else { throw MediaError(.sourceInvalid, message: "no footage to copy") }
        pictures += try pipeline.finish(from: from, to: to)
        return pictures
    }
}

/// Decoder → masks → drawtext → libx264 → MP4, for one copy.
private final class Pipeline {
    private var decoder: UnsafeMutablePointer<AVCodecContext>?
    private var encoder: UnsafeMutablePointer<AVCodecContext>?
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private var source: UnsafeMutablePointer<AVFilterContext>?
    private var sink: UnsafeMutablePointer<AVFilterContext>?
    private var muxer: UnsafeMutablePointer<AVFormatContext>?
    private var stream: UnsafeMutablePointer<AVStream>?
    private let packet: UnsafeMutablePointer<AVPacket>
    private let frame: UnsafeMutablePointer<AVFrame>
    private let filtered: UnsafeMutablePointer<AVFrame>
    private let masks: [Thumbnailer.Mask]
    private let textFile: String
    private let epoch: Date
    private let output: URL
    /// Each decoded picture's wall time waits here until the decoder gives the picture out (reordering).
    private var wallTimes: [Int64: Date] = [:]
    private var lastPts: Int64 = -1
    /// The time between pictures, in ms: every packet's duration (MP4 would drop a last picture of none).
    private var pictureDuration: Int64 = 40

    init(video: VideoStreamInfo, masks: [Thumbnailer.Mask], textFile: String, epoch: Date, output: URL) throws(MediaError) {
        guard let packet = av_packet_alloc(), let frame = av_frame_alloc(), let filtered = av_frame_alloc() else {
            throw MediaError(.muxFailed, message: "out of memory")
        }
        (self.packet, self.frame, self.filtered, self.masks, self.textFile, self.epoch, self.output) = (packet, frame, filtered, masks, textFile, epoch, output)
        decoder = try video.openDecoder(failure: .muxFailed)
    }

    deinit {
        avcodec_free_context(&decoder)
        avcodec_free_context(&encoder)
        avfilter_graph_free(&graph)
        if let muxer {
            if muxer.pointee.pb != nil { avio_closep(&muxer.pointee.pb) }
            avformat_free_context(muxer)
        }
        var (p, f, g): (UnsafeMutablePointer<AVPacket>?, UnsafeMutablePointer<AVFrame>?, UnsafeMutablePointer<AVFrame>?) = (packet, frame, filtered)
        av_packet_free(&p)
        av_frame_free(&f)
        av_frame_free(&g)
    }

    /// Decodes one packet received at `wall`; returns the pictures written.
    func decode(_ media: MediaPacket, at wall: Date, from: Date, to: Date) throws(MediaError) -> Int {
        guard let decoder else { return 0 }
        if let pts = media.pts { wallTimes[pts] = wall }
        // A damaged packet loses its picture, not the copy.
        try media.decode(with: decoder, through: packet, failure: .muxFailed)
        return try drainDecoder(from: from, to: to)
    }

    /// Flushes the decoder, the filters and the encoder, and closes the file.
    func finish(from: Date, to: Date) throws(MediaError) -> Int {
        _ = avcodec_send_packet(decoder, nil)
        let pictures = try drainDecoder(from: from, to: to)
        guard let encoder, let muxer else { throw MediaError(.sourceInvalid, message: "no picture of the footage lies in the range") }
        _ = avcodec_send_frame(encoder, nil)
        try drainEncoder()
        let trailer = av_write_trailer(muxer)
        guard trailer >= 0 else { throw .ffmpeg(.muxFailed, "MP4 trailer", trailer) }
        return pictures
    }

    private func drainDecoder(from: Date, to: Date) throws(MediaError) -> Int {
        var written = 0
        while avcodec_receive_frame(decoder, frame) >= 0 {
            defer { av_frame_unref(frame) }
            let timestamp = frame.pointee.best_effort_timestamp
            guard let wall = wallTimes.removeValue(forKey: timestamp) ?? wallTimes.removeValue(forKey: frame.pointee.pts) else { continue }
            guard wall >= from, wall <= to else { continue }
            if graph == nil { try openOutput(width: frame.pointee.width, height: frame.pointee.height, format: frame.pointee.format) }
            Thumbnailer.blackOut(masks, in: frame)
            // Milliseconds since the copy's start: drawtext adds them to the start to print each picture's footage time.
            frame.pointee.pts = max(lastPts + 1, Int64((wall.timeIntervalSince(epoch) * 1000).rounded()))
            if lastPts >= 0 { pictureDuration = frame.pointee.pts - lastPts }
            lastPts = frame.pointee.pts
            frame.pointee.pict_type = AV_PICTURE_TYPE_NONE
            let added = av_buffersrc_add_frame_flags(source, frame, Int32(AV_BUFFERSRC_FLAG_KEEP_REF))
            guard added >= 0 else { throw .ffmpeg(.muxFailed, "watermark filter", added) }
            while av_buffersink_get_frame(sink, filtered) >= 0 {
                defer { av_frame_unref(filtered) }
                let sent = avcodec_send_frame(encoder, filtered)
                guard sent >= 0 else { throw .ffmpeg(.muxFailed, "H.264 encoding", sent) }
                try drainEncoder()
                written += 1
            }
        }
        // Wall times of pictures the decoder dropped would otherwise pile up.
        if wallTimes.count > 512 { wallTimes.removeAll() }
        return written
    }

    private func drainEncoder() throws(MediaError) {
        guard let encoder, let muxer, let stream else { return }
        while avcodec_receive_packet(encoder, packet) >= 0 {
            if packet.pointee.duration <= 0 { packet.pointee.duration = pictureDuration }
            av_packet_rescale_ts(packet, encoder.pointee.time_base, stream.pointee.time_base)
            packet.pointee.stream_index = stream.pointee.index
            let written = av_interleaved_write_frame(muxer, packet)
            guard written >= 0 else { throw .ffmpeg(.muxFailed, "MP4 write", written) }
        }
    }

    /// The filters, the encoder and the MP4 file, once the first picture gives the size.
    private func openOutput(width: Int32, height: Int32, format: Int32) throws(MediaError) {
        guard let graph = avfilter_graph_alloc() else { throw MediaError(.muxFailed, message: "out of memory") }
        self.graph = graph
        let arguments = "video_size=\(width)x\(height):pix_fmt=\(format):time_base=1/1000:pixel_aspect=1/1"
        var made = avfilter_graph_create_filter(&source, avfilter_get_by_name("buffer"), "in", arguments, nil, graph)
        guard made >= 0 else { throw .ffmpeg(.muxFailed, "filter source", made) }
        made = avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nil, nil, graph)
        guard made >= 0 else { throw .ffmpeg(.muxFailed, "filter sink", made) }
        // About 40 characters a line fit the width; never below 10 pixels.
        let size = max(10, min(Int(height) / 22, Int(width) / 26))
        let epochSeconds = Int(epoch.timeIntervalSince1970)
        let box = "fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=\(size / 3):fontfile=\(ViewingCopy.fontFile):fontsize=\(size)"
        // The exporter's words (expansion off: a % in them is a %), then each picture's footage time.
        let filters = "drawtext=textfile='\(textFile)':expansion=none:x=\(size / 2):y=\(size / 2):\(box),"
            + "drawtext=text='%{pts\\:gmtime\\:\(epochSeconds)\\:%Y-%m-%d %H\\\\\\:%M\\\\\\:%S} UTC':x=\(size / 2):y=h-th-\(size / 2):\(box),"
            + "format=yuv420p"
        // The graph's open ends: its input is fed by the source, its output read by the sink.
        // The parser takes both lists and hands back (in the same variables) what it left unlinked.
        var outputs = avfilter_inout_alloc()
        var inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        guard let graphInput = outputs, let graphOutput = inputs else { throw MediaError(.muxFailed, message: "out of memory") }
        graphInput.pointee.name = av_strdup("in")
        graphInput.pointee.filter_ctx = source
        graphOutput.pointee.name = av_strdup("out")
        graphOutput.pointee.filter_ctx = sink
        let parsed = avfilter_graph_parse_ptr(graph, filters, &inputs, &outputs, nil)
        guard parsed >= 0 else { throw .ffmpeg(.muxFailed, "watermark filter graph", parsed) }
        let configured = avfilter_graph_config(graph, nil)
        guard configured >= 0 else { throw .ffmpeg(.muxFailed, "watermark filter graph", configured) }

        guard let codec = avcodec_find_encoder_by_name("libx264"), let encoder = avcodec_alloc_context3(codec) else {
            throw MediaError(.codecUnsupported, message: "this FFmpeg has no libx264 encoder")
        }
        self.encoder = encoder
        encoder.pointee.width = width
        encoder.pointee.height = height
        encoder.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        encoder.pointee.time_base = AVRational(num: 1, den: 1000)
        encoder.pointee.gop_size = 50
        av_opt_set(encoder.pointee.priv_data, "preset", "veryfast", 0)
        av_opt_set(encoder.pointee.priv_data, "crf", "23", 0)
        var context: UnsafeMutablePointer<AVFormatContext>?
        let allocated = avformat_alloc_output_context2(&context, nil, "mp4", output.path)
        guard allocated >= 0, let context else { throw .ffmpeg(.muxFailed, output.path, allocated) }
        muxer = context
        if context.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 { encoder.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        let opened = avcodec_open2(encoder, codec, nil)
        guard opened >= 0 else { throw .ffmpeg(.codecUnsupported, "libx264", opened) }
        guard let stream = avformat_new_stream(context, nil) else { throw MediaError(.muxFailed, message: "out of memory") }
        self.stream = stream
        avcodec_parameters_from_context(stream.pointee.codecpar, encoder)
        stream.pointee.time_base = encoder.pointee.time_base
        let file = avio_open(&context.pointee.pb, output.path, AVIO_FLAG_WRITE)
        guard file >= 0 else { throw .ffmpeg(.muxFailed, "cannot write \(output.path)", file) }
        let header = avformat_write_header(context, nil)
        guard header >= 0 else { throw .ffmpeg(.muxFailed, "MP4 header", header) }
    }
}
