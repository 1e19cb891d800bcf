import Foundation
import Testing

@Suite("vigil end to end", .serialized, .timeLimit(.minutes(2)))
struct SliceTests {
    @Test func openFollowClose() async throws {
        try await withServer { data, _ in
            // Police zone 5339 opens an incident on its own territory; the crisis centre and the fire service take part.
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "300",
                                         "--participant", "crisis-centre", "--participant", "siamu", "--data", data.path, "--agency", "pz-5339", "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let snapshot = try json(opened.stdout)
            let incident = try #require(snapshot["incident"] as? [String: Any])
            let id = try #require(incident["id"] as? Int)
            #expect(incident["lead_agency"] as? String == "pz-5339")
            let cameras = try #require(snapshot["cameras"] as? [[String: Any]])
            #expect(cameras.count > 10)
            #expect(cameras.allSatisfy { ($0["distance_meters"] as? Double ?? 999) <= 300 })
            // Nothing is said of the cameras an agency may not see, not even how many there are.
            #expect(snapshot["hidden_cameras"] == nil)

            // Each agency's copy lists only the cameras a grant lets it watch: the fire service has
            // none here (no owner shares street or station cameras with it), the crisis centre the
            // street cameras that zone 5339 shares with it at all times.
            let fire = try json(try await vigil("incident", "show", "\(id)", "--data", data.path, "--agency", "siamu", "--json").stdout)
            #expect((fire["cameras"] as? [Any])?.isEmpty == true)
            #expect(fire["hidden_cameras"] == nil)

            let follower = try await RunningProcess(vigilBinary, ["follow", "\(id)", "--data", data.path, "--agency", "crisis-centre"])
            defer { follower.kill(SIGKILL) }
            let first = try json(try await follower.waitForLines(1)[0])
            #expect(first["type"] as? String == "snapshot")
            #expect(first["seq"] as? Int == 1)
            let seen = try #require(first["cameras"] as? [[String: Any]])
            #expect(!seen.isEmpty && seen.count < cameras.count)
            #expect(seen.allSatisfy { ($0["owner"] as? String)?.hasPrefix("pz-") == true && $0["kind"] as? String == "street" })
            // The follower prints its snapshot only once its subscription is live (it has seen a heartbeat),
            // so the close below reaches it as a live update.

            let notLead = try await vigil("incident", "close", "\(id)", "--data", data.path, "--agency", "crisis-centre")
            #expect(notLead.status == 1 && notLead.stderr.contains("not_lead_agency"), "\(notLead.stderr)")
            let closed = try await vigil("incident", "close", "\(id)", "--data", data.path, "--agency", "pz-5339")
            #expect(closed.status == 0, "\(closed.stderr)")
            #expect(try await follower.waitForExit() == 0)
            let lines = follower.lines
            let last = try json(try #require(lines.last))
            #expect(last["type"] as? String == "incident.closed")
            #expect(last["seq"] as? Int == 2)
            let body = try #require(last["body"] as? [String: Any])
            // The closing removes every camera the follower had.
            let removed = Set(try #require(body["removed"] as? [String]))
            #expect(Set(seen.compactMap { $0["id"] as? String }).isSubset(of: removed))
        }
    }

    /// Revoking a grant takes its cameras out of the grantee's copy of every channel at once, in sequence.
    @Test func aRevokedGrantEmptiesTheFollowersCopy() async throws {
        try await withServer { data, _ in
            let opened = try await vigil("incident", "open", "--kind", "traffic", "--at", "50.8467,4.3525", "--radius", "250",
                                         "--participant", "crisis-centre", "--data", data.path, "--agency", "pz-5339", "--json")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            let follower = try await RunningProcess(vigilBinary, ["follow", "\(id)", "--data", data.path, "--agency", "crisis-centre"])
            defer { follower.kill(SIGKILL) }
            let seen = try #require(try json(try await follower.waitForLines(1)[0])["cameras"] as? [[String: Any]]).compactMap { $0["id"] as? String }
            #expect(!seen.isEmpty)

            let grants = try JSONSerialization.jsonObject(with: Data(try await vigil("grant", "list", "--data", data.path, "--agency", "pz-5339", "--json").stdout.utf8))
            let grant = try #require((grants as? [[String: Any]])?.first { $0["agency"] as? String == "crisis-centre" }?["id"] as? String)
            let revoked = try await vigil("grant", "revoke", grant, "--reason", "agreement suspended", "--data", data.path, "--agency", "pz-5339")
            #expect(revoked.status == 0, "\(revoked.stderr)")

            let event = try json(try await follower.waitForLines(2)[1])
            #expect(event["type"] as? String == "incident.access-changed" && event["seq"] as? Int == 2)
            let body = try #require(event["body"] as? [String: Any])
            #expect(Set(body["removed"] as? [String] ?? []).isSuperset(of: seen))
            #expect((body["added"] as? [Any])?.isEmpty == true)
            let after = try json(try await vigil("incident", "show", "\(id)", "--data", data.path, "--agency", "crisis-centre", "--json").stdout)
            #expect((after["cameras"] as? [Any])?.isEmpty == true)
        }
    }

    /// A follower that applies only the deltas of `incident.moved` events ends with the server's own selection.
    @Test func aMarchIsFollowedThroughItsDeltas() async throws {
        try await withServer { data, _ in
            let routes = repositoryRoot.appendingPathComponent("fixtures/sources/brussels_demo_routes_osm2013.geojson").path
            let opened = try await vigil("incident", "open", "--kind", "demonstration", "--route", routes, "--feature", "2",
                                         "--head", "1000", "--tail", "600", "--participant", "crisis-centre", "--data", data.path, "--agency", "pz-5341", "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)

            let follower = try await RunningProcess(vigilBinary, ["follow", "\(id)", "--data", data.path, "--agency", "crisis-centre"])
            defer { follower.kill(SIGKILL) }
            let snapshot = try json(try await follower.waitForLines(1)[0])
            var state: [String: String] = [:]
            for camera in try #require(snapshot["cameras"] as? [[String: Any]]) { state[camera["id"] as! String] = camera["section"] as? String }
            #expect(!state.isEmpty)

            for head in [1_200, 1_450, 1_800] {
                let moved = try await vigil("incident", "move", "\(id)", "--head", "\(head)", "--tail", "\(head - 400)", "--data", data.path, "--agency", "pz-5341")
                #expect(moved.status == 0, "\(moved.stderr)")
            }
            let off = try await vigil("incident", "move", "\(id)", "--head", "50.8500,4.3300", "--tail", "1400", "--data", data.path, "--agency", "pz-5341")
            #expect(off.stdout.contains("head_left_route"))
            let back = try await vigil("incident", "move", "\(id)", "--head", "1900", "--tail", "1500", "--data", data.path, "--agency", "pz-5341")
            #expect(back.stdout.contains("head_back_on_route"))
            let reversed = try await vigil("incident", "move", "\(id)", "--head", "100", "--tail", "900", "--data", data.path, "--agency", "pz-5341")
            #expect(reversed.status == 1 && reversed.stderr.contains("march_invalid"))

            let lines = try await follower.waitForLines(6)
            for line in lines.dropFirst() {
                let event = try json(line)
                #expect(event["type"] as? String == "incident.moved")
                let body = try #require(event["body"] as? [String: Any])
                for removed in body["removed"] as? [String] ?? [] { state[removed] = nil }
                for camera in (body["added"] as? [[String: Any]] ?? []) + (body["relabelled"] as? [[String: Any]] ?? []) {
                    state[camera["id"] as! String] = camera["section"] as? String
                }
            }
            // The follower's state is the crisis centre's copy of the selection.
            let shown = try await vigil("incident", "show", "\(id)", "--data", data.path, "--agency", "crisis-centre", "--json")
            var final: [String: String] = [:]
            for camera in try #require(try json(shown.stdout)["cameras"] as? [[String: Any]]) { final[camera["id"] as! String] = camera["section"] as? String }
            #expect(state == final)
            #expect(Set(final.values).isSuperset(of: ["ahead", "occupied", "behind"]))
        }
    }

    @Test func clientCommandsFailClearlyOnBadInput() async throws {
        try await withServer { data, _ in
            let outOfRange = try await vigil("incident", "open", "--kind", "fire", "--at", "95,4.35", "--radius", "300", "--data", data.path)
            #expect(outOfRange.status != 0)
            #expect(outOfRange.stderr.contains("outside -90...90"))

            let outsideCRS = try await vigil("incident", "open", "--kind", "fire", "--at", "48.8566,2.3522", "--radius", "300", "--data", data.path)
            #expect(outsideCRS.status == 1)
            #expect(outsideCRS.stderr.contains("coordinate_outside_crs"))

            let badRadius = try await vigil("incident", "open", "--kind", "fire", "--at", "50.85,4.35", "--radius=-1", "--data", data.path)
            #expect(badRadius.status == 1)
            #expect(badRadius.stderr.contains("radius_invalid"))

            let badKind = try await vigil("incident", "open", "--kind", "party", "--at", "50.85,4.35", "--radius", "100", "--data", data.path)
            #expect(badKind.stderr.contains("kind_invalid"))

            let unknown = try await vigil("incident", "show", "4242", "--data", data.path)
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("incident_not_found"))

            let noKey = try await vigil("incident", "show", "1", "--data", data.path, "--agency", "martians")
            #expect(noKey.status == 1)
            #expect(noKey.stderr.contains("key_missing"))

            let followUnknown = try await vigil("follow", "4242", "--data", data.path)
            #expect(followUnknown.status == 1)
            #expect(followUnknown.stderr.contains("incident_not_found"))
        }
        let noServer = try await vigil("incident", "show", "1", "--data", "/nonexistent/vigil-data")
        #expect(noServer.status == 1)
        #expect(noServer.stderr.contains("server_not_running"))
    }

    @Test func aServerKilledWithSIGKILLKeepsEveryAcknowledgedChange() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-kill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        var ids: [Int] = []
        try await withServer(data: data) { data, server in
            for (index, kind) in ["fire", "medical", "traffic"].enumerated() {
                let opened = try await vigil("incident", "open", "--kind", kind, "--at", "50.84\(index),4.35", "--radius", "200",
                                             "--data", data.path, "--json")
                #expect(opened.status == 0, "\(opened.stderr)")
                ids.append(try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int))
            }
            #expect(try await vigil("incident", "close", "\(ids[1])", "--data", data.path).status == 0)
            server.kill(SIGKILL)
            _ = try await server.waitForExit()
        }
        // The stale server.json now names a dead server: clients say so instead of hanging.
        let stale = try await vigil("incident", "show", "\(ids[0])", "--data", data.path, "--timeout", "1")
        #expect(stale.stderr.contains("server_unreachable"))

        try await withServer(data: data) { data, _ in
            let statuses = try await ids.asyncMap { id in
                let shown = try await vigil("incident", "show", "\(id)", "--data", data.path, "--json")
                return (try json(shown.stdout)["incident"] as? [String: Any])?["status"] as? String
            }
            #expect(statuses == ["open", "closed", "open"])
            let next = try await vigil("incident", "open", "--kind", "other", "--at", "50.85,4.35", "--radius", "100", "--data", data.path, "--json")
            #expect((try json(next.stdout)["incident"] as? [String: Any])?["id"] as? Int == ids[2] + 1)
        }
    }

    @Test func aPythonClientWithAnUnknownKeyReceivesNothing() async throws {
        try await withServer { data, _ in
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "300", "--data", data.path)
            #expect(opened.status == 0)
            let probe = repositoryRoot.appendingPathComponent("Tests/python/curve_probe.py").path
            let serverInfo = data.appendingPathComponent("server.json").path
            let serverKey = data.appendingPathComponent("keys/server.key").path

            let stranger = try await run(python, [probe, serverInfo, serverKey, "random"])
            #expect(stranger.status == 0, "\(stranger.stderr)")
            let nothing = try json(stranger.stdout)
            #expect((nothing["replies"] as? [Any])?.isEmpty == true)
            #expect((nothing["event_topics"] as? [Any])?.isEmpty == true)

            // A registered agency (its certificate read by pyzmq's own loader) is authenticated, but
            // gets an incident's snapshot only when it takes part, and never the empty-prefix subscription.
            let siamu = [probe, serverInfo, serverKey, data.appendingPathComponent("keys/agencies/siamu.key_secret").path]
            let outsider = try json(try await run(python, siamu).stdout)
            let refusal = try #require((outsider["replies"] as? [[String: Any]])?.first)
            #expect(refusal["ok"] as? Bool == false && refusal["id"] as? String == "probe-1")
            #expect((refusal["error"] as? [String: Any])?["code"] as? String == "not_participant")
            let topics = try #require(outsider["event_topics"] as? [String])
            #expect(!topics.isEmpty && topics.allSatisfy { $0 == "heartbeat/" }, "\(topics)")

            #expect(try await vigil("incident", "update", "1", "--participant", "siamu", "--data", data.path).status == 0)
            let served = try json(try await run(python, siamu).stdout)
            let reply = try #require((served["replies"] as? [[String: Any]])?.first)
            #expect(reply["ok"] as? Bool == true)
            #expect(reply["id"] as? String == "probe-1")
            let exported = try await vigil("audit", "export", "--data", data.path)
            let actions = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            #expect(actions.contains { $0["action"] as? String == "snapshot.refused" && $0["agency"] as? String == "siamu" })
            #expect(actions.contains { $0["action"] as? String == "subscription.refused" && ($0["details"] as? [String: Any])?["topic"] as? String == "" })
        }
    }

    /// Every change and every authentication decision is in the chain; an edit of the SQLite file is found.
    @Test func theAuditLogRecordsAndRevealsTampering() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-audit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        try await withServer(data: data) { data, server in
            #expect(try await vigil("incident", "open", "--kind", "fire", "--at", "50.8453,4.3571", "--radius", "100", "--data", data.path).status == 0)
            #expect(try await vigil("incident", "close", "1", "--data", data.path).status == 0)
            _ = try await run(python, [
                repositoryRoot.appendingPathComponent("Tests/python/curve_probe.py").path, data.appendingPathComponent("server.json").path,
                data.appendingPathComponent("keys/server.key").path, "random",
            ])
            try await server.waitForStandardError(containing: "authentication refused")
            server.kill(SIGTERM)
            _ = try await server.waitForExit()
        }
        let verified = try await vigil("audit", "verify", "--data", data.path)
        #expect(verified.status == 0, "\(verified.stderr)")
        let exported = try await vigil("audit", "export", "--data", data.path)
        let actions = try exported.stdout.split(separator: "\n").map { try json(String($0)) }.compactMap { ($0["record"] as? [String: Any])?["action"] as? String }
        #expect(Set(actions).isSuperset(of: ["auth.accepted", "auth.refused", "incident.opened", "incident.closed"]))

        // Someone with the file removes the triggers and rewrites who opened the incident.
        let tamper = try await run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            db.execute("UPDATE audit_log SET entry = replace(entry, 'crisis-centre', 'nobody') WHERE action = 'incident.opened'")
            db.commit()
            """, data.appendingPathComponent("vigil.sqlite").path])
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let broken = try await vigil("audit", "verify", "--data", data.path)
        #expect(broken.status == 1)
        let opened = actions.firstIndex(of: "incident.opened")! + 1
        #expect(broken.stderr.contains("audit_broken: entry \(opened) is broken"), "\(broken.stderr)")
    }

    /// The fixture agreements decide access over the bus; only the owner revokes, and the revocation is audited.
    @Test func grantsDecideAccessAndOnlyOwnersRevokeThem() async throws {
        try await withServer { data, _ in
            let tunnel = "brumob-w12108126-01"
            let allowed = try await vigil("grant", "check", "--camera", tunnel, "--data", data.path, "--agency", "siamu", "--json")
            #expect(allowed.status == 0, "\(allowed.stderr)")
            let grant = try #require(try json(allowed.stdout)["grant"] as? String)
            let stranger = try await vigil("grant", "check", "--camera", tunnel, "--data", data.path, "--agency", "stib")
            #expect(stranger.status == 3 && stranger.stdout.contains("no_grant"))

            let notOwner = try await vigil("grant", "revoke", grant, "--reason", "test", "--data", data.path, "--agency", "siamu")
            #expect(notOwner.status == 1 && notOwner.stderr.contains("not_owner"))
            let revoked = try await vigil("grant", "revoke", grant, "--reason", "agreement ended", "--data", data.path, "--agency", "bruxelles-mobilite")
            #expect(revoked.status == 0, "\(revoked.stderr)")
            let denied = try await vigil("grant", "check", "--camera", tunnel, "--data", data.path, "--agency", "siamu")
            #expect(denied.status == 3 && denied.stdout.contains("grant_revoked"))

            let badFile = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-bad-grant-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: badFile) }
            try Data(#"{"id": "g", "owner": "stib"}"#.utf8).write(to: badFile)
            let badGrant = try await vigil("grant", "create", badFile.path, "--data", data.path, "--agency", "stib")
            #expect(badGrant.status == 1 && badGrant.stderr.contains("grant_invalid"), "\(badGrant.stderr)")
            let badDate = try await vigil("audit", "export", "--data", data.path, "--from", "yesterday")
            #expect(badDate.status != 0 && badDate.stderr.contains("not an ISO 8601"), "\(badDate.stderr)")

            let export = try await vigil("audit", "export", "--data", data.path)
            let revocations = try export.stdout.split(separator: "\n").map { try json(String($0)) }
                .compactMap { $0["record"] as? [String: Any] }.filter { $0["action"] as? String == "grant.revoked" }
            #expect(revocations.count == 1)
            #expect(revocations.first?["grant"] as? String == grant && revocations.first?["reason"] as? String == "agreement ended")
        }
    }

    @Test func theFixtureGeneratorIsDeterministic() async throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-fixtures-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let generated = try await vigil("fixtures", "generate", "--sources", "fixtures/sources", "--output", output.path)
        #expect(generated.status == 0, "\(generated.stderr)")
        for region in ["brussels", "marseille"] {
            let committed = try Data(contentsOf: repositoryRoot.appendingPathComponent("fixtures/\(region)/cameras.geojson"))
            let again = try Data(contentsOf: output.appendingPathComponent("\(region)/cameras.geojson"))
            #expect(committed == again, "fixtures/\(region)/cameras.geojson differs from a fresh generation")
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
