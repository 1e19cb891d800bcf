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

/// A test's own set-up failed (ffmpeg, a port, a server): not an error of the code under test.
public struct TestSetupFailure: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
