import Foundation
import Glibc

/// A child process whose standard output lines are kept with when each arrived; its standard
/// error goes to `log`.
final class Child: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var received: [(line: String, at: Date)] = []
    private var partial = Data()

    init(_ executable: String, _ arguments: [String], log: URL) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            defer { self.lock.unlock() }
            self.partial += data
            while let newline = self.partial.firstIndex(of: 10) {
                self.received.append((String(decoding: self.partial[self.partial.startIndex..<newline], as: UTF8.self), Date()))
                self.partial.removeSubrange(self.partial.startIndex...newline)
            }
        }
        try process.run()
    }

    var lines: [String] { lock.withLock { received.map(\.line) } }
    var lineTimes: [Date] { lock.withLock { received.map(\.at) } }

    func waitForLine(containing text: String, timeout: Double = 120) throws -> (line: String, at: Date) {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let found = lock.withLock({ received.first { $0.line.contains(text) } }) { return found }
            guard process.isRunning, Date() < deadline else { break }
            Thread.sleep(forTimeInterval: 0.01)
        } while true
        throw BenchSetupFailure("\(process.arguments?.first ?? "") printed no line with \(text)")
    }

    /// Waits until the log holds `text` `occurrence` times; when it was seen (polled every 10 ms).
    @discardableResult
    func waitForLog(containing text: String, occurrence: Int = 1, in log: URL, timeout: Double = 60) throws -> Date {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let logged = try? String(contentsOf: log, encoding: .utf8), logged.components(separatedBy: text).count > occurrence { return Date() }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw BenchSetupFailure("\(process.arguments?.first ?? "") never said \(text)")
    }

    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !process.isRunning
    }

    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
