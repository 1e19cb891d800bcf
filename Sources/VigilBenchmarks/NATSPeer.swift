import Foundation

/// The bus's peer: `Benchmarks/nats/natsbench.go` (the official Go client against Debian's
/// nats-server with TLS on loopback), built by `make bench`, run in the same bench run and
/// measuring the same figures; its figures by name (`nats_round_trip_p50` in µs,
/// `nats_events_per_second`, `nats_fanout_p99` in ms, …).
public enum NATSPeer {
    /// Where `make bench` builds it.
    public static let defaultBinary = ".build/natsbench"

    /// Which of its figures a run measures.
    public enum Figures: String, Sendable {
        /// Round trips and events per second to one subscriber.
        case messaging
        /// One event to many subscribers.
        case fanOut = "fanout"
    }

    public static func measure(binary: String, _ figures: Figures, roundTrips: Int = 0, events: Int = 0, subscribers: Int = 0) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-only", figures.rawValue, "-round-trips", "\(roundTrips)", "-events", "\(events)", "-subscribers", "\(subscribers)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchSetupFailure("\(binary) failed (is nats-server installed? make bench installs it)") }
        var figures: [String: Double] = [:]
        for line in printed.split(separator: UInt8(ascii: "\n")) {
            if let figure = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let name = figure["figure"] as? String,
               let value = figure["value"] as? Double
            {
                figures[name] = value
            }
        }
        return figures
    }
}
