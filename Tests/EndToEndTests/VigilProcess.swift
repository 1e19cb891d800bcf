import Foundation
import Synchronization
import Testing

/// The `vigil` binary built beside the test bundle (or `VIGIL_BIN`).
let vigilBinary: URL = {
    if let explicit = ProcessInfo.processInfo.environment["VIGIL_BIN"] { return URL(fileURLWithPath: explicit) }
    return Bundle.main.bundleURL.appendingPathComponent("vigil").standardizedFileURL
}()

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// How long a test waits for something that must happen (a ready line, an exit, a log line).
/// Generous on purpose: the suite starts a dozen servers at once on two shared cores, where a
/// debug server's start-up has taken over 20 s. Tests never assert on timing; this only bounds
/// how long a broken run takes to fail.
let patience: Duration = .seconds(120)

/// The Python that runs the protocol clients of `Tests/python` (`VIGIL_PYTHON`, else Debian's).
let python = URL(fileURLWithPath: ProcessInfo.processInfo.environment["VIGIL_PYTHON"] ?? "/usr/bin/python3")

struct ProcessFailure: Error, CustomStringConvertible {
    let description: String
}

/// Reads `pipe` to its end on a thread of its own, handing over each chunk as it arrives, then
/// calling `ended`. Not a `readabilityHandler`: Foundation traps (`availableData`) when one runs
/// after its pipe was closed, which releasing the `Process` that owns the pipe may do at any
/// moment. Here the thread holds the pipe, so its descriptor stays open until the last read.
func readToEnd(_ pipe: Pipe, chunk: @escaping @Sendable (Data) -> Void, ended: @escaping @Sendable () -> Void) {
    Thread {
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 {
                chunk(Data(buffer[..<count]))
            } else if count < 0, errno == EINTR {
                continue
            } else {
                break
            }
        }
        ended()
    }.start()
}

/// Starts `executable` in the repository's root with `environment` added to this process's,
/// standard input from /dev/null, and standard output and error on pipes of their own.
func launch(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> (process: Process, out: Pipe, err: Pipe) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
    }
    process.currentDirectoryURL = repositoryRoot
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return (process, out, err)
}

/// A running child process whose output lines are collected as they arrive.
final class RunningProcess: Sendable {
    let process: Process
    private let stdoutLines = Mutex<[String]>([])
    private let stderrBytes = Mutex(Data())
    /// Whether standard output reached its end (every line, a last one without newline included, is in `lines`).
    private let stdoutEnded = Mutex(false)
    /// Standard output's bytes after its last complete line.
    private let partialLine = Mutex(Data())

    /// - Parameter environment: variables added to this process's environment.
    init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        let (process, out, err) = try launch(executable, arguments, environment: environment)
        self.process = process
        readToEnd(out, chunk: { [self] data in
            let complete = partialLine.withLock { buffer -> [String] in
                buffer += data
                var lines: [String] = []
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
                return lines
            }
            if !complete.isEmpty { stdoutLines.withLock { $0 += complete } }
        }, ended: { [self] in
            let rest = partialLine.withLock { buffer in defer { buffer = Data() }; return buffer }
            if !rest.isEmpty { stdoutLines.withLock { $0.append(String(decoding: rest, as: UTF8.self)) } }
            stdoutEnded.withLock { $0 = true }
        })
        readToEnd(err, chunk: { [self] data in stderrBytes.withLock { $0 += data } }, ended: {})
    }

    var lines: [String] { stdoutLines.withLock { $0 } }
    var outputEnded: Bool { stdoutEnded.withLock { $0 } }
    var standardError: String { stderrBytes.withLock { String(decoding: $0, as: UTF8.self) } }

    /// Waits until at least `count` stdout lines arrived, or fails after `timeout`.
    @discardableResult
    func waitForLines(_ count: Int, timeout: Duration = patience) async throws -> [String] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            let current = lines
            if current.count >= count { return current }
            if !process.isRunning && lines.count < count {
                throw ProcessFailure(description: "process exited (\(process.terminationStatus)) after \(lines.count) lines; stderr: \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessFailure(description: "timed out waiting for \(count) lines, got \(lines); stderr: \(standardError)")
    }

    /// Waits until stderr contains `text`, or fails after `timeout`.
    func waitForStandardError(containing text: String, timeout: Duration = patience) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !standardError.contains(text) {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw ProcessFailure(description: "stderr never contained '\(text)': \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration = patience) async throws -> Int32 {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw ProcessFailure(description: "did not exit in time; stderr: \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    func kill(_ signal: Int32) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
    }
}

/// The outcome of a command that ran to completion.
struct Completed {
    let status: Int32
    let stdout: String
    let stderr: String
}

func run(_ executable: URL, _ arguments: [String], timeout: Duration = patience) async throws -> Completed {
    let (process, out, err) = try launch(executable, arguments)
    // Both pipes are read to their end on threads of their own (neither can fill up and block
    // the child), and the output is complete once both reads return.
    let outputs = Mutex<[Int: Data]>([:])
    let done = DispatchSemaphore(value: 0)
    for (index, pipe) in [out, err].enumerated() {
        readToEnd(pipe, chunk: { data in outputs.withLock { $0[index, default: Data()] += data } }, ended: { done.signal() })
    }
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while process.isRunning {
        guard ContinuousClock.now < deadline else {
            process.terminate()
            throw ProcessFailure(description: "\(executable.lastPathComponent) \(arguments.prefix(3).joined(separator: " ")) did not exit in time")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    for _ in 0..<2 {
        while done.wait(timeout: .now()) != .success { try await Task.sleep(for: .milliseconds(5)) }
    }
    let (stdout, stderr) = outputs.withLock { (String(decoding: $0[0] ?? Data(), as: UTF8.self), String(decoding: $0[1] ?? Data(), as: UTF8.self)) }
    // Callers split lines; a trailing newline adds nothing.
    return Completed(status: process.terminationStatus, stdout: stdout.hasSuffix("\n") ? String(stdout.dropLast()) : stdout, stderr: stderr)
}

func vigil(_ arguments: String...) async throws -> Completed {
    try await run(vigilBinary, arguments)
}

/// A `vigil serve` on free loopback ports over a fresh data folder; always stopped afterwards.
func withServer(data: URL? = nil, arguments: [String] = [], _ body: (URL, RunningProcess) async throws -> Void) async throws {
    let folder = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-\(UUID().uuidString)")
    defer { if data == nil { try? FileManager.default.removeItem(at: folder) } }
    let server = try RunningProcess(vigilBinary, ["serve", "--data", folder.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0", "--media-port", "0", "--http-port", "0"] + arguments)
    defer { server.kill(SIGKILL) }
    let ready = try await server.waitForLines(1)
    #expect(ready[0].contains(#""ready":true"#))
    try await body(folder, server)
}

/// A data folder that a server has made (database, keys, the fixtures loaded) and left, stopped,
/// for a test to change before it starts a server on it; removed afterwards.
func withStoppedServerFolder(_ name: String, _ body: (URL) async throws -> Void) async throws {
    let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-\(name)-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: data) }
    try await withServer(data: data) { _, server in
        server.kill(SIGTERM)
        _ = try await server.waitForExit()
    }
    try await body(data)
}

func json(_ line: String) throws -> [String: Any] {
    let parsed: Any
    do {
        parsed = try JSONSerialization.jsonObject(with: Data(line.utf8))
    } catch {
        throw ProcessFailure(description: "not JSON (\(line.count) characters): \(line.prefix(300))…\(line.suffix(100))")
    }
    guard let object = parsed as? [String: Any] else {
        throw ProcessFailure(description: "not a JSON object: \(line)")
    }
    return object
}
