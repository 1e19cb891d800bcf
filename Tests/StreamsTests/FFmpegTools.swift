import Foundation
import Glibc
@testable import Streams
import TestSupport

/// ffprobe's view of a file: codec, the number of frames, and what it printed as errors.
func probe(_ path: String) throws -> (codec: String, frames: Int, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffprobe")
    process.arguments = ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,nb_read_frames",
                         "-of", "csv=p=0", path]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    // MPEG-TS lists the stream under its program too: the first line is enough.
    let fields = (output.split(separator: "\n").first ?? "").split(separator: ",")
    return (fields.first.map(String.init) ?? "", fields.count > 1 ? Int(fields[1]) ?? -1 : -1, errors)
}

/// The luma of a picture file as 8-bit grey, read back by ffmpeg (full range: black is 0).
func greyPixels(_ path: String) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
    process.arguments = ["-hide_banner", "-loglevel", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    let out = Pipe()
    process.standardOutput = out
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let pixels = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestSetupFailure("ffmpeg could not decode \(path)") }
    return [UInt8](pixels)
}

/// A real RTSP server (gst-rtsp-server, `Tests/python/rtsp_camera.py`) serving a live H.264
/// test pattern at `url` until stopped.
final class RTSPCamera {
    let url: String
    private let process = Process()

    init(port: Int) throws {
        url = "rtsp://127.0.0.1:\(port)/camera"
        let python = ProcessInfo.processInfo.environment["VIGIL_PYTHON"] ?? "/usr/bin/python3"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/rtsp_camera.py")
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, "\(port)"]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // It prints "ready" once it listens.
        let line = out.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("ready") else {
            stop()
            throw TestSetupFailure("the RTSP server did not start")
        }
    }

    func stop() {
        // SIGKILL: the test process's blocked signals are inherited, SIGTERM may never arrive.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
