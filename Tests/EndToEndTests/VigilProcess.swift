import Foundation
import Subprocess
import Synchronization
import SystemPackage
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

/// Runs `executable` in the repository's root with swift-subprocess, `environment` added to this
/// process's, standard input from /dev/null, handing over each chunk of standard output and
/// error as it arrives; once the process has started, `started` gets its pid. Returns when the
/// process has exited and both outputs reached their end.
private func execute(
    _ executable: URL, _ arguments: [String], environment: [String: String],
    started: @Sendable (pid_t) -> Void, output: @escaping @Sendable (Data) -> Void, error: @escaping @Sendable (Data) -> Void
) async throws -> TerminationStatus {
    let added = Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })
    let result = try await Subprocess.run(
        .path(FilePath(executable.path)), arguments: Arguments(arguments), environment: .inherit.updating(added),
        workingDirectory: FilePath(repositoryRoot.path), input: .none, output: .sequence, error: .sequence
    ) { execution in
        started(execution.processIdentifier.value)
        // Both outputs are read to their end side by side: neither can fill up and block the child.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { for try await chunk in execution.standardOutput { output(chunk.withUnsafeBytes { Data($0) }) } }
            group.addTask { for try await chunk in execution.standardError { error(chunk.withUnsafeBytes { Data($0) }) } }
        }
    }
    return result.terminationStatus
}

/// The exit status as a shell gives it: the code, or 128 + the signal that ended the process.
func exitStatus(_ status: TerminationStatus) -> Int32 {
    switch status {
    case .exited(let code): code
    case .signaled(let signal): 128 + signal
    }
}

/// A running child process whose output lines are collected as they arrive.
final class RunningProcess: Sendable {
    private struct State {
        var pid: pid_t?
        var lines: [String] = []
        /// Standard output's bytes after its last complete line.
        var partialLine = Data()
        var standardError = Data()
        /// Whether standard output reached its end (every line, a last one without newline included, is in `lines`).
        var outputEnded = false
        /// Set once the process has exited and its outputs ended (or it could not start).
        var exit: Result<Int32, ProcessFailure>?
    }

    // A class of its own so that the task running the process can hold it (a Mutex cannot be shared).
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    private let shared = Shared()

    /// Starts the process; returns once it runs.
    /// - Parameter environment: variables added to this process's environment.
    init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) async throws {
        let shared = self.shared
        let (started, startedSink) = AsyncStream.makeStream(of: Bool.self)
        Task {
            do {
                let status = try await execute(executable, arguments, environment: environment, started: { pid in
                    shared.state.withLock { $0.pid = pid }
                    startedSink.yield(true)
                }, output: { data in
                    shared.state.withLock { state in
                        state.partialLine += data
                        while let newline = state.partialLine.firstIndex(of: UInt8(ascii: "\n")) {
                            state.lines.append(String(decoding: state.partialLine[state.partialLine.startIndex..<newline], as: UTF8.self))
                            state.partialLine.removeSubrange(state.partialLine.startIndex...newline)
                        }
                    }
                }, error: { data in
                    shared.state.withLock { $0.standardError += data }
                })
                shared.state.withLock { state in
                    if !state.partialLine.isEmpty { state.lines.append(String(decoding: state.partialLine, as: UTF8.self)) }
                    state.partialLine = Data()
                    state.outputEnded = true
                    state.exit = .success(exitStatus(status))
                }
            } catch {
                shared.state.withLock { $0.exit = .failure(ProcessFailure(description: "\(executable.lastPathComponent) did not start: \(error)")) }
            }
            startedSink.finish()
        }
        for await _ in started { break }
        if case .failure(let failure) = shared.state.withLock({ $0.exit }) { throw failure }
    }

    var lines: [String] { shared.state.withLock { $0.lines } }
    var outputEnded: Bool { shared.state.withLock { $0.outputEnded } }
    var standardError: String { shared.state.withLock { String(decoding: $0.standardError, as: UTF8.self) } }
    var isRunning: Bool { shared.state.withLock { $0.exit == nil } }

    /// Waits until at least `count` stdout lines arrived, or fails after `timeout`.
    @discardableResult
    func waitForLines(_ count: Int, timeout: Duration = patience) async throws -> [String] {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            let (current, exit) = shared.state.withLock { ($0.lines, $0.exit) }
            if current.count >= count { return current }
            if let exit {
                throw ProcessFailure(description: "process exited (\(exit)) after \(current.count) lines; stderr: \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessFailure(description: "timed out waiting for \(count) lines, got \(lines); stderr: \(standardError)")
    }

    /// Waits until stderr contains `text`, or fails after `timeout`.
    func waitForStandardError(containing text: String, timeout: Duration = patience) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !standardError.contains(text) {
            guard ContinuousClock.now < deadline, isRunning else {
                throw ProcessFailure(description: "stderr never contained '\(text)': \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to exit and its outputs to end, and returns its status (128 + the
    /// signal when a signal ended it); kills it after `timeout`.
    func waitForExit(timeout: Duration = patience) async throws -> Int32 {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if let exit = shared.state.withLock({ $0.exit }) { return try exit.get() }
            guard ContinuousClock.now < deadline else {
                kill(SIGKILL)
                throw ProcessFailure(description: "did not exit in time; stderr: \(standardError)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func kill(_ signal: Int32) {
        if let pid = shared.state.withLock({ $0.exit == nil ? $0.pid : nil }) { Foundation.kill(pid, signal) }
    }
}

/// The outcome of a command that ran to completion.
struct Completed {
    let status: Int32
    let stdout: String
    let stderr: String
}

func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = patience) async throws -> Completed {
    let process = try await RunningProcess(executable, arguments, environment: environment)
    let status: Int32
    do {
        status = try await process.waitForExit(timeout: timeout)
    } catch {
        throw ProcessFailure(description: "\(executable.lastPathComponent) \(arguments.prefix(3).joined(separator: " ")) did not exit in time")
    }
    let stdout = process.lines.joined(separator: "\n")
    return Completed(status: status, stdout: stdout, stderr: process.standardError)
}

func vigil(_ arguments: String...) async throws -> Completed {
    try await run(vigilBinary, arguments)
}

func vigil(_ arguments: [String]) async throws -> Completed {
    try await run(vigilBinary, arguments)
}

/// A `vigil serve` on free loopback ports over a fresh data folder; always stopped afterwards.
func withServer(data: URL? = nil, arguments: [String] = [], _ body: (URL, RunningProcess) async throws -> Void) async throws {
    let folder = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-\(UUID().uuidString)")
    defer { if data == nil { try? FileManager.default.removeItem(at: folder) } }
    let server = try await RunningProcess(vigilBinary, ["serve", "--data", folder.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0", "--media-port", "0", "--http-port", "0", "--console-port", "0"] + arguments)
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
