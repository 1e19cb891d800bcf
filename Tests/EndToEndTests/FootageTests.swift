import Foundation
import Testing

/// Incident recording through the real binary: a camera an incident selects is recorded into
/// segments of real H.264 (with its pre-roll), played back from a past moment with `vigil
/// watch --at` through the decision function and the audit log.
@Suite("Footage: recording and playback", .timeLimit(.minutes(2)))
struct FootageTests {
    private func audit(_ data: URL) async throws -> [[String: Any]] {
        let exported = try await vigil("audit", "export", "--data", data.path)
        return try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
    }

    private func segments(_ data: URL) -> [String] {
        let folder = data.appendingPathComponent("footage/pz5339-sim-01")
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".ts") }.sorted()
    }

    /// An evidence export needs a hold or a legal reference; the package verifies offline with the
    /// server's key, and a copy altered in any way does not.
    private func exportAndVerify(_ data: URL, incident id: Int, from: Date, to: Date) async throws {
        func export(_ extra: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            let result = try await vigil(["export", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--from", from.formatted(.iso8601),
                                          "--to", to.formatted(.iso8601), "--reason", "evidence-preservation", "--text", "For the prosecutor",
                                          "--recipient", "Parquet de Bruxelles", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer",
                                          "--timeout", "60"] + extra)
            return (result.status, result.stdout, result.stderr)
        }
        let baseless = try await export([])
        #expect(baseless.status == 1 && baseless.stderr.contains("export_basis_required"), "\(baseless.stderr)")
        let backwards = try await vigil("export", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--from", to.formatted(.iso8601),
                                        "--to", from.formatted(.iso8601), "--reason", "evidence-preservation", "--text", "Backwards range",
                                        "--legal-reference", "PV 1", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer")
        #expect(backwards.status == 1 && backwards.stderr.contains("export_invalid"), "\(backwards.stderr)")
        let notMarch = try await vigil("incident", "head-passed", "\(id)", "--data", data.path, "--agency", "pz-5339")
        #expect(notMarch.status == 1 && notMarch.stderr.contains("incident_not_march"), "\(notMarch.stderr)")
        let held = try await vigil("hold", "create", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--from", from.addingTimeInterval(-60).formatted(.iso8601),
                                   "--to", to.addingTimeInterval(60).formatted(.iso8601), "--legal-reference", "PV BR.12.L3.000042/2026",
                                   "--data", data.path, "--agency", "pz-5339", "--json", "--timeout", "30")
        #expect(held.status == 0, "\(held.stderr)")
        let hold = try #require(try json(held.stdout)["id"] as? Int)
        let package = data.appendingPathComponent("evidence")
        let exported = try await export(["--hold", "\(hold)", "-o", package.path])
        #expect(exported.status == 0, "\(exported.stderr)")
        let originals = try FileManager.default.contentsOfDirectory(atPath: package.appendingPathComponent("original").path).sorted()
        #expect(!originals.isEmpty)
        // The originals are the recorded segments byte for byte; the viewing copy is H.264 in MP4.
        for file in originals {
            #expect(FileManager.default.contentsEqual(
                atPath: package.appendingPathComponent("original/\(file)").path, andPath: data.appendingPathComponent("footage/pz5339-sim-01/\(file)").path))
        }
        let copy = try await probe(package.appendingPathComponent("viewing-copy.mp4").path)
        #expect(copy.codec == "h264" && copy.frames >= 25 && copy.errors.isEmpty, "\(copy)")

        let verified = try await vigil("export", "verify", package.path, "--data", data.path)
        #expect(verified.status == 0 && verified.stdout.contains("verified"), "\(verified.stdout) \(verified.stderr)")

        // `-o` fetched it over the bus (footage.package); `vigil export fetch` does the same later,
        // for the user who made it only, and never outside the exports folder.
        let exportID = try #require(try json(String(contentsOf: package.appendingPathComponent("manifest.json"), encoding: .utf8))["export"] as? String)
        func fetch(_ id: String, into name: String, _ who: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
            let result = try await vigil(["export", "fetch", id, "-o", data.appendingPathComponent(name).path, "--data", data.path, "--timeout", "30"] + who)
            return (result.status, result.stdout, result.stderr)
        }
        let fetched = try await fetch(exportID, into: "fetched", ["--agency", "pz-5339", "--user", "pz.viewer"])
        #expect(fetched.status == 0, "\(fetched.stderr)")
        let fetchedVerified = try await vigil("export", "verify", data.appendingPathComponent("fetched").path, "--data", data.path)
        #expect(fetchedVerified.status == 0 && fetchedVerified.stdout.contains("verified"), "\(fetchedVerified.stdout) \(fetchedVerified.stderr)")
        for (who, code) in [(["--agency", "pz-5339"], "not_exporter"), (["--agency", "crisis-centre"], "not_exporter")] {
            let refused = try await fetch(exportID, into: "refused-\(UUID().uuidString)", who)
            #expect(refused.status == 1 && refused.stderr.contains(code), "\(who): \(refused.stderr)")
        }
        for id in ["../footage", "E0-nothing", ""] {
            let unknown = try await fetch(id, into: "unknown-\(UUID().uuidString)", ["--agency", "pz-5339", "--user", "pz.viewer"])
            #expect(unknown.status != 0 && (id.isEmpty || unknown.stderr.contains("export_not_found")), "\(id): \(unknown.stderr)")
        }
        // On the bus, a hostile client gets clear errors: a file the package does not list, an offset outside the file.
        let hostile = try await BusSession.run(data, as: "keys/users/pz.viewer.key_secret", requests: [
            ["op": "footage.package", "body": ["export": exportID, "file": "../../vigil.sqlite"]],
            ["op": "footage.package", "body": ["export": exportID, "file": "original/../../../vigil.sqlite"]],
            ["op": "footage.package", "body": ["export": exportID, "file": "manifest.json", "offset": -1]],
            ["op": "footage.package", "body": ["export": exportID, "file": "manifest.json", "offset": 1 << 40]],
            ["op": "footage.package", "body": ["export": exportID]],
        ])
        #expect(hostile.replies.map(errorCode) == ["export_not_found", "export_not_found", "export_invalid", "export_invalid", "bad_request"], "\(hostile.replies)")
        let records = try await audit(data)
        #expect(records.contains { $0["action"] as? String == "evidence.exported" && $0["recipient"] as? String == "Parquet de Bruxelles" })
        #expect(records.filter { $0["action"] as? String == "evidence.fetched" && $0["user"] as? String == "pz.viewer" }.count >= 6,
                "each file of each fetch (manifest, signature, originals, viewing copy), twice")

        // Tampered copies: a changed byte, a file added, a manifest edited.
        func tampered(_ change: (URL) throws -> Void) async throws -> String {
            let copy = data.appendingPathComponent("tampered-\(UUID().uuidString)")
            try FileManager.default.copyItem(at: package, to: copy)
            try change(copy)
            let checked = try await vigil("export", "verify", copy.path, "--data", data.path)
            #expect(checked.status == 1)
            return checked.stderr
        }
        #expect(try await tampered { copy in
            let file = copy.appendingPathComponent("original/\(originals[0])")
            var bytes = try Data(contentsOf: file)
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: file)
        }.contains("evidence_file_altered"))
        #expect(try await tampered { try Data("x".utf8).write(to: $0.appendingPathComponent("original/extra.ts")) }.contains("evidence_file_unlisted"))
        #expect(try await tampered { copy in
            let manifest = copy.appendingPathComponent("manifest.json")
            try String(contentsOf: manifest, encoding: .utf8).replacingOccurrences(of: "pz.viewer", with: "someone.else").write(to: manifest, atomically: true, encoding: .utf8)
        }.contains("evidence_signature_invalid"))
        // Another server's key does not verify it.
        let otherKey = Data((0..<32).map { UInt8($0) })
        let foreign = try await vigil("export", "verify", package.path, "--public-key", otherKey.base64EncodedString())
        #expect(foreign.status == 1 && foreign.stderr.contains("evidence_signature_invalid"), "\(foreign.stderr)")
    }

    @Test func theFootageCommandsRefuseBadInputWithClearErrors() async throws {
        for (arguments, message) in [
            (["serve", "--footage-budget", "0"], "--footage-budget must be more than 0"),
            (["relay", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c", "--segment-seconds", "0"], "--segment-seconds must be 1 to 60"),
            (["export", "--incident", "1", "--camera", "c", "--from", "yesterday", "--to", "2026-12-02T10:00:00Z", "--reason", "r", "--text", "t"],
             "--from 'yesterday' is not an ISO 8601 time"),
            (["export", "verify", "/nonexistent/package", "--public-key", Data(count: 32).base64EncodedString()], "evidence_manifest_invalid"),
            (["export", "verify", "/tmp", "--public-key", "not a key"], "key_missing"),
            (["export", "fetch", "E1-x", "-o", "/tmp"], "-o /tmp exists already"),
            (["watch", "--incident", "1", "--camera", "c", "-o", "x.ts", "--delivery", "pigeon", "--reason", "r", "--text", "t"],
             "The value 'pigeon' is invalid for '--delivery"),
        ] {
            let refused = try await run(vigilBinary, arguments)
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
    }

    @Test func aRelayNodeRecordsTheCamerasItServesAndPlaysThemBackThroughTheServersTicket() async throws {
        // Every camera goes to the node, which records into its own folder and reports its segments.
        try await withCameraServer("footage-node", arguments: ["--relay-max-streams", "0", "--segment-seconds", "1"]) { data in
            for (user, role) in [("pz.viewer", "operator"), ("relay-1", "relay")] {
                #expect(try await vigil("user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role, "--data", data.path,
                                        "--agency", role == "relay" ? "crisis-centre" : "pz-5339").status == 0)
            }
            let info = try json(String(contentsOf: data.appendingPathComponent("server.json"), encoding: .utf8))
            let nodeFolder = data.appendingPathComponent("node-footage")
            let node = try await RunningProcess(vigilBinary, [
                "relay", "--coordinator", try #require(info["command"] as? String), "--server-key", data.appendingPathComponent("keys/server.key").path,
                "--cert", data.appendingPathComponent("keys/users/relay-1.key_secret").path, "--media-port", "0", "--http-port", "0",
                "--footage", nodeFolder.path, "--segment-seconds", "1",
            ])
            defer { node.kill(SIGKILL) }
            _ = try await node.waitForLines(1)
            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                         "--data", data.path, "--agency", "pz-5339", "--json", "--timeout", "30")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)

            // The node writes the segments; the server's catalog knows them, as the node's.
            func catalogued() async throws -> [String] {
                let read = try await run(python, ["-c", """
                    import sqlite3, sys
                    db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
                    for (file,) in db.execute("SELECT file FROM footage_segments WHERE relay = 'relay-1' ORDER BY started_at"):
                        print(file)
                    """, data.appendingPathComponent("vigil.sqlite").path])
                return read.stdout.split(separator: "\n").map(String.init)
            }
            let deadline = ContinuousClock.now + .seconds(40)
            var files: [String] = []
            while files.count < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(300))
                files = try await catalogued()
            }
            #expect(files.count >= 3, "\(files)")
            for file in files.prefix(3) {
                #expect(FileManager.default.fileExists(atPath: nodeFolder.appendingPathComponent(file).path), "\(file) is on the node")
            }
            #expect(!FileManager.default.fileExists(atPath: data.appendingPathComponent("footage/pz5339-sim-01").path), "the server's relay recorded nothing")

            // A playback of it: the server decides and sends the viewer to the node with a ticket for that moment.
            let name = try #require(files.first?.split(separator: "/").last)
            let start = try #require(Double(name.dropLast(3)))
            let moment = Date(timeIntervalSince1970: start / 1000 + 2)
            let output = data.appendingPathComponent("node-played.ts").path
            let played = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "-o", output,
                                         "--seconds", "3", "--reason", "criminal-investigation", "--text", "Recorded on the node",
                                         "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(played.status == 0 && played.stderr.contains("served by relay node relay-1"), "\(played.stderr)")
            let probed = try await probe(output)
            #expect(probed.codec == "h264" && probed.frames >= 25 && probed.errors.isEmpty, "\(probed)")
            // The same as a link: on the node's HTTP port, with the server's ticket for that moment as
            // its token; the node plays the footage it holds from the same keyframe.
            let linked = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "--link",
                                         "--reason", "criminal-investigation", "--text", "Recorded on the node",
                                         "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(linked.status == 0 && linked.stderr.contains("served by relay node relay-1"), "\(linked.stderr)")
            let fromLink = data.appendingPathComponent("node-linked.ts").path
            let fetched = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
                "-hide_banner", "-loglevel", "error", "-y", "-i", try #require(linked.stdout.split(separator: "\n").first.map(String.init)),
                "-t", "2", "-c", "copy", "-f", "mpegts", fromLink,
            ])
            #expect(fetched.status == 0, "\(fetched.stderr)")
            let (fromFile, fromTheLink) = (try await firstPictureHash(output), try await firstPictureHash(fromLink))
            #expect(!fromFile.isEmpty && fromTheLink == fromFile, "the node's link plays its footage from the same keyframe: \(fromTheLink) \(fromFile)")

            // An export of it: the server fetches the node's segments byte for byte into a package it signs.
            let package = data.appendingPathComponent("node-evidence")
            let exported = try await vigil("export", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--from", moment.formatted(.iso8601),
                                           "--to", moment.addingTimeInterval(1).formatted(.iso8601), "--reason", "evidence-preservation",
                                           "--text", "Recorded on the node", "--legal-reference", "PV 2026/991", "--data", data.path,
                                           "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "60", "-o", package.path)
            #expect(exported.status == 0, "\(exported.stderr)")
            let originals = (try? FileManager.default.contentsOfDirectory(atPath: package.appendingPathComponent("original").path)) ?? []
            #expect(!originals.isEmpty)
            for file in originals {
                #expect(FileManager.default.contentsEqual(
                    atPath: package.appendingPathComponent("original/\(file)").path, andPath: nodeFolder.appendingPathComponent("pz5339-sim-01/\(file)").path))
            }
            let verified = try await vigil("export", "verify", package.path, "--data", data.path)
            #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")

            // The owner masks the right half after the recording: the node plays its footage with
            // the mask the server's ticket carries (it may no longer carry the camera itself). The
            // mask has the most points the registry admits (256): a link's address carries them all.
            let leftEdge = (1...252).map { "[0.5,\(String(format: "%.4f", 1 - Double($0) * 0.0039))]" }
            try await updateSimulatedCameraMasks(data, masks: "[[[0.5,0],[1,0],[1,1],[0.5,1]," + leftEdge.joined(separator: ",") + "]]")
            let remasked = data.appendingPathComponent("node-remasked.ts").path
            let replayed = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "--link",
                                           "--reason", "criminal-investigation", "--text", "Again, masked anew",
                                           "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(replayed.status == 0 && replayed.stderr.contains("served by relay node relay-1"), "\(replayed.stderr)")
            let replayedLink = try #require(replayed.stdout.split(separator: "\n").first.map(String.init))
            #expect((2_000...4_096).contains(replayedLink.utf8.count), "the ticket carries the masks, packed for FFmpeg: \(replayedLink.utf8.count) bytes")
            let refetched = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
                "-hide_banner", "-loglevel", "error", "-y", "-i", replayedLink, "-t", "3", "-c", "copy", "-f", "mpegts", remasked,
            ])
            #expect(refetched.status == 0, "\(refetched.stderr)")
            let right = try await meanLumas(remasked, crop: "iw/2-4:ih:iw/2+4:0")
            #expect(right.count >= 25 && right.allSatisfy { $0 < 5 }, "a mask registered after the node recorded hides its part of the footage: \(right)")
        }
    }

    @Test func aSelectedCameraIsRecordedAndPlayedBackFromAPastMoment() async throws {
        try await withCameraServer("footage", arguments: ["--segment-seconds", "1"]) { data in
            #expect(try await vigil("user", "add", "pz.viewer", "--name", "V", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "pz-5339").status == 0)
            let beforeIncident = Date()
            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                         "--data", data.path, "--agency", "pz-5339", "--json", "--timeout", "30")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)

            // Zone 5339's own camera, selected by its own incident: recorded, segment by segment.
            let deadline = ContinuousClock.now + .seconds(30)
            while segments(data).count < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
            let files = segments(data)
            #expect(files.count >= 4, "\(files)")
            let records = try await audit(data)
            #expect(records.contains { $0["action"] as? String == "recording.started" && ($0["cameras"] as? [String]) == ["pz5339-sim-01"]
                && $0["incident"] as? Int == id }, "\(records.map { $0["action"] })")
            // The pre-roll: the first segment starts before the incident was opened (the feed opened with it, so by less than that).
            let firstStart = Double(files[0].dropLast(3)).map { Date(timeIntervalSince1970: $0 / 1000) }
            #expect(firstStart.map { $0 < Date() } == true)
            for file in files.prefix(3) {
                let probed = try await probe(data.appendingPathComponent("footage/pz5339-sim-01/\(file)").path)
                #expect(probed.codec == "h264" && probed.frames > 0 && probed.errors.isEmpty, "\(file): \(probed)")
            }

            // Playback from two seconds into the recording, by a named user with a justification.
            let moment = (firstStart ?? beforeIncident).addingTimeInterval(2)
            let output = data.appendingPathComponent("played.ts").path
            let played = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "-o", output,
                                         "--seconds", "3", "--reason", "criminal-investigation", "--text", "What happened before the call",
                                         "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(played.status == 0, "\(played.stderr)")
            let probed = try await probe(output)
            #expect(probed.codec == "h264" && probed.frames >= 25 && probed.errors.isEmpty, "\(probed)")
            let started = try await audit(data).first { $0["action"] as? String == "view.started" && ($0["details"] as? [String: String])?["mode"] == "playback" }
            #expect(started?["footage_from"] != nil && started?["user"] as? String == "pz.viewer", "\(String(describing: started))")

            // The same playback as a link (what the console plays in a tile): the footage, muxed
            // by the fan-out from a feed of its own. Its first picture is the file's, not a live
            // one (the test pattern changes from second to second), and it has no thumbnail.
            let linked = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "--link",
                                         "--reason", "criminal-investigation", "--text", "What happened before the call",
                                         "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(linked.status == 0, "\(linked.stderr)")
            let addresses = linked.stdout.split(separator: "\n").map(String.init)
            // A HEAD first (as some players ask) does not start the footage: had it, the GET two
            // seconds later would join it at a newer keyframe than the chosen moment's.
            let asked = try await run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "-I", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", try #require(addresses.first)])
            #expect(asked.stdout == "200 video/mp2t", "\(asked.stdout) \(asked.stderr)")
            try await Task.sleep(for: .seconds(2.5))
            let fromLink = data.appendingPathComponent("linked.ts").path
            let fetched = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
                "-hide_banner", "-loglevel", "error", "-y", "-i", try #require(addresses.first), "-t", "2", "-c", "copy", "-f", "mpegts", fromLink,
            ])
            #expect(fetched.status == 0, "\(fetched.stderr)")
            let linkProbe = try await probe(fromLink)
            #expect(linkProbe.codec == "h264" && linkProbe.frames >= 25 && linkProbe.errors.isEmpty, "\(linkProbe)")
            let (fromFile, fromTheLink) = (try await firstPictureHash(output), try await firstPictureHash(fromLink))
            #expect(!fromFile.isEmpty && fromTheLink == fromFile, "the link plays the footage from the same keyframe: \(fromTheLink) \(fromFile)")
            let thumbnail = try await run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "-o", "/dev/null", "-w", "%{http_code}", try #require(addresses.last)])
            #expect(thumbnail.stdout == "404", "a playback's link shows no live thumbnail: \(thumbnail.stdout)")
            let playbacks = try await audit(data).filter { $0["action"] as? String == "view.started" && ($0["details"] as? [String: String])?["mode"] == "playback" }
            #expect(playbacks.count == 2, "the link was decided and recorded as a playback: \(playbacks)")

            // A moment before any recording: refused, not moved to later footage.
            func playBack(at moment: Date, _ extra: [String] = []) async throws -> (status: Int32, stderr: String) {
                let result = try await vigil(["watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "-o", output,
                                              "--reason", "criminal-investigation", "--text", "Long before", "--data", data.path, "--agency", "pz-5339",
                                              "--user", "pz.viewer", "--timeout", "30"] + extra)
                return (result.status, result.stderr)
            }
            let early = try await playBack(at: Date().addingTimeInterval(-3_600))
            #expect(early.status == 1 && early.stderr.contains("footage_unavailable"), "\(early.stderr)")
            // Police footage older than a month: only with a prosecutor's decision (and then there is none of it here).
            let old = Date().addingTimeInterval(-60 * 86_400)
            let unreferenced = try await playBack(at: old)
            #expect(unreferenced.status == 1 && unreferenced.stderr.contains("prosecutor_decision_required"), "\(unreferenced.stderr)")
            let referenced = try await playBack(at: old, ["--prosecutor-reference", "BXL-PR-2026-0042"])
            #expect(referenced.status == 1 && referenced.stderr.contains("footage_unavailable"), "\(referenced.stderr)")
            try await exportAndVerify(data, incident: id, from: moment, to: moment.addingTimeInterval(2))

            // The owner masks the right half after the recording (which has the left one masked):
            // the same footage plays with the new mask too.
            try await updateSimulatedCameraMasks(data, masks: "[[[0.5,0],[1,0],[1,1],[0.5,1]]]")
            let remasked = data.appendingPathComponent("remasked.ts").path
            let replayed = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", moment.formatted(.iso8601), "-o", remasked,
                                           "--seconds", "3", "--reason", "criminal-investigation", "--text", "Again, masked anew",
                                           "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(replayed.status == 0, "\(replayed.stderr)")
            let right = try await meanLumas(remasked, crop: "iw/2-4:ih:iw/2+4:0")
            #expect(right.count >= 25 && right.allSatisfy { $0 < 5 }, "a mask registered after the recording hides its part of the footage: \(right)")

            // Bad input: a time that is not one.
            let bad = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "--at", "yesterday", "-o", output,
                                      "--reason", "criminal-investigation", "--text", "When", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer")
            #expect(bad.status != 0 && bad.stderr.contains("--at"), "\(bad.stderr)")
        }
    }
}

/// The MD5 of a video file's first decoded picture (ffmpeg's framemd5).
private func firstPictureHash(_ path: String) async throws -> String {
    let hashed = try await run(URL(fileURLWithPath: "/usr/bin/ffmpeg"), ["-hide_banner", "-loglevel", "error", "-i", path, "-frames:v", "1", "-f", "framemd5", "-"])
    return hashed.stdout.split(separator: "\n").last { !$0.hasPrefix("#") }.map { String($0.split(separator: ",").last ?? "") } ?? ""
}
