internal import CFFmpeg
import Foundation

/// Writes relayed packets as standard MPEG-TS with libavformat's muxer (what ffprobe, ffplay
/// and VLC read), to a file or to a pipe or socket (`pipe:FD`; `pipe:1` for standard output),
/// or to memory, taken packet by packet (``init(video:container:)``, for a relay that muxes a
/// camera once for all its players), where fragmented MP4 may be asked for instead (what a
/// browser's Media Source Extensions play). No re-encoding.
///
/// The MPEG-TS muxer writes the PAT and PMT before every video keyframe, so the bytes from any
/// keyframe on are a stream a player can start with. The fragmented MP4 muxer writes its
/// initialization segment (`ftyp`, `moov`) once, with the first fragment; every packet is then
/// one fragment (`moof`, `mdat`) of its own, flushed at once.
public final class StreamWriter {
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private let stream: UnsafeMutablePointer<AVStream>
    private let packet: UnsafeMutablePointer<AVPacket>
    private let sourceTimeBase: AVRational
    private var finished = false
    /// Added to timestamps after a discontinuity (a source that restarted), so that the output
    /// stays monotonic: the muxer refuses a decoding time that goes back.
    private var shift: Int64 = 0
    private var lastDts: Int64?
    /// The file written past the page cache, for footage (``init(output:video:direct:)``).
    private var direct: DirectFile?
    /// The bytes muxed and not yet taken, for output to memory (``init(video:)``).
    private var memory: MemoryOutput?

    /// - Parameters:
    ///   - output: a file path, or `pipe:1`.
    ///   - video: the stream to write, as its source described it.
    ///   - direct: write the file past the page cache (``DirectFile``), as recordings are.
    public convenience init(output: String, video: VideoStreamInfo, direct: Bool = false) throws(MediaError) {
        try self.init(output: direct ? .direct(output) : .url(output), video: video)
    }

    /// What a writer to memory writes.
    public enum Container: Sendable {
        case transportStream
        /// Fragmented MP4, a fragment per packet: `empty_moov+delay_moov` (the initialization
        /// segment waits for the first packet, whose parameter sets it needs when the source
        /// gave none apart), `default_base_moof`, flushed by the writer after each packet.
        case fragmentedMP4

        var formatName: String {
            switch self {
            case .transportStream: "mpegts"
            case .fragmentedMP4: "mp4"
            }
        }
    }

    /// A writer to memory: after each ``write(_:)``, ``takeOutput()`` holds that packet's bytes.
    public convenience init(video: VideoStreamInfo, container: Container = .transportStream) throws(MediaError) {
        try self.init(output: .memory, video: video, container: container)
    }

    private enum Output: Equatable {
        case url(String), direct(String), memory

        var name: String {
            switch self {
            case .url(let url), .direct(let url): url
            case .memory: "memory"
            }
        }
    }

    private let container: Container
    /// Whether the fragmented MP4 muxer wrote its initialization segment (with the first packet).
    private var initializationWritten = false

    private init(output destination: Output, video: VideoStreamInfo, container: Container = .transportStream) throws(MediaError) {
        let output = destination.name
        self.container = container
        var context: UnsafeMutablePointer<AVFormatContext>?
        let allocated = avformat_alloc_output_context2(&context, nil, container.formatName, destination == .memory ? nil : output)
        guard allocated >= 0, let context else { throw MediaError.ffmpeg(.muxFailed, output, allocated) }
        guard let stream = avformat_new_stream(context, nil), let packet = av_packet_alloc() else {
            avformat_free_context(context)
            throw MediaError(.muxFailed, message: "out of memory")
        }
        let copied = avcodec_parameters_copy(stream.pointee.codecpar, video.parameters)
        sourceTimeBase = AVRational(num: video.timeBase.numerator, den: video.timeBase.denominator)
        stream.pointee.time_base = sourceTimeBase
        stream.pointee.codecpar.pointee.codec_tag = 0
        func fail(_ error: MediaError) -> MediaError {
            var owned: UnsafeMutablePointer<AVPacket>? = packet
            av_packet_free(&owned)
            if context.pointee.flags & AVFMT_FLAG_CUSTOM_IO != 0 {
                av_freep(&context.pointee.pb.pointee.buffer)
                avio_context_free(&context.pointee.pb)
            } else if context.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
                avio_closep(&context.pointee.pb)
            }
            avformat_free_context(context)
            return error
        }
        guard copied >= 0 else { throw fail(MediaError.ffmpeg(.muxFailed, "codec parameters", copied)) }
        /// Hands the muxer's output to `sink` (retained by this writer) through a buffer of libavformat's.
        func customOutput(_ sink: AnyObject, write: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32) -> Bool {
            let size = 64 * 1024
            guard let buffer = av_malloc(size), let io = avio_alloc_context(
                buffer.assumingMemoryBound(to: UInt8.self), Int32(size), 1, Unmanaged.passUnretained(sink).toOpaque(), nil, write, nil)
            else { return false }
            context.pointee.pb = io
            context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
            return true
        }
        switch destination {
        case .direct:
            let file: DirectFile
            do throws(MediaError) { file = try DirectFile(path: output) } catch { throw fail(error) }
            guard customOutput(file, write: { opaque, bytes, count in
                guard let opaque, let bytes else { return vigil_averror(EINVAL) }
                let failure = Unmanaged<DirectFile>.fromOpaque(opaque).takeUnretainedValue().append(bytes, count: Int(count))
                return failure < 0 ? vigil_averror(-failure) : count
            }) else { throw fail(MediaError(.muxFailed, message: "out of memory")) }
            self.direct = file
        case .memory:
            let memory = MemoryOutput()
            guard customOutput(memory, write: { opaque, bytes, count in
                guard let opaque, let bytes else { return vigil_averror(EINVAL) }
                Unmanaged<MemoryOutput>.fromOpaque(opaque).takeUnretainedValue().bytes.append(contentsOf: UnsafeBufferPointer(start: bytes, count: Int(count)))
                return count
            }) else { throw fail(MediaError(.muxFailed, message: "out of memory")) }
            self.memory = memory
        case .url:
            if context.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
                let opened = avio_open(&context.pointee.pb, output, AVIO_FLAG_WRITE)
                guard opened >= 0 else { throw fail(MediaError.ffmpeg(.muxFailed, "cannot write \(output)", opened)) }
            }
        }
        // A pipe or a socket has a live reader, and memory is taken packet by packet: each
        // packet goes out at once, not when 32 KiB have gathered.
        if output.hasPrefix("pipe:") || destination == .memory { context.pointee.flags |= AVFMT_FLAG_FLUSH_PACKETS }
        var options: OpaquePointer?
        if container == .fragmentedMP4 { av_dict_set(&options, "movflags", "empty_moov+delay_moov+default_base_moof+frag_custom", 0) }
        let header = avformat_write_header(context, &options)
        av_dict_free(&options)
        guard header >= 0 else { throw fail(MediaError.ffmpeg(.muxFailed, "\(container.formatName) header", header)) }
        self.context = context
        self.stream = stream
        self.packet = packet
    }

    deinit {
        try? finish()
        var owned: UnsafeMutablePointer<AVPacket>? = packet
        av_packet_free(&owned)
    }

    /// Writes one packet (timestamps in the source's time base).
    public func write(_ media: MediaPacket) throws(MediaError) {
        guard let context, !finished else { throw MediaError(.muxFailed, message: "the writer is finished") }
        let allocated = av_new_packet(packet, Int32(media.data.count))
        guard allocated >= 0 else { throw MediaError.ffmpeg(.muxFailed, "packet", allocated) }
        media.data.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress { packet.pointee.data.update(from: base.assumingMemoryBound(to: UInt8.self), count: buffer.count) }
        }
        if let dts = media.dts, let last = lastDts, dts + shift <= last {
            shift = last + max(1, media.duration) - dts
        }
        packet.pointee.pts = media.pts.map { $0 + shift } ?? vigil_nopts()
        packet.pointee.dts = media.dts.map { $0 + shift } ?? vigil_nopts()
        if let dts = media.dts { lastDts = dts + shift }
        packet.pointee.duration = media.duration
        packet.pointee.flags = media.isKeyframe ? 0x0001 : 0
        packet.pointee.stream_index = stream.pointee.index
        av_packet_rescale_ts(packet, sourceTimeBase, stream.pointee.time_base)
        // One stream: nothing to interleave, so the packet goes straight to the muxer (no queue,
        // no extra reference); it is emptied for the next one.
        let written = av_write_frame(context, packet)
        av_packet_unref(packet)
        guard written >= 0 else { throw MediaError.ffmpeg(.muxFailed, "write", written) }
        // No packet: the MP4 muxer writes the fragment it holds (`frag_custom`). The first flush
        // (`delay_moov`) writes only the initialization segment and keeps the packet, so the
        // first packet is flushed twice: a keyframe must leave in its own chunk, where players join.
        if container == .fragmentedMP4 {
            for _ in 0..<(initializationWritten ? 1 : 2) {
                let flushed = av_write_frame(context, nil)
                guard flushed >= 0 else { throw MediaError.ffmpeg(.muxFailed, "fragment", flushed) }
            }
            initializationWritten = true
        }
        if memory != nil { avio_flush(context.pointee.pb) }
    }

    /// The bytes written to memory since the last call (empty for other outputs).
    public func takeOutput() -> [UInt8] {
        guard let memory else { return [] }
        defer { memory.bytes.removeAll(keepingCapacity: true) }
        return memory.bytes
    }

    /// Writes the trailer and closes the output. Idempotent.
    public func finish() throws(MediaError) {
        guard let context, !finished else { return }
        finished = true
        let trailer = av_write_trailer(context)
        var closing: MediaError?
        if direct != nil || memory != nil {
            avio_flush(context.pointee.pb)
            if let direct {
                do throws(MediaError) { try direct.finish() } catch { closing = error }
            }
            av_freep(&context.pointee.pb.pointee.buffer)
            avio_context_free(&context.pointee.pb)
            self.direct = nil
        } else if context.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            avio_closep(&context.pointee.pb)
        }
        avformat_free_context(context)
        self.context = nil
        guard trailer >= 0 else { throw MediaError.ffmpeg(.muxFailed, "trailer", trailer) }
        if let closing { throw closing }
    }
}

/// Where a writer to memory gathers the muxer's output.
private final class MemoryOutput {
    var bytes: [UInt8] = []
}
