import Foundation

/// Real H.264 streams made by ffmpeg (libx264), read back without decoding.
public func ffmpeg(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
    process.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestSetupFailure("ffmpeg \(arguments) failed") }
}

/// A camera that switches resolution, as one MPEG-TS file in `folder`: two GOPs at 320×240,
/// then two at 640×360 (25 fps, a keyframe a second, parameter sets before every keyframe).
public func makeResizingStream(in folder: URL) throws -> URL {
    var combined = Data()
    for (index, size) in ["320x240", "640x360"].enumerated() {
        let part = folder.appendingPathComponent("part-\(index).ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25", "-t", "2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
                    "-bsf:v", "dump_extra", "-f", "mpegts", part])
        combined += try Data(contentsOf: URL(fileURLWithPath: part))
    }
    let stream = folder.appendingPathComponent("resized.ts")
    try combined.write(to: stream)
    return stream
}

/// A test's own set-up failed (ffmpeg, a port, a server): not an error of the code under test.
public struct TestSetupFailure: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
