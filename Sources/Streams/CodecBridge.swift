internal import CFFmpeg
import Foundation

// What the few places that decode or encode (the masked cameras, the export's viewing copy, the
// simulated cameras) share: a decoder for a stream, packets into and out of libavcodec.

extension VideoStreamInfo {
    /// An opened decoder for this stream, its packets' time base set (the caller frees it).
    /// - Parameter threads: 1 for a decoder that must hold no picture back; nil for FFmpeg's choice.
    func openDecoder(threads: Int32? = nil, failure: MediaErrorCode) throws(MediaError) -> UnsafeMutablePointer<AVCodecContext> {
        guard let decoder = avcodec_find_decoder(codec == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC) else {
            throw MediaError(.codecUnsupported, message: "no \(codec) decoder")
        }
        var context = avcodec_alloc_context3(decoder)
        guard let opened = context else { throw MediaError(failure, message: "out of memory") }
        let copied = avcodec_parameters_to_context(opened, parameters)
        opened.pointee.pkt_timebase = AVRational(num: timeBase.numerator, den: timeBase.denominator)
        if let threads { opened.pointee.thread_count = threads }
        let result = copied >= 0 ? avcodec_open2(opened, decoder, nil) : copied
        guard result >= 0 else {
            avcodec_free_context(&context)
            throw copied < 0 ? .ffmpeg(failure, "codec parameters", copied) : .ffmpeg(.codecUnsupported, "\(codec) decoder", result)
        }
        return opened
    }
}

extension MediaPacket {
    /// Sends this packet (its bytes, timestamps and keyframe flag) to `decoder` through
    /// `packet`; a damaged packet loses its picture (FFmpeg's invalid-data answer), not the stream.
    func decode(with decoder: UnsafeMutablePointer<AVCodecContext>, through packet: UnsafeMutablePointer<AVPacket>, failure: MediaErrorCode) throws(MediaError) {
        let allocated = av_new_packet(packet, Int32(data.count))
        guard allocated >= 0 else { throw .ffmpeg(failure, "packet", allocated) }
        data.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress { packet.pointee.data.update(from: base.assumingMemoryBound(to: UInt8.self), count: buffer.count) }
        }
        packet.pointee.pts = pts ?? vigil_nopts()
        packet.pointee.dts = dts ?? vigil_nopts()
        packet.pointee.flags = isKeyframe ? 0x0001 : 0
        let sent = avcodec_send_packet(decoder, packet)
        av_packet_unref(packet)
        guard sent >= 0 || sent == vigil_averror_invaliddata() else { throw .ffmpeg(failure, "decoding", sent) }
    }

    /// The packets an H.264 encoder has ready, read through `packet`, in order; a keyframe's
    /// parameter sets become `parameterSets`; `duration` gives each packet's from its timestamp
    /// (nil: the encoder's own).
    static func receiveH264(
        from encoder: UnsafeMutablePointer<AVCodecContext>, through packet: UnsafeMutablePointer<AVPacket>, parameterSets: inout Data,
        duration: (Int64?) -> Int64? = { _ in nil }
    ) -> [MediaPacket] {
        var packets: [MediaPacket] = []
        while avcodec_receive_packet(encoder, packet) >= 0 {
            defer { av_packet_unref(packet) }
            guard let bytes = packet.pointee.data else { continue }
            let data = Data(bytes: bytes, count: Int(packet.pointee.size))
            let isKeyframe = packet.pointee.flags & 0x0001 != 0
            if isKeyframe {
                let sets = AnnexB.parameterSets(data, codec: .h264)
                if !sets.isEmpty { parameterSets = sets }
            }
            let pts = packet.pointee.pts == vigil_nopts() ? nil : packet.pointee.pts
            packets.append(MediaPacket(
                data: data, pts: pts, dts: packet.pointee.dts == vigil_nopts() ? pts : packet.pointee.dts,
                duration: duration(pts) ?? packet.pointee.duration, isKeyframe: isKeyframe,
                isDisposable: !isKeyframe && AnnexB.isDisposable(data, codec: .h264)))
        }
        return packets
    }
}
