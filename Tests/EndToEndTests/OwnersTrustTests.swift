import Foundation
import Geo
import Testing

/// The promises made to camera owners about what agencies see, each tried as an attacker would,
/// through the public interfaces: the bus (pyzmq), the command line and the files a server
/// leaves behind. (Two suites, so that they run beside each other.)
@Suite("Owners' trust: what agencies see", .serialized, .timeLimit(.minutes(2)))
struct OwnersTrustTests {
    /// A stopped server's data folder with one more camera of zone 5339, `stream` its source.
    private func folderWithCamera(stream: String, _ body: (URL) async throws -> Void) async throws {
        try await withStoppedServerFolder("trust") { data in
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

    /// A thumbnail is a picture: an agency receives an incident's thumbnails only once a named
    /// user of it has asked, with a justification, and the log records it (refusals too).
    @Test func thumbnailsNeedARecordedDecision() async throws {
        let stream = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-thumbnails-\(UUID().uuidString).ts").path
        defer { try? FileManager.default.removeItem(atPath: stream) }
        try await makeTestStream(at: stream)
        try await folderWithCamera(stream: stream) { data in
            try await withServer(data: data, arguments: ["--thumbnail-interval", "0.3"]) { data, _ in
                #expect(try await vigil("user", "add", "cc.op", "--name", "O", "--badge", "CC-7", "--role", "operator", "--data", data.path).status == 0)
                func thumbnails(_ events: [[String: Any]]) -> [[String: Any]] {
                    events.compactMap { $0["event"] as? [String: Any] }.filter { $0["type"] as? String == "camera.thumbnail" }
                }
                let unasked = try await BusSession(data, as: "keys/agencies/crisis-centre.key_secret", topics: ["thumbnails/crisis-centre/"], linger: 3)
                let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                             "--participant", "crisis-centre", "--data", data.path, "--agency", "pz-5339", "--json")
                #expect(opened.status == 0, "\(opened.stderr)")
                let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
                #expect(thumbnails(try await unasked.finished().events).isEmpty, "no picture without a recorded decision")

                let justification: [String: Any] = ["reason": "public-order", "text": "Crowd building up on the square", "incident": id]
                let byAgency = try await BusSession.run(data, as: "keys/agencies/crisis-centre.key_secret", requests: [
                    ["op": "thumbnails.start", "body": ["justification": justification]],
                ])
                #expect(byAgency.replies.first.flatMap(errorCode) == "named_user_required", "\(byAgency.replies)")
                let asked = try await BusSession.run(data, as: "keys/users/cc.op.key_secret", requests: [
                    ["op": "thumbnails.start", "body": ["justification": justification]],
                ], topics: ["thumbnails/crisis-centre/"], linger: 3)
                #expect(asked.replies.first?["result"] != nil, "\(asked.replies)")
                let received = thumbnails(asked.events)
                #expect(received.contains { ($0["body"] as? [String: Any])?["camera"] as? String == "pz5339-ip-01" }, "\(received.count) thumbnails")

                let exported = try await vigil("audit", "export", "--data", data.path)
                let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
                let refused = try #require(records.first { $0["action"] as? String == "thumbnails.refused" })
                #expect((refused["details"] as? [String: Any])?["code"] as? String == "named_user_required")
                let started = try #require(records.first { $0["action"] as? String == "thumbnails.started" })
                #expect(started["user"] as? String == "cc.op" && started["incident"] as? Int == id
                        && started["justification"] as? String == "Crowd building up on the square")
            }
        }
    }

    /// An incident is no key to cameras: only its lead and participants view under it,
    /// incident-bound grants cover the cameras it selected within the limits the owner set
    /// (exceeding them is refused with a stable code and audited), and the owner is told on its
    /// channel when an incident makes its cameras available.
    @Test func incidentBoundGrantsStayWithinTheirIncidentsAndLimits() async throws {
        try await withServer { data, _ in
            let grant = data.appendingPathComponent("bounded-grant.json")
            try Data("""
                {"id": "pz5342-siamu-bounded", "owner": "pz-5342", "agency": "siamu", "scope": {"kinds": ["street"]}, "modes": ["live"],
                 "valid_from": "2026-01-01T00:00:00Z", "purpose": "fire support", "legal_basis": "Belgian camera law",
                 "condition": {"while_incident_open": {"camera_in_selection": true}}, "limits": {"max_radius_meters": 300}}
                """.utf8).write(to: grant)
            let created = try await vigil("grant", "create", grant.path, "--data", data.path, "--agency", "pz-5342")
            #expect(created.status == 0, "\(created.stderr)")
            for (user, agency) in [("siamu.op", "siamu"), ("pz.op", "pz-5339")] {
                #expect(try await vigil("user", "add", user, "--name", "O", "--badge", "B-\(user)", "--role", "operator",
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            func open(radius: Int) async throws -> Int {
                let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.7828353,4.3875831", "--radius", "\(radius)",
                                             "--data", data.path, "--agency", "siamu", "--json")
                #expect(opened.status == 0, "\(opened.stderr)")
                return try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            }
            func view(_ incident: Int) -> [String: Any] {
                ["op": "view.start", "body": ["camera": "pz5342-street-0001", "mode": "live",
                                              "justification": ["reason": "emergency-response", "text": "Smoke seen from the street", "incident": incident]]]
            }

            let owner = try await BusSession(data, as: "keys/agencies/pz-5342.key_secret", topics: ["owner/pz-5342/"], linger: 2)
            let small = try await open(radius: 100)
            let notices = try await owner.finished().events.compactMap { $0["event"] as? [String: Any] }
                .filter { $0["type"] as? String == "incident.cameras-available" }
            let notice = try #require(notices.first?["body"] as? [String: Any], "the owner was not told")
            #expect(notice["incident"] as? Int == small && notice["agency"] as? String == "siamu", "\(notice)")
            #expect((notice["cameras"] as? [String])?.contains("pz5342-street-0001") == true, "\(notice)")

            let large = try await open(radius: 1_000)
            let siamu = try await BusSession.run(data, as: "keys/users/siamu.op.key_secret", requests: [view(small), view(large)])
            #expect((siamu.replies.first?["result"] as? [String: Any])?["view"] is String, "\(siamu.replies)")
            #expect(siamu.replies.count == 2 && errorCode(siamu.replies[1]) == "incident_too_large", "\(siamu.replies)")
            let outsider = try await BusSession.run(data, as: "keys/users/pz.op.key_secret", requests: [view(small)])
            #expect(outsider.replies.first.flatMap(errorCode) == "not_participant", "\(outsider.replies)")

            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            #expect(records.contains { $0["action"] as? String == "grant.limit-exceeded" && $0["incident"] as? Int == large
                    && $0["reason"] as? String == "incident_too_large" })
            let refusals = records.filter { $0["action"] as? String == "view.refused" }
                .compactMap { ($0["details"] as? [String: Any])?["code"] as? String }
            #expect(refusals.contains("incident_too_large") && refusals.contains("not_participant"), "\(refusals)")
        }
    }

    /// Two confidential cameras in the same 500 m square of the metric grid, 250 m apart: an
    /// agency that may watch them cannot tell them apart by any incident, from any centre with
    /// any radius (so no series of incidents locates either better than the square), and an
    /// agency without a grant learns nothing of them, not even that they exist.
    @Test func incidentsNeverLocateAConfidentialCamera() async throws {
        try await withStoppedServerFolder("secret") { data in
            let projection = try Projection(crs: .belgianLambert2008)
            let near = try projection.metric(try GeoPoint(lat: 50.8467, lon: 4.3525))
            let corner = MetricPoint(x: (near.x / 500).rounded(.down) * 500, y: (near.y / 500).rounded(.down) * 500)
            let secret = [("pz5339-secret-a", MetricPoint(x: corner.x + 100, y: corner.y + 120)),
                          ("pz5339-secret-b", MetricPoint(x: corner.x + 350, y: corner.y + 320))]
            var features: [String] = []
            for (id, point) in secret {
                let position = try projection.geographic(point)
                features.append("""
                    {"type":"Feature","geometry":{"type":"Point","coordinates":[\(position.lon),\(position.lat)]},
                     "properties":{"id":"\(id)","owner":"pz-5339","kind":"street","place_type":"building","range_m":40,
                                   "stream":"sim://\(id)","confidentiality":"confidential","tags":[]}}
                    """)
            }
            let file = data.appendingPathComponent("secret.geojson")
            try Data(#"{"type":"FeatureCollection","features":["# .utf8 + Data(features.joined(separator: ",").utf8) + Data("]}".utf8)).write(to: file)
            #expect(try await vigil("cameras", "import", file.path, "--data", data.path).status == 0)

            var generator = SystemRandomNumberGenerator()
            let centre = MetricPoint(x: corner.x + 250, y: corner.y + 250)
            var queries: [[String: Any]] = []
            for _ in 0..<40 {
                let at = try projection.geographic(MetricPoint(
                    x: centre.x + Double.random(in: -700...700, using: &generator), y: centre.y + Double.random(in: -700...700, using: &generator)))
                queries.append(["op": "incident.open", "body": ["kind": "public-order", "at": ["lat": at.lat, "lon": at.lon],
                                                                "radius_meters": Double.random(in: 20...900, using: &generator)]])
            }
            try await withServer(data: data) { data, _ in
                // The crisis centre may watch zone 5339's street cameras at all times.
                let granted = try await BusSession.run(data, as: "keys/agencies/crisis-centre.key_secret", requests: queries)
                #expect(granted.replies.count == queries.count)
                var selected = 0
                for reply in granted.replies {
                    let cameras = try #require((reply["result"] as? [String: Any])?["cameras"] as? [[String: Any]], "\(reply)")
                    let found = cameras.enumerated().filter { ($0.element["id"] as? String)?.hasPrefix("pz5339-secret-") == true }
                    #expect(found.count == 0 || found.count == 2, "one of two cameras in the same square told apart: \(found.map(\.element))")
                    if found.count == 2 {
                        selected += 1
                        #expect(found[0].element["distance_meters"] as? Double == found[1].element["distance_meters"] as? Double)
                        #expect(found[1].offset == found[0].offset + 1, "ranked side by side")
                        #expect(found.allSatisfy { $0.element["position"] == nil })
                    }
                }
                #expect(selected > 0 && selected < queries.count, "the queries both reach and miss the square (\(selected) of \(queries.count))")

                // The fire service has no grant on zone 5339's street cameras: nothing of them, no count.
                let ungranted = try await BusSession.run(data, as: "keys/agencies/siamu.key_secret", requests: Array(queries.prefix(10)))
                for reply in ungranted.replies {
                    let result = try #require(reply["result"] as? [String: Any], "\(reply)")
                    let text = String(decoding: try JSONSerialization.data(withJSONObject: result), as: UTF8.self)
                    #expect(!text.contains("pz5339-secret") && !text.contains("hidden"), "\(text.prefix(300))")
                }
            }
        }
    }

    /// One registry feature of zone 5339, as `vigil cameras import|update` read it.
    private func feature(_ id: String, lat: Double, lon: Double, range: Int = 72, masks: String = "[]") -> String {
        """
        {"type":"Feature","geometry":{"type":"Point","coordinates":[\(lon),\(lat)]},
         "properties":{"id":"\(id)","owner":"pz-5339","kind":"street","place_type":"road","heading_deg":300.4,"fov_deg":81,
                       "range_m":\(range),"stream":"sim://\(id)","confidentiality":"public","tags":[],"privacy_masks":\(masks)}}
        """
    }

    private func registry(_ features: String..., in data: URL) throws -> String {
        let file = data.appendingPathComponent("registry-\(UUID().uuidString).geojson")
        try Data(#"{"type":"FeatureCollection","features":["# .utf8 + Data(features.joined(separator: ",").utf8) + Data("]}".utf8)).write(to: file)
        return file.path
    }

    /// Import refuses what a server could not use (a position outside the region's CRS, a
    /// self-intersecting mask); a bad row already in a database leaves that camera out of a
    /// server, which starts and says so.
    @Test func oneBadCameraNeverBricksTheFolder() async throws {
        try await withStoppedServerFolder("bad-row") { data in
            let bowtie = "[[[0,0],[1,1],[1,0],[0,1]]]"
            let refused = try await vigil("cameras", "import", try registry(
                feature("pz5339-null-island", lat: 0, lon: 0), feature("pz5339-bowtie", lat: 50.7965, lon: 4.3993, masks: bowtie), in: data),
                "--data", data.path)
            #expect(refused.status == 1)
            for expected in ["features[0].position", "coordinate_outside_crs", "features[1].privacy_masks[0]", "mask_invalid", "2 problems"] {
                #expect(refused.stderr.contains(expected), "\(refused.stderr)")
            }
            // A row written by an older vigil, or by hand, that no server can use.
            let broken = try await run(python, ["-c", """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                db.execute("UPDATE cameras SET lat = 0, lon = 0 WHERE id = 'pz5339-street-0001'")
                db.commit()
                """, data.appendingPathComponent("vigil.sqlite").path])
            #expect(broken.status == 0, "\(broken.stderr)")
            try await withServer(data: data) { data, server in
                try await server.waitForStandardError(containing: "pz5339-street-0001")
                #expect(server.standardError.contains("camera left out of the index"))
                let info = try json(String(decoding: try Data(contentsOf: data.appendingPathComponent("server.json")), as: UTF8.self))
                #expect(info["cameras"] as? Int == 4_683)
            }
        }
    }

    /// Sharing an owner's cameras, and taking the sharing back, is the owner's administration:
    /// its own key or one of its owner-admin users, never an operator; each act is recorded with
    /// the user who did it, a refusal too.
    @Test func onlyTheOwnersAdministratorsShareOrRevokeItsCameras() async throws {
        try await withServer { data, _ in
            for (user, role) in [("pz.admin", "owner-admin"), ("pz.op", "operator")] {
                #expect(try await vigil("user", "add", user, "--name", "A", "--badge", "B-\(user)", "--role", role,
                                        "--data", data.path, "--agency", "pz-5339").status == 0)
            }
            let grant = data.appendingPathComponent("shared.json")
            try Data("""
                {"id": "pz5339-siamu-shared", "owner": "pz-5339", "agency": "siamu", "scope": {"kinds": ["street"]}, "modes": ["live"],
                 "valid_from": "2026-01-01T00:00:00Z", "purpose": "fire support", "legal_basis": "Belgian camera law",
                 "condition": {"always": {}}}
                """.utf8).write(to: grant)
            let byOperator = try await vigil("grant", "create", grant.path, "--data", data.path, "--agency", "pz-5339", "--user", "pz.op")
            #expect(byOperator.status != 0 && byOperator.stderr.contains("role_required"), "\(byOperator.stderr)")
            let byAdmin = try await vigil("grant", "create", grant.path, "--data", data.path, "--agency", "pz-5339", "--user", "pz.admin")
            #expect(byAdmin.status == 0, "\(byAdmin.stderr)")
            let revokedByOperator = try await vigil("grant", "revoke", "pz5339-siamu-shared", "--reason", "not mine to take back",
                                                    "--data", data.path, "--agency", "pz-5339", "--user", "pz.op")
            #expect(revokedByOperator.status != 0 && revokedByOperator.stderr.contains("role_required"), "\(revokedByOperator.stderr)")
            let listed = try await vigil("grant", "list", "--data", data.path, "--agency", "siamu")
            #expect(listed.stdout.contains("pz5339-siamu-shared") && !listed.stdout.contains("revoked"), "the operator took nothing back: \(listed.stdout)")
            let revoked = try await vigil("grant", "revoke", "pz5339-siamu-shared", "--reason", "agreement ended",
                                          "--data", data.path, "--agency", "pz-5339", "--user", "pz.admin")
            #expect(revoked.status == 0, "\(revoked.stderr)")

            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let acts = records.filter { ($0["action"] as? String ?? "").hasPrefix("grant.") }.map { "\($0["action"] ?? "") \($0["user"] ?? "-")" }
            #expect(acts == ["grant.create.refused pz.op", "grant.created pz.admin", "grant.revoke.refused pz.op", "grant.revoked pz.admin"], "\(acts)")
        }
    }

    /// Owners edit and retire their own cameras on the bus (an owner-admin user or the owner's
    /// certificate), checked as an import is, audited, applied by the running server at once.
    @Test func ownersUpdateAndRetireTheirCameras() async throws {
        try await withServer { data, _ in
            for (user, role) in [("pz.admin", "owner-admin"), ("pz.op", "operator")] {
                #expect(try await vigil("user", "add", user, "--name", "A", "--badge", "B-\(user)", "--role", role,
                                        "--data", data.path, "--agency", "pz-5339").status == 0)
            }
            // The camera is moved (remounted at the Grand-Place) and its range widened.
            let wider = try registry(feature("pz5339-street-0001", lat: 50.84675, lon: 4.35245, range: 140), in: data)
            let byOperator = try await vigil("cameras", "update", wider, "--data", data.path, "--agency", "pz-5339", "--user", "pz.op")
            #expect(byOperator.status != 0 && byOperator.stderr.contains("role_required"), "\(byOperator.stderr)")
            let byOther = try await vigil("cameras", "update", wider, "--data", data.path, "--agency", "pz-5340")
            #expect(byOther.status != 0 && byOther.stderr.contains("not_owner"), "\(byOther.stderr)")
            let badMask = try registry(feature("pz5339-street-0001", lat: 50.7965016, lon: 4.3992992, masks: "[[[0,0],[1,1],[1,0],[0,1]]]"), in: data)
            let masked = try await vigil("cameras", "update", badMask, "--data", data.path, "--agency", "pz-5339", "--user", "pz.admin")
            #expect(masked.status != 0 && masked.stderr.contains("mask_invalid"), "\(masked.stderr)")
            let updated = try await vigil("cameras", "update", wider, "--data", data.path, "--agency", "pz-5339", "--user", "pz.admin")
            #expect(updated.status == 0, "\(updated.stderr)")

            // The running server uses the new version at once, and drops the retired camera.
            let retired = try await vigil("cameras", "retire", "pz5339-street-0002", "--reason", "mast taken down",
                                          "--data", data.path, "--agency", "pz-5339")
            #expect(retired.status == 0, "\(retired.stderr)")
            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                         "--data", data.path, "--agency", "pz-5339", "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            let shown = try await vigil("incident", "show", "\(id)", "--data", data.path, "--agency", "pz-5339", "--json")
            let ids = (try json(shown.stdout)["cameras"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(ids.contains("pz5339-street-0001"), "\(ids)")
            let nearOld = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.7973,4.3942", "--radius", "400",
                                          "--data", data.path, "--agency", "pz-5339", "--json")
            let oldId = try #require((try json(nearOld.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            let oldShown = try await vigil("incident", "show", "\(oldId)", "--data", data.path, "--agency", "pz-5339", "--json")
            let oldIds = (try json(oldShown.stdout)["cameras"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            #expect(!oldIds.contains("pz5339-street-0001") && !oldIds.contains("pz5339-street-0002") && !oldIds.isEmpty, "\(oldIds)")

            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let update = try #require(records.first { $0["action"] as? String == "camera.updated" })
            #expect(update["user"] as? String == "pz.admin" && update["cameras"] as? [String] == ["pz5339-street-0001"])
            #expect((update["details"] as? [String: Any])?["fields"] as? String == "position,range_m")
            let retirement = try #require(records.first { $0["action"] as? String == "camera.retired" })
            #expect(retirement["reason"] as? String == "mast taken down" && retirement["cameras"] as? [String] == ["pz5339-street-0002"])
        }
    }
}

/// The promises made to camera owners about keys, text and the audit log, tried through the
/// public interfaces.
@Suite("Owners' trust: keys, text and the log", .serialized, .timeLimit(.minutes(2)))
struct OwnersTrustKeysAndLogTests {
    /// A second server on a data folder in use exits with a clear error and leaves the first one's
    /// `server.json` in place.
    @Test func oneDataFolderServesOneServer() async throws {
        try await withServer { data, _ in
            let serverFile = data.appendingPathComponent("server.json")
            let before = try Data(contentsOf: serverFile)
            let second = try await vigil("serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0",
                                         "--media-port", "0", "--http-port", "0", "--console-port", "0")
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

    /// A client holding `certificate` that stays connected while its key is withdrawn
    /// (`Tests/python/withdrawn_key.py`); `withdraw` runs once it is subscribed to `topics`.
    private func withdrawnWhileConnected(
        _ data: URL, certificate: String, topics: [String], withdraw: () async throws -> Void
    ) async throws -> (replies: [[String: Any]?], fresh: [String: Any]?, events: [[String: Any]]) {
        let signal = data.appendingPathComponent("withdrawn-\(UUID().uuidString)")
        let client = try await RunningProcess(python, [
            repositoryRoot.appendingPathComponent("Tests/python/withdrawn_key.py").path, data.appendingPathComponent("server.json").path,
            data.appendingPathComponent("keys/server.key").path, data.appendingPathComponent(certificate).path, signal.path,
        ] + topics)
        try await client.waitForStandardError(containing: "subscribed")
        try await withdraw()
        try Data().write(to: signal)
        #expect(try await client.waitForExit() == 0, "\(client.standardError)")
        while !client.outputEnded { try await Task.sleep(for: .milliseconds(10)) }
        let result = try json(client.lines.joined(separator: "\n"))
        let replies = (result["replies"] as? [Any] ?? []).map { $0 as? [String: Any] }
        return (replies, result["fresh"] as? [String: Any], result["events"] as? [[String: Any]] ?? [])
    }

    /// The audit actions an auditor's audit-channel events carry.
    private func auditActions(_ events: [[String: Any]]) -> [String] {
        events.compactMap { ((($0["event"] as? [String: Any])?["body"] as? [String: Any])?["record"] as? [String: Any])?["action"] as? String }
    }

    /// A suspended user's key is refused on the connection it already has (requests and
    /// subscriptions) and on any new one, at once; reinstated, it works again; removed, never.
    @Test func aSuspendedUserIsCutOffAtOnce() async throws {
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "cc.auditor", "--name", "C. Janssens", "--badge", "AUD-4", "--role", "auditor",
                                    "--data", data.path).status == 0)
            let seen = try await withdrawnWhileConnected(data, certificate: "keys/users/cc.auditor.key_secret", topics: ["audit/"]) {
                #expect(try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "100", "--data", data.path).status == 0)
                try await Task.sleep(for: .milliseconds(500))
                let suspended = try await vigil("user", "suspend", "cc.auditor", "--reason", "badge reported stolen", "--data", data.path)
                #expect(suspended.status == 0, "\(suspended.stderr)")
                #expect(try await vigil("incident", "open", "--kind", "fire", "--at", "50.85,4.36", "--radius", "100", "--data", data.path).status == 0)
            }
            #expect((seen.replies.first??["result"] as? [String: Any])?["user"] as? String == "cc.auditor")
            #expect(seen.replies.count == 2 && seen.replies[1].flatMap(errorCode) == "credentials_revoked", "\(seen.replies)")
            #expect(seen.fresh == nil, "a new connection with the key is refused by ZAP")
            let actions = auditActions(seen.events)
            #expect(actions.filter { $0 == "incident.opened" }.count == 1 && !actions.contains("user.suspended"),
                    "nothing from the suspension on reaches the suspended auditor: \(actions)")

            // Reinstated, the same key works again; removed, it is forgotten for good.
            #expect(try await vigil("user", "reinstate", "cc.auditor", "--reason", "badge found", "--data", data.path).status == 0)
            let back = try await BusSession.run(data, as: "keys/users/cc.auditor.key_secret", requests: [["op": "session.identity"]])
            #expect((back.replies.first?["result"] as? [String: Any])?["user"] as? String == "cc.auditor", "\(back.replies)")
            #expect(try await vigil("user", "remove", "cc.auditor", "--reason", "left the service", "--data", data.path).status == 0)
            let again = try await vigil("user", "reinstate", "cc.auditor", "--reason", "try", "--data", data.path)
            #expect(again.status != 0 && again.stderr.contains("user_removed"), "\(again.stderr)")
            let other = try await vigil("user", "suspend", "cc.auditor", "--reason", "try", "--data", data.path, "--agency", "pz-5339")
            #expect(other.status != 0 && other.stderr.contains("user_unknown"), "an agency withdraws its own users only: \(other.stderr)")
            let noReason = try await vigil("user", "suspend", "cc.auditor", "--reason", " ", "--data", data.path)
            #expect(noReason.status != 0 && noReason.stderr.contains("reason_required"), "\(noReason.stderr)")

            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let withdrawals = records.filter { ($0["details"] as? [String: Any])?["subject"] as? String == "cc.auditor" }
            #expect(withdrawals.compactMap { $0["action"] as? String } == ["user.suspended", "user.reinstated", "user.removed"])
            #expect(withdrawals.first?["reason"] as? String == "badge reported stolen")
        }
    }

    /// An agency's rotated key: the old one is refused at once (its open connection and any new
    /// one), the new one is let in, and the rotation is audited.
    @Test func aRotatedAgencyKeyIsRefusedAtOnce() async throws {
        try await withServer { data, _ in
            let certificate = "keys/agencies/crisis-centre.key_secret"
            let old = data.appendingPathComponent("old-crisis-centre.key_secret")
            try FileManager.default.copyItem(at: data.appendingPathComponent(certificate), to: old)
            let seen = try await withdrawnWhileConnected(data, certificate: "old-crisis-centre.key_secret", topics: ["cameras/crisis-centre/"]) {
                let rotated = try await vigil("agency", "rotate-key", "--reason", "laptop lost", "--data", data.path, "--json")
                #expect(rotated.status == 0, "\(rotated.stderr)")
            }
            #expect((seen.replies.first??["result"] as? [String: Any])?["agency"] as? String == "crisis-centre")
            #expect(seen.replies.count == 2 && seen.replies[1].flatMap(errorCode) == "credentials_revoked", "\(seen.replies)")
            #expect(seen.fresh == nil)
            // The new certificate, written in the data folder, is let in.
            let now = try await BusSession.run(data, as: certificate, requests: [["op": "session.identity"]])
            #expect((now.replies.first?["result"] as? [String: Any])?["agency"] as? String == "crisis-centre", "\(now.replies)")
            let exported = try await vigil("audit", "export", "--data", data.path)
            #expect(exported.stdout.contains("agency.key-rotated") && exported.stdout.contains("laptop lost"))
        }
    }

    /// The owners' and agencies' new operations answer bad input with a stable code and change
    /// nothing: the agency's key still works afterwards, and no camera was touched.
    @Test func newOperationsRefuseBadInput() async throws {
        try await withServer { data, _ in
            func request(_ op: String, _ body: [String: Any]) -> [String: Any] { ["op": op, "body": body] }
            let reason = "checked by a test"
            let session = try await BusSession.run(data, as: "keys/agencies/pz-5339.key_secret", requests: [
                request("agency.rotate-key", ["public_key": "too-short", "reason": reason]),
                request("agency.rotate-key", ["public_key": String(repeating: "a", count: 40), "reason": " "]),
                request("camera.update", ["type": "Point", "coordinates": [4.35, 50.85]]),
                request("camera.update", ["type": "FeatureCollection", "features": [Any]()]),
                request("camera.retire", ["cameras": [String](), "reason": reason]),
                request("camera.retire", ["cameras": ["stib-albert-01"], "reason": reason]),
                request("user.suspend", ["user": "nobody", "reason": reason]),
                request("thumbnails.start", ["justification": ["reason": "curiosity", "text": "just looking around", "incident": 1]]),
                request("thumbnails.stop", ["incident": "the first"]),
                request("audit.verify", ["checkpoint": ["sequence": "many"]]),
                request("session.identity", [:]),
            ])
            let codes = session.replies.map { errorCode($0) ?? "ok" }
            #expect(codes == [
                "key_invalid", "reason_required", "registry_invalid", "registry_too_large", "cameras_invalid", "not_owner", "user_unknown",
                "reason_invalid", "bad_request", "bad_request", "ok",
            ], "\(session.replies)")
            let exported = try await vigil("audit", "export", "--data", data.path)
            #expect(!exported.stdout.contains("camera.retired") && !exported.stdout.contains("agency.key-rotated"))
        }
    }

    /// The server signs checkpoints of the audit chain and publishes them to owners (and
    /// auditors), one more when it stops; a kept checkpoint proves the log whole, over the bus
    /// and offline, and reveals a log cut short whose own chain still verifies.
    @Test func keptCheckpointsRevealACutLog() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-checkpoints-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let owner = "keys/agencies/bruxelles-mobilite.key_secret"
        func checkpoints(_ events: [[String: Any]]) -> [[String: Any]] {
            events.compactMap { $0["event"] as? [String: Any] }.filter { $0["type"] as? String == "audit.checkpoint" }
        }
        var kept: [String: Any] = [:]
        var final: [String: Any] = [:]
        try await withServer(data: data, arguments: ["--checkpoint-interval", "0.5"]) { data, server in
            #expect(try await vigil("user", "add", "cc.auditor", "--name", "C. Janssens", "--badge", "AUD-4", "--role", "auditor",
                                    "--data", data.path).status == 0)
            let listening = try await BusSession(data, as: owner, topics: ["owner/bruxelles-mobilite/"], linger: 2)
            #expect(try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "100", "--data", data.path).status == 0)
            let received = checkpoints(try await listening.finished().events)
            kept = try #require(received.last, "the owner received no checkpoint")
            let body = try #require(kept["body"] as? [String: Any])
            #expect((body["sequence"] as? Int ?? 0) > 0 && (body["signature"] as? String)?.isEmpty == false)
            let info = try json(String(decoding: try Data(contentsOf: data.appendingPathComponent("server.json")), as: UTF8.self))
            #expect(body["key"] as? String == info["audit_key"] as? String)

            // An auditor checks the log against it over the bus.
            let verified = try await BusSession.run(data, as: "keys/users/cc.auditor.key_secret", requests: [
                ["op": "audit.verify", "body": ["checkpoint": body]],
            ])
            let result = try #require(verified.replies.first?["result"] as? [String: Any], "\(verified.replies)")
            #expect((result["checkpoint"] as? [String: Any])?["holds"] as? Bool == true && result["intact"] as? Bool == true, "\(result)")

            // Stopping, the server signs what it holds last and tells the owners.
            let last = try await BusSession(data, as: owner, topics: ["owner/bruxelles-mobilite/"], linger: 3)
            server.kill(SIGTERM)
            #expect(try await server.waitForExit() == 0)
            final = try #require(checkpoints(try await last.finished().events).last, "no checkpoint at shutdown")
        }
        let file = data.appendingPathComponent("kept-checkpoints.jsonl")
        try (JSONSerialization.data(withJSONObject: kept) + Data("\n".utf8) + JSONSerialization.data(withJSONObject: final)).write(to: file)
        let whole = try await vigil("audit", "verify", "--checkpoint", file.path, "--data", data.path)
        #expect(whole.status == 0 && whole.stdout.contains("holds"), "\(whole.stdout) \(whole.stderr)")
        let entries = try await vigil("audit", "export", "--data", data.path)
        let lastSequence = try #require(try entries.stdout.split(separator: "\n").last.map { try json(String($0))["sequence"] as? Int })
        #expect((final["body"] as? [String: Any])?["sequence"] as? Int == lastSequence, "the shutdown checkpoint covers the whole log")

        // Someone with the file removes the last entries, which the chain alone cannot reveal.
        let cut = try await run(python, ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.executescript("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE sequence > (SELECT MAX(sequence) - 3 FROM audit_log);")
            db.commit()
            """, data.appendingPathComponent("vigil.sqlite").path])
        #expect(cut.status == 0, "\(cut.stderr)")
        #expect(try await vigil("audit", "verify", "--data", data.path).status == 0, "the cut chain is intact on its own")
        let revealed = try await vigil("audit", "verify", "--checkpoint", file.path, "--data", data.path)
        #expect(revealed.status == 1 && revealed.stderr.contains("truncated"), "\(revealed.stdout) \(revealed.stderr)")
    }
}
