import Foundation
import Testing

/// Writes a real H.264 MPEG-TS file made by ffmpeg (320×240, 25 fps, a keyframe each second),
/// for a camera whose stream is a looped file.
func makeTestStream(at path: String, seconds: Int = 4) async throws {
    let made = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
        "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "\(seconds)", "-c:v", "libx264",
        "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p", "-f", "mpegts", path,
    ])
    #expect(made.status == 0, "\(made.stderr)")
}
