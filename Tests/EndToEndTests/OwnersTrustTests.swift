import Foundation
import Testing

/// The promises made to camera owners, each tried as an attacker would, through the public
/// interfaces: the bus (pyzmq), the command line and the files a server leaves behind.
@Suite("Owners' trust", .serialized, .timeLimit(.minutes(2)))
struct OwnersTrustTests {
    /// A stopped server's data folder with one more camera of zone 5339, `stream` its source.
    private func folderWithCamera(stream: String, _ body: (URL) async throws -> Void) async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-trust-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        try await withServer(data: data) { _, server in
            server.kill(SIGTERM)
            _ = try await server.waitForExit()
        }
        let registry = data.appendingPathComponent("camera.geojson")
        try Data("""
            {"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[4.3525,50.8467]},
             "properties":{"id":"pz5339-ip-01","owner":"pz-5339","kind":"street","place_type":"square","range_m":40,
                           "stream":"\(stream)","confidentiality":"public","tags":[]}}]}
            """.utf8).write(to: registry)
        let imported = try await vigil("cameras", "import", registry.path, "--data", data.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        try await body(data)
    }

    /// A camera's password stays in the registry: not in its `camera.state` events, the server's
    /// log or `cameras export`.
    @Test func cameraPasswordsAreNeverPublished() async throws {
        let stream = "rtsp://admin:s3cret-pw@127.0.0.1:9/live?token=t0ken-42"
        try await folderWithCamera(stream: stream) { data in
            let exported = try await vigil("cameras", "export", "--data", data.path)
            #expect(exported.status == 0)
            #expect(!exported.stdout.contains("s3cret-pw") && !exported.stdout.contains("t0ken-42"))
            let features = try #require(try json(exported.stdout)["features"] as? [[String: Any]])
            let camera = features.compactMap { $0["properties"] as? [String: Any] }.first { $0["id"] as? String == "pz5339-ip-01" }
            #expect(camera?["stream"] as? String == "rtsp://***@127.0.0.1:9/live?token=***")

            try await withServer(data: data) { data, server in
                let listener = try await BusSession(data, as: "keys/agencies/crisis-centre.key_secret", topics: ["cameras/crisis-centre/"], linger: 6)
                let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                             "--participant", "crisis-centre", "--data", data.path, "--agency", "pz-5339")
                #expect(opened.status == 0, "\(opened.stderr)")
                let events = try await listener.finished().events.compactMap { $0["event"] as? [String: Any] }
                let states = events.filter { $0["type"] as? String == "camera.state" }.compactMap { $0["body"] as? [String: Any] }
                    .filter { $0["camera"] as? String == "pz5339-ip-01" }
                let down = try #require(states.first { $0["state"] as? String == "down" }, "\(events.count) events, \(states)")
                let reason = try #require(down["reason"] as? String)
                #expect(reason.contains("127.0.0.1:9") && !reason.contains("s3cret-pw") && !reason.contains("t0ken-42"), "\(reason)")
                server.kill(SIGTERM)
                _ = try await server.waitForExit()
                #expect(!server.standardError.contains("s3cret-pw") && !server.standardError.contains("t0ken-42"))
            }
        }
    }

    /// A second server on a data folder in use exits with a clear error and leaves the first one's
    /// `server.json` in place.
    @Test func oneDataFolderServesOneServer() async throws {
        try await withServer { data, _ in
            let serverFile = data.appendingPathComponent("server.json")
            let before = try Data(contentsOf: serverFile)
            let second = try await vigil("serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0",
                                         "--media-port", "0", "--http-port", "0")
            #expect(second.status != 0)
            #expect(second.stderr.contains("data_folder_in_use"), "\(second.stderr)")
            #expect(try Data(contentsOf: serverFile) == before)
            // The first server still answers.
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "80", "--data", data.path)
            #expect(opened.status == 0, "\(opened.stderr)")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-not-a-folder-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let onAFile = try await vigil("serve", "--data", file.path, "--command-port", "0")
        #expect(onAFile.status != 0 && onAFile.stderr.contains("data_folder_invalid"), "\(onAFile.stderr)")
    }

    /// Text with control or direction-changing characters is refused on the bus with
    /// `text_invalid` and the field; nothing of it is stored; any script is stored whole.
    @Test func textThatLiesIsRefused() async throws {
        try await withServer { data, _ in
            func open(_ title: String) -> [String: Any] {
                ["op": "incident.open", "body": ["kind": "fire", "at": ["lat": 50.8467, "lon": 4.3525], "radius_meters": 80, "title": title]]
            }
            let session = try await BusSession.run(data, as: "keys/agencies/siamu.key_secret", requests: [
                open("Fire\u{0}at the station"), open("Fire \u{202E}noitats"), open("Brand 🔥 Zuid — 2ᵉ alarme"),
                ["op": "view.start", "body": ["camera": "stib-8021-01", "mode": "live", "justification": ["reason": "fire", "text": "\u{0}\u{0}\u{0}\u{0}\u{0}"]]],
            ])
            let replies = session.replies
            #expect(replies.count == 4)
            for reply in replies[0...1] + [replies[3]] {
                #expect(errorCode(reply) == "text_invalid", "\(reply)")
            }
            #expect((replies[0]["error"] as? [String: Any])?["field"] as? String == "body.title")
            #expect((replies[3]["error"] as? [String: Any])?["field"] as? String == "body.justification.text")
            // Only the third request opened an incident (the first of the folder), its title whole.
            let id = try #require((replies[2]["result"] as? [String: Any]).flatMap { ($0["incident"] as? [String: Any])?["id"] as? Int }, "\(replies[2])")
            #expect(id == 1)
            let shown = try await vigil("incident", "show", "1", "--data", data.path, "--agency", "siamu", "--json")
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect((try json(shown.stdout)["incident"] as? [String: Any])?["title"] as? String == "Brand 🔥 Zuid — 2ᵉ alarme")
        }
    }
}
