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

/// The CPU time a process has used so far, in seconds (user and system, from /proc).
func cpuSeconds(ofProcess pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let afterName = stat.range(of: ")", options: .backwards)
    else { return .nan }
    // After the name: state is field 3, utime and stime are fields 14 and 15.
    let fields = stat[afterName.upperBound...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
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
