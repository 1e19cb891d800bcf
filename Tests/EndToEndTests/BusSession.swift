import Foundation
import Testing

/// A pyzmq client (`Tests/python/bus_session.py`) on a running server's bus, as the holder of
/// `certificate` (a secret key file inside the data folder, such as
/// `keys/agencies/pz-5339.key_secret`): it subscribes to `topics`, sends `requests` in turn and
/// keeps the events received until `linger` seconds after the last reply.
struct BusSession {
    let process: RunningProcess


    /// Starts the session; when it returns, the subscriptions are live. With `until`, it ends
    /// as soon as an event of that type came (or `linger` ran out).
    init(_ data: URL, as certificate: String, requests: [[String: Any]] = [], topics: [String] = [], linger: Double = 1, until: String? = nil) async throws {
        let file = data.appendingPathComponent("requests-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: requests).write(to: file)
        process = try await RunningProcess(python, [
            repositoryRoot.appendingPathComponent("Tests/python/bus_session.py").path, data.appendingPathComponent("server.json").path,
            data.appendingPathComponent("keys/server.key").path, data.appendingPathComponent(certificate).path, file.path,
        ] + topics, environment: ["BUS_SESSION_LINGER": "\(linger)"].merging(until.map { ["BUS_SESSION_UNTIL": $0] } ?? [:]) { $1 })
        try await process.waitForStandardError(containing: "subscribed")
    }

    /// The replies in order and the events (`{"topic", "event"}`), once the session has ended.
    func finished() async throws -> (replies: [[String: Any]], events: [[String: Any]]) {
        #expect(try await process.waitForExit() == 0, "\(process.standardError)")
        while !process.outputEnded { try await Task.sleep(for: .milliseconds(10)) }
        let result = try json(process.lines.joined(separator: "\n"))
        return (result["replies"] as? [[String: Any]] ?? [], result["events"] as? [[String: Any]] ?? [])
    }

    /// Runs a session to its end.
    static func run(_ data: URL, as certificate: String, requests: [[String: Any]] = [], topics: [String] = [], linger: Double = 1)
        async throws -> (replies: [[String: Any]], events: [[String: Any]])
    {
        try await BusSession(data, as: certificate, requests: requests, topics: topics, linger: linger).finished()
    }
}

/// The error code of a bus reply, if it is an error.
func errorCode(_ reply: [String: Any]) -> String? {
    (reply["error"] as? [String: Any])?["code"] as? String
}
