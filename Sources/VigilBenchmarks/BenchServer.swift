import Foundation
import Glibc

/// `vigil serve` in a process of its own on free loopback ports, in a data folder of its own,
/// for the benchmarks that measure the real server: what it printed when ready, its process
/// (for its CPU time), and the CLI run against its folder.
final class BenchServer {
    let vigil: String
    let data: URL
    private(set) var process: Process
    /// The line `vigil serve` prints when ready (its endpoints and keys).
    private(set) var info: [String: Any]

    /// Starts a server with `arguments` added; `prepare` runs first in the new data folder
    /// (the server was started once there and stopped, so that the folder exists).
    init(vigil: String, name: String, arguments: [String], prepare: ((BenchServer) throws -> Void)? = nil) throws {
        self.vigil = vigil
        data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bench-\(name)-\(UUID().uuidString)")
        (process, info) = try Self.start(vigil: vigil, data: data, arguments: arguments)
        if let prepare {
            stop()
            try prepare(self)
            (process, info) = try Self.start(vigil: vigil, data: data, arguments: arguments)
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: data)
    }

    private static func start(vigil: String, data: URL, arguments: [String]) throws -> (Process, [String: Any]) {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: vigil)
        server.arguments = ["serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0", "--media-port", "0",
                            "--http-port", "0", "--console-port", "0"] + arguments
        let ready = Pipe()
        server.standardOutput = ready
        server.standardError = FileHandle.nullDevice
        try server.run()
        guard let line = String(data: ready.fileHandleForReading.availableData, encoding: .utf8),
              let info = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            server.terminate()
            throw BenchSetupFailure("vigil serve did not start")
        }
        return (server, info)
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// The server's endpoint or key printed under `key`.
    func printed(_ key: String) throws -> String {
        guard let value = info[key] as? String else { throw BenchSetupFailure("vigil serve printed no \(key)") }
        return value
    }

    /// Runs `vigil ARGUMENTS --data FOLDER`; its standard output.
    @discardableResult
    func run(_ arguments: [String]) throws -> Data {
        try runVigil(vigil, arguments + ["--data", data.path])
    }

    /// The secret key file of user `name`, made by `vigil user add`.
    func userKey(_ name: String) -> URL {
        data.appendingPathComponent("keys/users/\(name).key_secret")
    }
}

/// A new, empty folder for one benchmark's files (`vigil-bench-NAME-…` in the temporary
/// directory); the caller removes it.
func makeBenchFolder(_ name: String) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bench-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// The CPU time each thread of process `pid` has used so far: the scheduler's own count
/// (nanoseconds, `/proc/PID/task/*/schedstat`), not the user and system times of
/// `/proc/PID/stat`, which are clock ticks sampled 100 times a second, too coarse for a server
/// using a few percent of a core over six seconds (the rounds of one figure disagreed by up to a
/// third that way).
struct ProcessCPU {
    private let threads: [Substring: UInt64]

    init(ofProcess pid: Int32) {
        var threads: [Substring: UInt64] = [:]
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8),
                  let onCPU = text.split(separator: " ").first.flatMap({ UInt64($0) })
            else { continue }
            threads[Substring(task)] = onCPU
        }
        self.threads = threads
    }

    /// Seconds of CPU used since `earlier`, thread by thread: a thread that ended meanwhile takes
    /// what it used since with it (the servers measured keep their threads), and never makes the
    /// sum go back.
    func seconds(since earlier: ProcessCPU) -> Double {
        Double(threads.reduce(UInt64(0)) { sum, thread in sum + (thread.value - min(thread.value, earlier.threads[thread.key] ?? 0)) }) / 1e9
    }
}

/// A port free now on loopback (bound and released: the process a benchmark starts binds it a moment later).
func freeLoopbackPort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
    }
    guard bound else { throw BenchSetupFailure("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs `vigil ARGUMENTS` to its end; its standard output (a failure is an error).
@discardableResult
func runVigil(_ vigil: String, _ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: vigil)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw BenchSetupFailure("vigil \(arguments.prefix(2).joined(separator: " ")) failed") }
    return printed
}
