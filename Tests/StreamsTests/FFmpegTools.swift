import Foundation
@testable import Streams

/// Real H.264 streams made by ffmpeg (libx264), read back without decoding.
func ffmpeg(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
    process.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw MediaError(code: "test_setup", message: "ffmpeg \(arguments) failed") }
}

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
    guard process.terminationStatus == 0 else { throw MediaError(code: "test_setup", message: "ffmpeg could not decode \(path)") }
    return [UInt8](pixels)
}
