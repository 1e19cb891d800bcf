import Foundation
import Glibc
import Testing

/// The operator console: its login and API from an HTTP client, and its page in a real browser
/// (Debian's chromium, headless, driven by Selenium from PyPI; `scripts/setup` installs both).
@Suite("The operator console", .timeLimit(.minutes(3)))
struct ConsoleTests {
    /// Where a test keeps what a person may want to look at afterwards (the console's screenshot).
    static let artefacts = repositoryRoot.appendingPathComponent(".build/test-artefacts")
    /// Selenium, installed by `scripts/setup` beside the build (pip --target), for Debian's Python.
    static let browserEnvironment = ["PYTHONPATH": repositoryRoot.appendingPathComponent(".build/python-packages").path]

    @Test func anOperatorLogsInOpensAnIncidentWatchesATileAndTheOwnersRevocationEndsIt() async throws {
        try await withCameraServer("console", arguments: ["--thumbnail-interval", "0.5", "--segment-seconds", "1"], hevcCamera: true) { data in
            #expect(try await vigil("user", "add", "cc.op", "--name", "Op", "--badge", "B-1", "--role", "operator", "--role", "auditor",
                                    "--data", data.path, "--agency", "crisis-centre").status == 0)
            let browsed = try await run(python, [
                repositoryRoot.appendingPathComponent("Tests/python/console_browser.py").path, vigilBinary.path, data.path, "crisis-centre", "cc.op",
                "pz-5339", "pz5339-sim-01", "pz5339-sim-02", Self.artefacts.path,
            ], environment: Self.browserEnvironment, timeout: .seconds(120))
            #expect(browsed.status == 0, "\(browsed.stdout) \(browsed.stderr.suffix(2000))")
            let seen = try json(browsed.stdout.split(separator: "\n").last.map(String.init) ?? "")
            #expect((seen["logged_in_as"] as? String)?.contains("cc.op, crisis-centre") == true, "\(seen)")
            #expect(seen["cookie_visible_to_script"] as? Bool == false)
            #expect((seen["map_cameras"] as? Int ?? 0) > 0, "\(seen)")
            #expect((seen["incident_cameras"] as? [String])?.contains("pz5339-sim-01") == true, "\(seen)")
            #expect(seen["title_is_text"] as? Bool == true)
            #expect((seen["incident_on_map"] as? Int ?? 0) >= 2, "the circle and the camera: \(seen)")
            #expect((seen["last_change"] as? String)?.hasSuffix(" incident.redrawn") == true, "told of the redraw on its channel: \(seen)")
            #expect(seen["live_indicator"] as? String == "● live", "\(seen)")
            // A decoded picture: the test stream's pattern, not a blank tile.
            let picture = try #require(seen["picture"] as? [String: Any], "\(seen)")
            #expect(picture["width"] as? Int == 320 && (picture["deviation"] as? Double ?? 0) > 10, "\(picture)")
            #expect(seen["still_playing"] as? Bool == true, "\(seen)")
            let hevc = try #require(seen["hevc_tile"] as? [String: Any], "\(seen)")
            #expect((hevc["note"] as? String)?.contains("HEVC: a browser cannot play it. External player: http://") == true && hevc["video"] as? Bool == false
                && hevc["picture"] as? Bool == true, "an H.265 camera's tile says so, with its thumbnail and link: \(hevc)")
            #expect(seen["hevc_socket_status"] as? Int == 415, "the relay refuses H.265 to a browser's socket: \(seen)")
            #expect(seen["thumbnail_width"] as? Int == 320, "a thumbnail tile shows the camera's newest thumbnail: \(seen)")
            let replayed = try #require(seen["replay"] as? [String: Any], "\(seen)")
            #expect(replayed["width"] as? Int == 320 && replayed["label"] as? String != nil, "a tile replays the camera's footage: \(replayed)")
            #expect((seen["watchers"] as? [String])?.contains { $0.contains("cc.op") && $0.contains("pz5339-sim-01 ·") } == true, "\(seen)")
            #expect((seen["watchers"] as? [String])?.contains { $0.contains("cc.op") && $0.contains("pz5339-sim-01 (replay)") } == true, "a replay is told apart: \(seen)")
            #expect(seen["tile_ended"] != nil, "\(seen)")
            #expect(seen["ended_tile_shows_video"] as? Bool == false, "no frozen last picture once the view ended: \(seen)")
            let thumbnailAfter = try #require(seen["thumbnail_after_revocation"] as? [String: Any], "\(seen)")
            #expect(thumbnailAfter["picture"] as? Bool == false && (thumbnailAfter["note"] as? String)?.hasPrefix("No thumbnail now") == true,
                    "a revoked camera's thumbnail tile shows nothing more: \(thumbnailAfter)")
            #expect(seen["view_changes_told"] as? Int ?? 0 >= 2, "the page is told of the views it started: \(seen)")
            #expect((seen["chain"] as? String)?.hasPrefix("Chain intact") == true, "\(seen)")
            #expect(seen["redrawn_corners"] as? Int == 5, "a perimeter of four corners, closed: \(seen)")
            let dialog = try #require(seen["march_dialog"] as? [String: Any], "\(seen)")
            #expect((dialog["where"] as? String)?.hasPrefix("A route of 4 points, ") == true && dialog["radius_hidden"] as? Bool == true
                && dialog["kind"] as? String == "demonstration", "\(dialog)")
            let march = try #require(seen["march"] as? [String: Any], "\(seen)")
            #expect(march["points"] as? Int == 4 && march["kind"] as? String == "demonstration", "the route as clicked: \(march)")
            #expect(abs((march["head"] as? Double ?? 0) - 40) < 0.5 && march["tail"] as? Double == 0, "\(march)")
            #expect((march["drawn"] as? Int ?? 0) >= 4, "the route, the occupied stretch, the head and the tail: \(march)")
            // The window's settings as filled in, the others the server's defaults, and shown.
            let settings = try #require(march["settings"] as? [String: Any], "\(march)")
            #expect(settings["ahead_meters"] as? Double == 450 && settings["limit"] as? Int == 12 && settings["behind_meters"] as? Double == 200
                && settings["corridor_width_meters"] as? Double == 60 && settings["ahead_seconds"] == nil, "\(settings)")
            #expect((march["facts"] as? String)?.contains("window 450 m ahead, 200 m behind, 60 m corridor, at most 12 cameras") == true, "\(march)")
            let moved = try #require(seen["march_after_tail"] as? [String: Any], "\(seen)")
            let (head, tail) = (moved["head"] as? Double ?? 0, moved["tail"] as? Double ?? 0)
            #expect(abs(head - 40) < 0.5 && tail > 0 && tail <= head, "the tail moved onto the route behind the head, the head kept: \(moved)")
            #expect(FileManager.default.fileExists(atPath: Self.artefacts.appendingPathComponent("console.png").path))
            #expect((seen["unknown_agency"] as? String)?.hasPrefix("agency_unknown") == true, "\(seen["unknown_agency"] ?? "")")
            #expect((seen["participants_facts"] as? String)?.contains("with siamu") == true, "\(seen["participants_facts"] ?? "")")
            // A group split off the march: a march of its own, the march's child.
            let split = try #require(seen["split"] as? [String: Any], "\(seen)")
            let marchID = try #require(seen["march_id"] as? Int)
            #expect((seen["split_dialog"] as? String)?.hasSuffix("a group split off #\(marchID)") == true, "\(seen["split_dialog"] ?? "")")
            #expect(split["parent"] as? Int == marchID && split["kind"] as? String == "demonstration"
                && (split["facts"] as? String)?.contains("split off #\(marchID)") == true, "\(split)")
            let splitSettings = try #require(split["settings"] as? [String: Any], "\(split)")
            #expect(splitSettings["ahead_meters"] as? Double == 450 && splitSettings["limit"] as? Int == 12, "the group keeps the march's window: \(splitSettings)")
            let splitID = try #require(seen["split_id"] as? Int)
            #expect((seen["march_facts"] as? String)?.contains("groups split off: #\(splitID)") == true, "\(seen["march_facts"] ?? "")")
            // Every incident is on the map: those not selected as markers, one of which chooses the first again.
            let chosen = try #require(seen["chosen_from_map"] as? [String: Any], "\(seen)")
            #expect(chosen["selected"] as? Int == seen["first_incident"] as? Int && chosen["markers"] as? String == "2", "\(chosen)")

            // What the console did is in the audit log as the user's, marked as coming from it.
            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let opened = try #require(records.first { $0["action"] as? String == "incident.opened" }, "\(records.map { $0["action"] })")
            #expect(opened["source"] as? String == "console" && opened["agency"] as? String == "crisis-centre", "\(opened)")
            let replayStarted = records.first { $0["action"] as? String == "view.started" && ($0["details"] as? [String: String])?["mode"] == "playback" }
            #expect(replayStarted?["source"] as? String == "console" && replayStarted?["footage_from"] != nil, "the replay decided as a playback: \(String(describing: replayStarted))")
            let viewed = try #require(records.first { $0["action"] as? String == "view.started" })
            #expect(viewed["source"] as? String == "console" && viewed["user"] as? String == "cc.op", "\(viewed)")
            #expect(viewed["justification"] as? String == "Following the crowd from the crisis room")
            #expect(records.contains { $0["action"] as? String == "console.code.issued" && $0["user"] as? String == "cc.op" })
            #expect(records.contains { $0["action"] as? String == "thumbnails.started" && $0["source"] as? String == "console" })
        }
    }
}

/// An owner's administrator in the crisis room shares its cameras for one incident from the
/// console and takes them back; an operator of the owner is offered neither.
@Suite("The operator console: an owner's sharing", .timeLimit(.minutes(2)))
struct ConsoleSharingTests {
    @Test func anOwnersAdministratorSharesItsCamerasForAnIncidentAndTakesThemBack() async throws {
        try await withCameraServer("console-sharing") { data in
            for (user, role, agency) in [("pz.admin", "owner-admin", "pz-5339"), ("pz.op", "operator", "pz-5339"), ("siamu.op", "operator", "siamu")] {
                #expect(try await vigil("user", "add", user, "--name", "U", "--badge", "B-\(user)", "--role", role,
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            // A public-order incident at the camera, which the fire service joins: its fire-only grant does not hold here.
            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                         "--participant", "siamu", "--data", data.path, "--agency", "pz-5339", "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            let browsed = try await run(python, [
                repositoryRoot.appendingPathComponent("Tests/python/console_sharing.py").path, vigilBinary.path, data.path, "pz-5339", "pz.admin", "pz.op",
                "siamu", "siamu.op", "pz5339-sim-01", "\(id)", ConsoleTests.artefacts.path,
            ], environment: ConsoleTests.browserEnvironment, timeout: .seconds(90))
            #expect(browsed.status == 0, "\(browsed.stdout) \(browsed.stderr.suffix(2000))")
            let seen = try json(browsed.stdout.split(separator: "\n").last.map(String.init) ?? "")
            #expect((seen["before"] as? String)?.hasPrefix("denied") == true, "\(seen)")
            #expect(seen["share_offered"] as? Bool == true, "\(seen)")
            let dialog = try #require(seen["dialog"] as? [String: Any], "\(seen)")
            #expect(dialog["offered"] as? [String] == ["siamu"] && (dialog["what"] as? String)?.contains("only under it") == true, "\(dialog)")
            let shared = try #require(seen["shared"] as? [String: Any], "\(seen)")
            let grant = try #require(shared["id"] as? String)
            #expect((shared["text"] as? String)?.hasPrefix("pz-5339 → siamu: live, every camera, under incident #\(id) only") == true
                && shared["revocable"] as? Bool == true, "\(shared)")
            #expect(seen["after_sharing"] as? String == "allowed under \(grant)", "\(seen)")
            let revoked = try #require(seen["revoked"] as? [String: Any], "\(seen)")
            #expect(revoked["ended"] as? Bool == true && revoked["revocable"] as? Bool == false && (revoked["text"] as? String)?.contains("(revoked ") == true, "\(revoked)")
            #expect((seen["after_revoking"] as? String)?.hasPrefix("denied") == true, "\(seen)")
            #expect(seen["operator_share_offered"] as? Bool == false && (seen["operator_revocable"] as? [String])?.isEmpty == true, "\(seen)")
            #expect((seen["console_errors"] as? [String])?.isEmpty == true, "\(seen)")

            // Recorded as the administrator's, the reason given on the page with the revocation.
            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let acts = records.filter { $0["grant"] as? String == grant && $0["source"] as? String == "console" }
                .map { "\($0["action"] ?? "") \($0["user"] ?? "-") \($0["reason"] ?? "-")" }
            #expect(acts.contains("grant.created pz.admin Scene of the fire, for the fire service") && acts.contains("grant.revoked pz.admin The fire is out"), "\(acts)")
        }
    }
}

/// The console's HTTP API at its boundary (`Tests/python/console_api.py`, the standard library only).
@Suite("The operator console's boundary", .timeLimit(.minutes(1)))
struct ConsoleBoundaryTests {
    @Test func badCodesForgedRequestsAndSuspendedUsersGetClearErrorsAndNothing() async throws {
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "cc.op", "--name", "Op", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "crisis-centre").status == 0)
            let checked = try await run(python, [repositoryRoot.appendingPathComponent("Tests/python/console_api.py").path, vigilBinary.path, data.path,
                                                 "crisis-centre", "cc.op"])
            #expect(checked.status == 0, "\(checked.stderr)")
            let seen = try json(checked.stdout)
            func answer(_ situation: String) -> [String] { (seen[situation] as? [Any])?.map { "\($0)" } ?? [] }
            #expect(answer("unknown code") == ["401", "login_code_invalid"])
            #expect(answer("no session") == ["401", "session_required"])
            #expect(answer("session before login") == ["401", "session_required"])
            #expect(answer("login as a form") == ["403", "csrf_invalid"], "a form of another site cannot log a browser in")
            #expect(answer("login") == ["200", "ok"])
            #expect(answer("the same code again") == ["401", "login_code_invalid"], "a code opens one session")
            #expect(answer("no csrf token") == ["403", "csrf_invalid"])
            #expect(answer("another site's page") == ["403", "csrf_invalid"])
            #expect(answer("an operation not passed") == ["403", "operation_not_allowed"])
            #expect(answer("broken json") == ["400", "request_invalid"])
            #expect(answer("a bus error passes through") == ["200", "radius_invalid"] && seen["the bus's code"] as? String == "radius_invalid")
            #expect(answer("a list") == ["200", "ok"])
            #expect(answer("outside leaflet's folder").first == "404")
            #expect(answer("an unknown basemap") == ["404", "request_invalid"])
            #expect(answer("after the user's suspension") == ["401", "session_required"], "a suspended user's session ends at once")

            // An agency's own key (a system, not a person) gets no code.
            let asAgency = try await BusSession.run(data, as: "keys/agencies/crisis-centre.key_secret", requests: [["op": "console.code", "body": [:]]])
            #expect(asAgency.replies.first.flatMap(errorCode) == "named_user_required", "\(asAgency.replies)")
        }
    }
}

/// The console's stream of changes (`Tests/python/console_events.py`, the standard library only).
@Suite("The console's stream of changes", .timeLimit(.minutes(2)))
struct ConsoleEventsTests {
    static let script = repositoryRoot.appendingPathComponent("Tests/python/console_events.py").path

    @Test func aPageIsToldOfItsAgencysChangesOnlyAndItsStreamEndsWithItsSession() async throws {
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "cc.op", "--name", "Op", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "crisis-centre").status == 0)
            let checked = try await run(python, [Self.script, vigilBinary.path, data.path, "crisis-centre", "cc.op", "siamu"])
            #expect(checked.status == 0, "\(checked.stderr)")
            let seen = try json(checked.stdout)
            #expect((seen["no session"] as? [Any])?.map { "\($0)" } == ["401", "session_required"], "\(seen)")
            #expect((seen["stream"] as? [Any])?.map { "\($0)" } == ["200", "text/event-stream; charset=utf-8"], "\(seen)")
            let changes = try #require(seen["changes"] as? [[String: Any]], "\(seen)")
            #expect(changes.map { $0["type"] as? String } == ["incident.joined", "incident.opened"], "\(changes)")
            #expect(changes.first?["channel"] as? String == "incidents/crisis-centre", "\(changes)")
            #expect(changes.allSatisfy { Set($0.keys) == ["channel", "seq", "type"] }, "that a change happened, never what: \(changes)")
            #expect(seen["other agency's incident told"] as? Bool == false, "\(seen)")
            #expect(seen["first after four more"] as? [String] == ["ended: replaced", "end"], "a session's oldest stream ends beyond four: \(seen)")
            #expect(seen["after the suspension"] as? [String] == ["ended: session_required", "end"], "\(seen)")
        }
    }

    @Test func anOpenStreamDoesNotHoldUpTheServersShutdown() async throws {
        try await withServer { data, server in
            #expect(try await vigil("user", "add", "cc.op", "--name", "Op", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "crisis-centre").status == 0)
            let page = try await RunningProcess(python, [Self.script, vigilBinary.path, data.path, "crisis-centre", "cc.op", "siamu", "--hold"])
            defer { page.kill(SIGKILL) }
            let holding = try await page.waitForLines(1)
            #expect(holding.first == #"{"holding": 200}"#, "\(holding) \(page.standardError)")
            server.kill(SIGTERM)
            // Well within the stream's 15 s keep-alive: the stream ends with the server.
            #expect(try await server.waitForExit(timeout: .seconds(10)) == 0, "\(server.standardError.suffix(500))")
            #expect(try await page.waitForExit(timeout: .seconds(10)) == 0)
            #expect(page.lines.last == #"{"ended_with": "end", "events": ["end"]}"#, "\(page.lines)")
        }
    }
}

/// A console that cannot listen stops the server, which says why, rather than run without it.
@Suite("The operator console's port", .timeLimit(.minutes(1)))
struct ConsolePortTests {
    @Test func aTakenConsolePortStopsTheServerWithTheReason() async throws {
        let taken = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(taken) }
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(taken, $0, length) == 0 && listen(taken, 1) == 0 && getsockname(taken, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-console-port-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let served = try await vigil("serve", "--data", folder.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0", "--media-port", "0",
                                     "--http-port", "0", "--console-port", "\(port)")
        #expect(served.status != 0 && served.stderr.contains("Address already in use") && served.stdout.isEmpty, "\(served.status) \(served.stderr.suffix(300))")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("server.json").path), "no ready server is announced")
    }
}

/// What an agency takes part in, on the bus: `incident.list`, and its `incidents/AGENCY/` channel
/// announcing incidents it joins and leaves (what the console's list is made of).
@Suite("Incidents an agency takes part in", .timeLimit(.minutes(1)))
struct IncidentListTests {
    @Test func anAgencyListsAndIsToldOfTheIncidentsItTakesPartInAndNoOther() async throws {
        try await withServer { data, _ in
            // The fire service listens on its own announcements, and (refused) on the crisis centre's.
            let listener = try await BusSession(data, as: "keys/agencies/siamu.key_secret", topics: ["incidents/siamu/", "incidents/crisis-centre/"], linger: 60, until: "incident.left")
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8453,4.3571", "--radius", "100", "--participant", "siamu",
                                         "--data", data.path, "--agency", "crisis-centre", "--json")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int, "\(opened.stderr)")
            let other = try await vigil("incident", "open", "--kind", "traffic", "--at", "50.85,4.36", "--radius", "100",
                                        "--data", data.path, "--agency", "crisis-centre", "--json")
            #expect(other.status == 0, "\(other.stderr)")
            let listed = try await BusSession.run(data, as: "keys/agencies/siamu.key_secret", requests: [["op": "incident.list", "body": [:]]])
            let incidents = try #require((listed.replies.first?["result"] as? [String: Any])?["incidents"] as? [[String: Any]], "\(listed.replies)")
            #expect(incidents.map { $0["id"] as? Int } == [id], "only the incident it takes part in: \(incidents)")
            #expect(try await vigil("incident", "close", "\(id)", "--data", data.path, "--agency", "crisis-centre").status == 0)

            let events = try await listener.finished().events
            let announced = events.compactMap { $0["event"] as? [String: Any] }
            #expect(announced.map { $0["type"] as? String } == ["incident.joined", "incident.left"], "\(events)")
            #expect(events.allSatisfy { $0["topic"] as? String == "incidents/siamu/" }, "another agency's channel is refused: \(events)")
            let joined = try #require(announced.first?["body"] as? [String: Any])
            #expect((joined["incident"] as? [String: Any])?["id"] as? Int == id)
            #expect((announced.last?["body"] as? [String: Any])?["status"] as? String == "closed")
        }
    }
}
