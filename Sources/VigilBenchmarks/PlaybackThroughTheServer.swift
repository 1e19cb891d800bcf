import Bus
import Foundation

/// Playback's first picture through the real server: `vigil serve --simulate` in a process of its
/// own records an incident's cameras; a named user's client asks its media endpoint, over CURVE,
/// for a camera from a past moment (`feed.open` with `at`: the decision function, the audit
/// entry, the catalog, the player) and the time to the first keyframe in the client's hands is
/// taken, for `trials` random moments.
struct PlaybackThroughTheServer {
    let vigil: String

    private struct Justification: Encodable {
        var reason = "criminal-investigation"
        var text = "vigil bench footage: playback"
        var incident: Int64
    }

    private struct FeedOpen: Encodable {
        var camera: String
        var justification: Justification
        var at: Date
    }

    private struct FeedClose: Encodable {
        var view: String
    }

    private struct Message: Decodable {
        struct Result: Decodable { var view: String? }
        var id: String?
        var type: String?
        var key: Bool?
        var result: Result?
        var error: BusProtocol.ErrorBody?
    }

    func firstPictures(trials: Int) throws -> [Double] {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bench-playback-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: vigil)
        server.arguments = ["serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0", "--media-port", "0",
                            "--http-port", "0", "--simulate", "--segment-seconds", "2"]
        let ready = Pipe()
        server.standardOutput = ready
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        guard let line = String(data: ready.fileHandleForReading.availableData, encoding: .utf8),
              let info = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let media = info["media"] as? String, let serverKey = info["server_key"] as? String
        else { throw BenchSetupFailure("vigil serve did not start") }
        try run(["user", "add", "bench.viewer", "--name", "Bench", "--badge", "B-1", "--role", "operator", "--data", data.path, "--agency", "pz-5339"])
        let opened = try run(["incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--data", data.path,
                              "--agency", "pz-5339", "--json"])
        guard let reply = try JSONSerialization.jsonObject(with: opened) as? [String: Any],
              let incident = (reply["incident"] as? [String: Any])?["id"] as? Int,
              let camera = (reply["cameras"] as? [[String: Any]])?.first(where: { $0["owner"] as? String == "pz-5339" })?["id"] as? String
        else { throw BenchSetupFailure("the incident selected no camera of zone 5339") }
        // Ten seconds of footage before the moments asked for.
        Thread.sleep(forTimeInterval: 12)
        let client = try BusClient(configuration: BusClientConfiguration(
            commandEndpoint: media, eventEndpoint: media, serverPublicKey: serverKey,
            keys: try CurveCertificate.read(data.appendingPathComponent("keys/users/bench.viewer.key_secret"))))
        defer { client.close() }
        var times: [Double] = []
        for _ in 0..<trials {
            let moment = Date().addingTimeInterval(-Double.random(in: 3...9))
            let start = ContinuousClock.now
            let id = try client.send("feed.open", body: FeedOpen(camera: camera, justification: Justification(incident: Int64(incident)), at: moment))
            var view: String?
            var waited: Double?
            while waited == nil, ContinuousClock.now - start < .seconds(10) {
                guard let frames = try client.receiveMessage(timeout: .milliseconds(100)),
                      let message = try? BusProtocol.decoder.decode(Message.self, from: frames[0])
                else { continue }
                if message.id == id {
                    if let error = message.error { throw BenchSetupFailure("playback refused: \(error)") }
                    view = message.result?.view
                } else if message.type == "packet", message.key == true, view != nil {
                    waited = (ContinuousClock.now - start) / .milliseconds(1)
                }
            }
            if let view { _ = try client.send("feed.close", body: FeedClose(view: view)) }
            times.append(waited ?? 10_000)
            // What the closed view still had in flight.
            while try client.receiveMessage(timeout: .milliseconds(200)) != nil {}
        }
        return times.sorted()
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: vigil)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchSetupFailure("vigil \(arguments.prefix(2).joined(separator: " ")) failed") }
        return data
    }
}

struct BenchSetupFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
