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
        let server = try BenchServer(vigil: vigil, name: "playback", arguments: ["--simulate", "--segment-seconds", "2"])
        try server.run(["user", "add", "bench.viewer", "--name", "Bench", "--badge", "B-1", "--role", "operator", "--agency", "pz-5339"])
        let opened = try server.run(["incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--agency", "pz-5339", "--json"])
        guard let reply = try JSONSerialization.jsonObject(with: opened) as? [String: Any],
              let incident = (reply["incident"] as? [String: Any])?["id"] as? Int,
              let camera = (reply["cameras"] as? [[String: Any]])?.first(where: { $0["owner"] as? String == "pz-5339" })?["id"] as? String
        else { throw BenchSetupFailure("the incident selected no camera of zone 5339") }
        // Ten seconds of footage before the moments asked for.
        Thread.sleep(forTimeInterval: 12)
        let media = try server.printed("media")
        let client = try BusClient(configuration: BusClientConfiguration(
            commandEndpoint: media, eventEndpoint: media, serverPublicKey: try server.printed("server_key"),
            keys: try CurveCertificate.read(server.userKey("bench.viewer"))))
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
}

/// A benchmark's own set-up failed (a peer, a server, a stream): no figure of the code measured.
public struct BenchSetupFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
