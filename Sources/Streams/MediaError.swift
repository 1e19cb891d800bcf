internal import CFFmpeg
import ErrorVocabulary

/// An error of the media path: a stable code for the camera state and the bus, with FFmpeg's
/// own message (and its error number) when FFmpeg gave one.
public typealias MediaError = CodedError<MediaErrorCode>

/// The media path's codes (a camera's state says them too).
public enum MediaErrorCode: String, ErrorCode {
    case benchSetup = "bench_setup"
    case codecUnsupported = "codec_unsupported"
    /// The relay could not set up its delivery to players (epoll, an event descriptor).
    case deliveryFailed = "delivery_failed"
    /// A masked camera's video could not be decoded, masked or encoded again.
    case maskingFailed = "masking_failed"
    case muxFailed = "mux_failed"
    case noVideoStream = "no_video_stream"
    case recordingFailed = "recording_failed"
    case sourceInvalid = "source_invalid"
    case sourceStalled = "source_stalled"
    case sourceUnreachable = "source_unreachable"
    case thumbnailFailed = "thumbnail_failed"
}

extension MediaError {
    /// FFmpeg's text for an error number.
    static func text(_ averror: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(averror, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An error of FFmpeg's, with its text.
    static func ffmpeg(_ code: MediaErrorCode, _ what: String, _ averror: Int32) -> MediaError {
        MediaError(code, message: "\(what): \(text(averror))")
    }
}

/// FFmpeg's own log: errors only (it would otherwise print a banner per encoder and per stream
/// on the server's stderr). Applied once, by the first source or camera made.
enum FFmpegLog {
    static let quiet: Void = av_log_set_level(AV_LOG_ERROR)
}
