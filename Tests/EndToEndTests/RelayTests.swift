import Foundation
import Testing

/// The embedded relay: a camera whose source is a real H.264 stream made by ffmpeg, pre-warmed
/// when an incident selects it, its thumbnail published with its privacy mask black, watched
/// with `vigil watch`, checked with ffprobe, and cut off when its grant is revoked.
// Not serialized, unlike the other end-to-end suites: its three tests (each its own folder,
// server and free ports) were the suite run's long pole one after another (67 s of 71 s).
@Suite("vigil relay and watch", .timeLimit(.minutes(2)))
struct RelayTests {
    /// Where the inline Python scripts find `media_endpoint.py`.
    private let pythonHelpers = repositoryRoot.appendingPathComponent("Tests/python").path

    /// The audit log's records once `viewsStopped` views have ended (or `patience` ran out): the
    /// relay records a view's end just after cutting its feed, so the last one may take a moment.
    private func auditRecords(_ data: URL, viewsStopped: Int) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + patience
        while true {
            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            if records.filter({ $0["action"] as? String == "view.stopped" }).count >= viewsStopped || ContinuousClock.now > deadline {
                return records
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Zone 5339's systems listening on `topics` for `lingering` seconds (subscribed when this returns).
    private func listen(_ data: URL, to topics: [String], lingering: Int) async throws -> BusSession {
        try await BusSession(data, as: "keys/agencies/pz-5339.key_secret", topics: topics, linger: Double(lingering))
    }

    /// The events a listener received, once it has finished.
    private func events(of listener: BusSession) async throws -> [[String: Any]] {
        let events = try await listener.finished().events
        #expect(!events.isEmpty, "the listener received nothing: \(listener.process.standardError)")
        return events.compactMap { $0["event"] as? [String: Any] }
    }

    /// Zone 5339 opens a public-order incident that selects the registry's extra camera (with the crisis centre taking part).
    private func openIncidentAtTheCamera(_ data: URL) async throws -> Int {
        let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                     "--participant", "crisis-centre", "--data", data.path, "--agency", "pz-5339", "--json", "--timeout", "30")
        #expect(opened.status == 0, "\(opened.stderr)")
        return try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
    }

    /// Zone 5339 revokes the grant that lets the crisis centre see its cameras.
    private func revokeCrisisCentreGrant(_ data: URL) async throws {
        let listed = try await vigil("grant", "list", "--data", data.path, "--agency", "pz-5339", "--json", "--timeout", "30")
        guard let grants = try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) else {
            throw ProcessFailure(description: "grant list (status \(listed.status)) printed \(listed.stdout.count) characters: \(listed.stdout.suffix(200)); stderr: \(listed.stderr)")
        }
        let grant = try #require((grants as? [[String: Any]])?.first { $0["agency"] as? String == "crisis-centre" }?["id"] as? String)
        let revoked = try await vigil("grant", "revoke", grant, "--reason", "suspended", "--data", data.path, "--agency", "pz-5339", "--timeout", "30")
        #expect(revoked.status == 0, "\(revoked.stderr)")
    }

    /// A link to the registry's extra camera, asked for by `user` of `agency`: the stream's and the thumbnail's addresses, and what `vigil watch` said.
    private func link(_ data: URL, incident: Int, user: String, agency: String) async throws -> (stream: String, thumbnail: String, said: String) {
        let linked = try await vigil("watch", "--link", "--incident", "\(incident)", "--camera", "pz5339-sim-01", "--reason", "public-order",
                                     "--text", "On the crisis wall", "--data", data.path, "--agency", agency, "--user", user, "--timeout", "30")
        #expect(linked.status == 0, "\(linked.stderr)")
        let links = linked.stdout.split(separator: "\n").map(String.init)
        return (try #require(links.first), try #require(links.last), linked.stderr)
    }

    /// ffmpeg plays a link for 2 s as VLC would (H.264, 25 frames or more, no errors), ffprobe
    /// reads its thumbnail (a 320 px JPEG), and the address with its token altered plays nothing (404).
    private func expectLinkPlays(_ link: (stream: String, thumbnail: String), data: URL) async throws {
        let played = data.appendingPathComponent("played-\(UUID().uuidString).ts").path
        let playing = try await run(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-i", link.stream, "-t", "2", "-c", "copy", "-f", "mpegts", played])
        #expect(playing.status == 0, "\(playing.stderr)")
        let playedProbe = try await probe(played)
        #expect(playedProbe.codec == "h264" && playedProbe.frames >= 25 && playedProbe.errors.isEmpty, "\(playedProbe)")
        // The camera's privacy mask (its left half) is black in every picture played, not only in thumbnails.
        let masked = try await meanLumas(played, crop: "iw/2-4:ih:0:0"), shown = try await meanLumas(played, crop: "iw/2-4:ih:iw/2+4:0")
        #expect(masked.count >= 25 && masked.allSatisfy { $0 < 5 }, "the mask hides the left half of the live video: \(masked.max() ?? -1)")
        #expect(shown.allSatisfy { $0 > 40 }, "the right half shows the picture: \(shown.min() ?? -1)")
        let picture = try await run(URL(fileURLWithPath: "/usr/bin/ffprobe"), [
            "-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", link.thumbnail,
        ])
        #expect(picture.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "mjpeg,320", "\(picture)")
        let altered = try await run(ffmpeg, ["-hide_banner", "-loglevel", "error", "-i", link.stream.replacingOccurrences(of: "/views/", with: "/views/x"),
                                             "-t", "1", "-f", "null", "-"])
        #expect(altered.status != 0 && altered.stderr.contains("404"), "an altered link plays nothing: \(altered.stderr)")
    }

    /// A browser's WebSocket on the link (`/views/TOKEN/live`) plays fragmented MP4 for 2 s: the
    /// handshake as RFC 6455 asks, an initialization segment first, then what ffprobe reads as
    /// H.264 (25 frames or more, no errors); the same address without the WebSocket handshake is
    /// refused with 426. The link's stream, taken over by the socket, is left for the caller to play again.
    private func expectBrowserSocketPlays(_ link: String, data: URL) async throws {
        let live = link.replacingOccurrences(of: "/stream.ts", with: "/live").replacingOccurrences(of: "http://", with: "ws://")
        let output = data.appendingPathComponent("browser-\(UUID().uuidString).mp4").path
        let played = try await run(python, [repositoryRoot.appendingPathComponent("Tests/python/browser_socket.py").path, live, output, "2"])
        let said = try json(played.stdout)
        #expect(said["status"] as? Int == 101 && said["accept_ok"] as? Bool == true && said["unmasked"] as? Bool == true, "\(played.stdout) \(played.stderr)")
        #expect(said["starts_with_init"] as? Bool == true && (said["messages"] as? Int ?? 0) >= 25, "\(played.stdout)")
        let probed = try await probe(output)
        #expect(probed.codec == "h264" && probed.frames >= 25 && probed.errors.isEmpty, "\(probed)")
        let plain = try await run(python, ["-c", """
            import sys, urllib.request, urllib.error
            try:
                urllib.request.urlopen(sys.argv[1], timeout=10)
            except urllib.error.HTTPError as error:
                print(error.code)
            """, link.replacingOccurrences(of: "/stream.ts", with: "/live")])
        #expect(plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "426", "\(plain.stdout) \(plain.stderr)")
    }

    private let ffmpeg = URL(fileURLWithPath: "/usr/bin/ffmpeg")

    @Test func watchedAndLinkedFeedsAreStandardMPEGTSAndEndWithAccess() async throws {
        try await withCameraServer { data in
            for (user, agency) in [("pz.viewer", "pz-5339"), ("cc.viewer", "crisis-centre")] {
                #expect(try await vigil("user", "add", user, "--name", "V", "--badge", "B-\(user)", "--role", "operator",
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            // The camera's state reaches the agencies that may see it, on their camera-state channel.
            let listener = try await listen(data, to: ["cameras/pz-5339/", "thumbnails/pz-5339/"], lingering: 4)
            // Generous timeouts: this suite runs beside the others on two cores.
            let id = try await openIncidentAtTheCamera(data)
            let states = try await events(of: listener)
            #expect(states.contains { $0["type"] as? String == "camera.state" && ($0["body"] as? [String: Any])?["camera"] as? String == "pz5339-sim-01"
                && ($0["body"] as? [String: Any])?["state"] as? String == "live" }, "\(states)")
            // Its thumbnail too: a JPEG of the first keyframe, the camera's privacy mask (the left half) black.
            let thumbnail = try #require(states.first { $0["type"] as? String == "camera.thumbnail" }?["body"] as? [String: Any], "\(states.map { $0["type"] })")
            #expect(thumbnail["camera"] as? String == "pz5339-sim-01" && thumbnail["width"] as? Int == 320 && thumbnail["height"] as? Int == 240)
            let jpeg = data.appendingPathComponent("thumbnail.jpg")
            try #require(Data(base64Encoded: thumbnail["jpeg"] as? String ?? "")).write(to: jpeg)
            #expect(try await meanLuma(jpeg.path, crop: "iw/2-4:ih:0:0") < 3, "the mask hides the left half")
            #expect(try await meanLuma(jpeg.path, crop: "iw/2-4:ih:iw/2+4:0") > 40, "the right half shows the picture")

            // Without a justification nothing is sent.
            let unjustified = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("x.ts").path,
                                              "--reason", "public-order", "--text", "", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer")
            #expect(unjustified.status == 1 && unjustified.stderr.contains("justification_required"), "\(unjustified.stderr)")

            let output = data.appendingPathComponent("watched.ts").path
            let watched = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "3",
                                          "--reason", "public-order", "--text", "Checking the crowd", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer",
                                          "--timeout", "30")
            #expect(watched.status == 0, "\(watched.stderr)")
            let probed = try await probe(output)
            #expect(probed.codec == "h264")
            #expect(probed.frames >= 50, "3 s at 25 fps, the cached GOP first (\(probed.frames))")
            #expect(probed.errors.isEmpty, "\(probed.errors)")

            // A link: ffmpeg plays it over HTTP as VLC would, and fetches the thumbnail beside it.
            let (link, thumbnailLink, _) = try await self.link(data, incident: id, user: "pz.viewer", agency: "pz-5339")
            try await expectLinkPlays((link, thumbnailLink), data: data)
            try await expectBrowserSocketPlays(link, data: data)

            // The crisis centre watches under zone 5339's grant; the zone revokes it mid-stream.
            let cut = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("cut.ts").path, "--seconds", "30",
                "--reason", "public-order", "--text", "Following the crowd", "--data", data.path, "--agency", "crisis-centre", "--user", "cc.viewer",
            ])
            try await cut.waitForStandardError(containing: "under grant")
            try await Task.sleep(for: .seconds(1))
            try await revokeCrisisCentreGrant(data)
            #expect(try await cut.waitForExit() == 0, "\(cut.standardError)")
            #expect(cut.standardError.contains("the relay ended the view") && cut.standardError.contains("grant_revoked"), "\(cut.standardError)")
            #expect(try await probe(data.appendingPathComponent("cut.ts").path).errors.isEmpty)

            // The link is played again. HEAD answers what GET would, without playing; a player that
            // comes while the first still plays (a reconnecting VLC) takes the link over, and the
            // first is cut off. Closing the incident then ends the link within a second or so.
            let player = try await RunningProcess(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-i", link, "-t", "60", "-c", "copy", "-f", "mpegts",
                                                     data.appendingPathComponent("closed.ts").path])
            try await Task.sleep(for: .seconds(2))
            let head = try await run(python, ["-c", """
                import sys, urllib.request
                answer = urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=10)
                print(answer.status, answer.headers["Content-Type"], len(answer.read()))
                """, link])
            #expect(head.stdout == "200 video/mp2t 0", "\(head.stdout) \(head.stderr)")
            let takeOver = try await RunningProcess(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-i", link, "-t", "60", "-c", "copy", "-f", "mpegts",
                                                       data.appendingPathComponent("taken-over.ts").path])
            #expect(try await player.waitForExit() == 0, "the first player is cut off: \(player.standardError)")
            try await Task.sleep(for: .seconds(2))
            #expect(takeOver.isRunning, "the second player plays: \(takeOver.standardError)")
            #expect(try await vigil("incident", "close", "\(id)", "--data", data.path, "--agency", "pz-5339", "--timeout", "30").status == 0)
            #expect(try await takeOver.waitForExit() == 0, "\(takeOver.standardError)")
            #expect(try await probe(data.appendingPathComponent("taken-over.ts").path).frames >= 25)

            let records = try await auditRecords(data, viewsStopped: 3)
            let started = records.filter { $0["action"] as? String == "view.started" }
            #expect(started.count == 3)
            #expect(started.contains { $0["user"] as? String == "cc.viewer" && $0["justification"] as? String == "Following the crowd" })
            #expect(started.contains { $0["justification"] as? String == "On the crisis wall" })
            #expect(records.filter { $0["action"] as? String == "view.stopped" }.count == 3)
        }
    }

    /// Two sealed viewers of one camera, from the Python client (pyzmq, python3-cryptography):
    /// one stream sealed once, a new key for each join and leave, and a viewer whose grant is
    /// revoked can open nothing sealed after it left, with any key it ever had.
    /// An owner who changes a camera's privacy masks changes what its viewers see at once: the
    /// link being played goes on, masked the new way from a picture on, not from the feed's next
    /// reconnection.
    @Test func aChangeOfMasksReachesAPlayingLinkAtOnce() async throws {
        // A stream longer than the test: the looped file's restart, which opens the camera again, does not come into it.
        try await withCameraServer("masks", streamSeconds: 30) { data in
            #expect(try await vigil("user", "add", "pz.viewer", "--name", "V", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "pz-5339").status == 0)
            let id = try await openIncidentAtTheCamera(data)
            let playing = try await link(data, incident: id, user: "pz.viewer", agency: "pz-5339")
            let played = data.appendingPathComponent("played.ts").path
            let player = try await RunningProcess(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-i", playing.stream, "-t", "120", "-c", "copy", "-flush_packets", "1", "-f", "mpegts", played])
            defer { player.kill(SIGKILL) }
            // The old mask played first, however slowly the player started: it writes once it has
            // probed the stream (seconds of it), and a second more comes.
            let started = ContinuousClock.now
            while (try? Data(contentsOf: URL(fileURLWithPath: played)))?.isEmpty ?? true, ContinuousClock.now - started < .seconds(60) {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(1))
            // The mask moves to the right half; the player goes on for three more seconds (however long the change took).
            try await updateSimulatedCameraMasks(data, masks: "[[[0.5,0],[1,0],[1,1],[0.5,1]]]")
            try await Task.sleep(for: .seconds(3))
            player.kill(SIGINT)  // ffmpeg closes its file as it stops
            _ = try await player.waitForExit(timeout: patience)
            let left = try await meanLumas(played, crop: "iw/2-4:ih:0:0"), right = try await meanLumas(played, crop: "iw/2-4:ih:iw/2+4:0")
            #expect(left.count >= 125, "the link played on, without a break: \(left.count) pictures")
            #expect(left.prefix(25).allSatisfy { $0 < 5 } && right.prefix(25).allSatisfy { $0 > 40 }, "masked on the left first: \(left.prefix(25)) \(right.prefix(25))")
            #expect(right.suffix(50).allSatisfy { $0 < 5 } && left.suffix(50).allSatisfy { $0 > 40 },
                    "then on the right, the left shown: \(left.suffix(50)) \(right.suffix(50))")
        }
    }

    /// An H.265 camera that gains a mask leaves as H.264 from then on: a viewer on the media
    /// endpoint, whose stream was H.265, is told its view ended and why, rather than sent what it
    /// cannot mux (or nothing at all).
    @Test func aViewWhoseCameraChangesCodecIsEndedWithItsReason() async throws {
        try await withCameraServer("codec", hevcCamera: true, streamSeconds: 30) { data in
            #expect(try await vigil("user", "add", "pz.viewer", "--name", "V", "--badge", "B-1", "--role", "operator",
                                    "--data", data.path, "--agency", "pz-5339").status == 0)
            let id = try await openIncidentAtTheCamera(data)
            // A viewer of each delivery: sealed (the fan-out) and packets (the media endpoint).
            var watchers: [(RunningProcess, String)] = []
            for delivery in ["sealed", "packets"] {
                let output = data.appendingPathComponent("hevc-\(delivery).ts").path
                let watcher = try await RunningProcess(vigilBinary, [
                    "watch", "--incident", "\(id)", "--camera", "pz5339-sim-02", "-o", output, "--seconds", "60", "--delivery", delivery,
                    "--reason", "public-order", "--text", "The square", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30",
                ])
                watchers.append((watcher, output))
            }
            defer { for (watcher, _) in watchers { watcher.kill(SIGKILL) } }
            let started = ContinuousClock.now
            while !watchers.allSatisfy({ $0.0.standardError.contains("vigil watch: view") }), ContinuousClock.now - started < .seconds(60) {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(1))
            try await updateSimulatedCameraMasks(data, masks: "[[[0,0],[0.5,0],[0.5,1],[0,1]]]", hevc: true)
            for (watcher, output) in watchers {
                let status = try await watcher.waitForExit(timeout: patience)
                #expect(status == 0 && watcher.standardError.contains("the camera's stream changed to h264"), "ended, and why: \(watcher.standardError)")
                let probed = try await probe(output)
                #expect(probed.codec == "hevc" && probed.frames > 0 && probed.errors.isEmpty, "what it wrote is its H.265, whole: \(probed)")
            }
            let ends = try await vigil("audit", "export", "--data", data.path).stdout.split(separator: "\n")
                .compactMap { try? json(String($0))["record"] as? [String: Any] }.filter { $0["action"] as? String == "view.stopped" }
            #expect(ends.filter { ($0["cameras"] as? [String]) == ["pz5339-sim-02"] }.count >= 2, "both views recorded as stopped: \(ends)")
            // Opened again, the camera comes as H.264, masked.
            let again = data.appendingPathComponent("h264.ts").path
            let watched = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-02", "-o", again, "--seconds", "2", "--reason", "public-order",
                                          "--text", "The square", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(watched.status == 0, "\(watched.stderr)")
            #expect(try await probe(again).codec == "h264")
            #expect(try await meanLumas(again, crop: "iw/2-4:ih:0:0").allSatisfy { $0 < 5 })
        }
    }

    @Test func sealedViewersGetANewKeyWhenOneJoinsOrIsRevokedAndTheRevokedOneReadsNothingAfter() async throws {
        try await withCameraServer("sealed") { data in
            for (user, agency) in [("pz.viewer", "pz-5339"), ("cc.viewer", "crisis-centre")] {
                #expect(try await vigil("user", "add", user, "--name", "V", "--badge", "B-\(user)", "--role", "operator",
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            let id = try await openIncidentAtTheCamera(data)
            let viewers = try await RunningProcess(python, [
                repositoryRoot.appendingPathComponent("Tests/python/sealed_rotation.py").path, data.path,
                "keys/users/cc.viewer.key_secret", "keys/users/pz.viewer.key_secret", "\(id)", "pz5339-sim-01",
            ])
            try await viewers.waitForStandardError(containing: "ready")
            try await revokeCrisisCentreGrant(data)
            #expect(try await viewers.waitForExit() == 0, "\(viewers.standardError)")
            let report = try json(try #require(viewers.lines.last, "\(viewers.standardError)"))
            let firstKeys = report["first_key_ids"] as? [Int] ?? [], secondKeys = report["second_key_ids"] as? [Int] ?? []
            // The second viewer's join replaced the key: the first was sent the new one, the second started with it.
            #expect(firstKeys.count >= 2 && secondKeys.first == firstKeys.last, "\(report)")
            // The revocation ended the first view and its stream, and replaced the key again, for the second viewer only.
            #expect((report["first_ended"] as? String)?.contains("grant_revoked") == true && report["first_closed"] as? Bool == true, "\(report)")
            let lastKey = try #require(secondKeys.last, "\(report)")
            #expect(secondKeys.count >= 2 && !firstKeys.contains(lastKey), "\(report)")
            #expect(report["first_frames"] as? Int ?? 0 > 10 && report["second_frames_before"] as? Int ?? 0 > 10, "\(report)")
            #expect(report["all_whole"] as? Bool == true, "every frame opened is whole MPEG-TS: \(report)")
            // What was sealed after it left: the second viewer reads it, the first viewer's keys open none of it.
            #expect(report["after_frames_tried"] as? Int ?? 0 > 10, "\(report)")
            #expect(report["after_opened_with_first_keys"] as? Int == 0, "\(report)")
        }
    }

    @Test func aRelayNodeServesTheCamerasItIsAssignedAndEndsViewsTheServerEnds() async throws {
        // The embedded relay takes no camera: every one goes to the node.
        try await withCameraServer(arguments: ["--relay-max-streams", "0"]) { data in
            for (user, agency, role) in [("pz.viewer", "pz-5339", "operator"), ("cc.viewer", "crisis-centre", "operator"), ("relay-1", "crisis-centre", "relay")] {
                #expect(try await vigil("user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role,
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            let info = try json(String(contentsOf: data.appendingPathComponent("server.json"), encoding: .utf8))
            let node = try await RunningProcess(vigilBinary, [
                "relay", "--coordinator", try #require(info["command"] as? String), "--server-key", data.appendingPathComponent("keys/server.key").path,
                "--cert", data.appendingPathComponent("keys/users/relay-1.key_secret").path, "--media-port", "0", "--http-port", "0",
                "--footage", data.appendingPathComponent("node-footage").path,
                // Bound to every address, it gives viewers the one they reach.
                "--host", "0.0.0.0", "--advertise", "127.0.0.1",
            ])
            defer { node.kill(SIGKILL) }
            let registered = try json(try #require(try await node.waitForLines(1).first))
            #expect(registered["relay"] as? String == "relay-1")
            #expect((registered["media"] as? String)?.hasPrefix("tcp://127.0.0.1:") == true && (registered["http"] as? String)?.hasPrefix("http://127.0.0.1:") == true,
                    "the advertised address, not the one bound: \(registered)")
            // The node serves nobody without a ticket the server signed.
            let forged = try await run(python, ["-c", """
                import json, sys, zmq
                context = zmq.Context()
                dealer = context.socket(zmq.DEALER)
                dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()
                dealer.curve_serverkey = sys.argv[2].encode()
                dealer.connect(sys.argv[1])
                for ticket in (None, "eyJ2aWV3IjoieCJ9.AAAA"):
                    body = {"camera": "pz5339-sim-01"} if ticket is None else {"camera": "pz5339-sim-01", "ticket": ticket}
                    dealer.send(json.dumps({"v": 1, "id": str(ticket), "op": "feed.open", "body": body}).encode())
                    print(json.loads(dealer.recv())["error"]["code"] if dealer.poll(10000) else "timeout")
                # A delivery that is none gets a clear error.
                dealer.send(json.dumps({"v": 1, "id": "pigeon", "op": "feed.open", "body": {"camera": "pz5339-sim-01", "delivery": "pigeon"}}).encode())
                print(json.loads(dealer.recv())["error"]["code"] if dealer.poll(10000) else "timeout")
                # Nor hands out a segment file without the coordinator's fetch ticket.
                dealer.send(json.dumps({"v": 1, "id": "fetch", "op": "footage.fetch", "body": {"ticket": "eyJmaWxlIjoieCJ9.AAAA"}}).encode())
                print(json.loads(dealer.recv())["error"]["code"] if dealer.poll(10000) else "timeout")
                """, try #require(registered["media"] as? String), try #require(registered["server_key"] as? String)])
            #expect(forged.stdout.split(separator: "\n") == ["ticket_invalid", "ticket_invalid", "bad_request", "ticket_invalid"], "\(forged.stdout) \(forged.stderr)")
            // The node's thumbnails reach the agencies through the server.
            let listener = try await listen(data, to: ["thumbnails/pz-5339/"], lingering: 6)
            let id = try await openIncidentAtTheCamera(data)
            let pictures = try await events(of: listener)
            let picture = try #require(pictures.first { $0["type"] as? String == "camera.thumbnail" }?["body"] as? [String: Any], "\(pictures.count) events")
            #expect(picture["camera"] as? String == "pz5339-sim-01" && Data(base64Encoded: picture["jpeg"] as? String ?? "")?.prefix(2) == Data([0xFF, 0xD8]))
            let output = data.appendingPathComponent("node.ts").path
            let watched = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "3",
                                          "--reason", "public-order", "--text", "Through the relay node", "--data", data.path, "--agency", "pz-5339",
                                          "--user", "pz.viewer", "--timeout", "30")
            #expect(watched.status == 0 && watched.stderr.contains("served by relay node relay-1"), "\(watched.stderr)")
            // Sealed on the node as on the server: the node seals the camera once, the key comes over CURVE.
            #expect(watched.stderr.contains(", sealed (content key"), "\(watched.stderr)")
            let probed = try await probe(output)
            #expect(probed.codec == "h264" && probed.frames >= 50 && probed.errors.isEmpty, "\(probed)")

            // A pyzmq viewer follows the redirect as docs/protocol.md tells; its ticket opens the view once.
            let twice = try await run(python, ["-c", """
                import json, sys, zmq.auth
                sys.path.insert(0, sys.argv[1])
                from media_endpoint import MediaClient, request
                media, server_key, certificate, incident = sys.argv[2:6]
                viewer = MediaClient(certificate)
                opened = request(viewer.connect(media, zmq.auth.load_certificate(server_key)[0]), "a", "feed.open", {"camera": "pz5339-sim-01",
                    "justification": {"reason": "public-order", "text": "One ticket, two viewers", "incident": int(incident)}})
                redirect = opened["result"]["redirect"]
                first, second = (viewer.connect(redirect["media"], redirect["server_key"].encode()) for _ in range(2))
                replies = [request(socket, id, "feed.open", {"camera": "pz5339-sim-01", "ticket": redirect["ticket"]}) for socket, id in ((first, "b"), (second, "c"))]
                print(json.dumps([replies[0].get("ok"), replies[1].get("error", {}).get("code")]))
                """, pythonHelpers, try #require(info["media"] as? String), data.appendingPathComponent("keys/server.key").path,
                data.appendingPathComponent("keys/users/pz.viewer.key_secret").path, "\(id)"])
            #expect(twice.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"[true, "ticket_invalid"]"#, "\(twice.stdout) \(twice.stderr)")

            // A link to the node's camera is played from the node's own HTTP port, its token a ticket the server signed.
            let nodeLink = try await link(data, incident: id, user: "pz.viewer", agency: "pz-5339")
            let nodeHTTP = try #require(registered["http"] as? String)
            #expect(nodeLink.said.contains("served by relay node relay-1") && nodeLink.stream.hasPrefix("\(nodeHTTP)/views/"), "\(nodeLink)")
            try await expectLinkPlays((nodeLink.stream, nodeLink.thumbnail), data: data)

            // The server re-decides the node's views: a revoked grant ends the crisis centre's view and link on the node.
            let ccLink = try await link(data, incident: id, user: "cc.viewer", agency: "crisis-centre").stream
            let ccPlayer = try await RunningProcess(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-i", ccLink, "-t", "60", "-c", "copy", "-f", "mpegts",
                                                       data.appendingPathComponent("node-cc-link.ts").path])
            let cut = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("node-cut.ts").path, "--seconds", "30",
                "--reason", "public-order", "--text", "Following the crowd", "--data", data.path, "--agency", "crisis-centre", "--user", "cc.viewer",
            ])
            try await cut.waitForStandardError(containing: "under grant")
            try await revokeCrisisCentreGrant(data)
            #expect(try await cut.waitForExit() == 0, "\(cut.standardError)")
            #expect(cut.standardError.contains("grant_revoked"), "\(cut.standardError)")
            #expect(try await ccPlayer.waitForExit() == 0, "\(ccPlayer.standardError)")
            #expect(try await probe(data.appendingPathComponent("node-cc-link.ts").path).frames > 0)
            // Its ticket is still within its 30 s, but the view has ended: the link plays nothing again.
            let replayed = try await run(ffmpeg, ["-hide_banner", "-loglevel", "error", "-i", ccLink, "-t", "1", "-f", "null", "-"])
            #expect(replayed.status != 0 && replayed.stderr.contains("404"), "an ended link stays ended: \(replayed.stderr)")

            // A node killed: until the server notices its silence (5 s), a viewer sent to it is told
            // so within its --timeout, by a code of its own, not as if the server were unreachable.
            node.kill(SIGKILL)
            let stranded = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("stranded.ts").path,
                                           "--seconds", "1", "--reason", "public-order", "--text", "The node was just killed", "--data", data.path,
                                           "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "2")
            if stranded.stderr.contains("served by relay node relay-1") {
                #expect(stranded.status != 0 && stranded.stderr.contains("relay_node_unreachable") && stranded.stderr.contains("did not answer in 2 s"),
                        "\(stranded.stderr)")
            }
            // A node that stops reporting is dropped; with no node left, the server's own relay serves the camera.
            try await Task.sleep(for: .seconds(7))
            let fallback = data.appendingPathComponent("fallback.ts").path
            let served = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", fallback, "--seconds", "2",
                                         "--reason", "public-order", "--text", "The node is gone", "--data", data.path, "--agency", "pz-5339",
                                         "--user", "pz.viewer", "--timeout", "30")
            #expect(served.status == 0 && !served.stderr.contains("relay node"), "\(served.stderr)")
            #expect(try await probe(fallback).frames >= 25)

            let records = try await auditRecords(data, viewsStopped: 7)
            #expect(records.contains { $0["action"] as? String == "relay.registered" && $0["user"] as? String == "relay-1" })
            #expect(records.filter { $0["action"] as? String == "view.started" }.count == 7)
            #expect(records.filter { $0["action"] as? String == "view.stopped" }.count == 7, "every view is recorded as ended, those the node served too")
        }
    }

    /// Users `pz.viewer` (an operator of zone 5339, unless `viewer` is false) and `name` (a relay
    /// of `agency`), and a relay node `name` that records nothing, registered with the server of `data`.
    private func startRelayNode(
        _ data: URL, name: String = "relay-1", agency: String = "crisis-centre", viewer: Bool = true, arguments: [String] = []
    ) async throws -> RunningProcess {
        for (user, agency, role) in (viewer ? [("pz.viewer", "pz-5339", "operator")] : []) + [(name, agency, "relay")] {
            #expect(try await vigil("user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role,
                                    "--data", data.path, "--agency", agency).status == 0)
        }
        let info = try json(String(contentsOf: data.appendingPathComponent("server.json"), encoding: .utf8))
        let node = try await RunningProcess(vigilBinary, [
            "relay", "--coordinator", try #require(info["command"] as? String), "--server-key", data.appendingPathComponent("keys/server.key").path,
            "--cert", data.appendingPathComponent("keys/users/\(name).key_secret").path, "--media-port", "0", "--http-port", "0", "--no-recording",
        ] + arguments)
        do {
            _ = try await node.waitForLines(1)
        } catch {
            node.kill(SIGKILL)
            throw error
        }
        return node
    }

    /// A node killed mid-view: its viewer notices within a second, asks the server again, and is
    /// served by the server's own relay (the node was the only one).
    @Test func aViewerWhoseRelayNodeDiesMidViewPlaysOnFromAnotherRelay() async throws {
        try await withCameraServer(arguments: ["--relay-max-streams", "0"]) { data in
            let node = try await startRelayNode(data)
            defer { node.kill(SIGKILL) }
            let id = try await openIncidentAtTheCamera(data)
            let output = data.appendingPathComponent("moved.ts").path
            let seconds = 14
            let watch = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "\(seconds)", "--reason", "public-order",
                "--text", "Through the node, then wherever it is", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30",
            ])
            try await watch.waitForStandardError(containing: "served by relay node relay-1")
            try await Task.sleep(for: .seconds(3))
            node.kill(SIGKILL)
            #expect(try await watch.waitForExit() == 0, "\(watch.standardError)")
            // It noticed, asked the server again, and played on from the server's own relay.
            #expect(watch.standardError.contains("relay node relay-1 stopped serving the view; asking the server again"), "\(watch.standardError)")
            #expect(watch.standardError.components(separatedBy: "sealed (content key").count == 3, "two views, one after the other: \(watch.standardError)")
            #expect(!watch.standardError.contains("the relay ended the view"), "\(watch.standardError)")
            let probed = try await probe(output)
            // 25 frames a second: the view lost at most 3 s (1 s to notice, a moment to be placed again).
            #expect(probed.codec == "h264" && probed.frames >= (seconds - 3) * 25, "\(probed)")
        }
    }

    /// Origin and edges: zone 5339's camera is pulled by the node at its site; its viewers in two
    /// other sites are each served by their site's node, which pulls the camera once from the
    /// origin for all of them; a viewer who names no site is served by the origin. An edge's pull
    /// is no one's view: only the viewers' views are in the audit log.
    @Test func aCameraPulledAtItsOwnersSiteReachesTwoOtherSitesThroughOneEdgeEach() async throws {
        try await withCameraServer(arguments: ["--relay-max-streams", "0"]) { data in
            // Zone 5339's own node pulls its cameras; the crisis centre's serve the other sites.
            let origin = try await startRelayNode(data, name: "relay-origin", agency: "pz-5339", arguments: ["--site", "pz-hq", "--origin-of", "pz-5339"])
            let north = try await startRelayNode(data, name: "relay-north", viewer: false, arguments: ["--site", "north"])
            let south = try await startRelayNode(data, name: "relay-south", viewer: false, arguments: ["--site", "south"])
            defer { [origin, north, south].forEach { $0.kill(SIGKILL) } }
            let id = try await openIncidentAtTheCamera(data)
            let sites = ["north", "north", "south", "south", nil]
            let viewers = try await sites.enumerated().asyncMap { index, site in
                try await RunningProcess(vigilBinary, [
                    "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("site-\(index).ts").path,
                    "--seconds", "5", "--reason", "public-order", "--text", "Watching from a site", "--data", data.path, "--agency", "pz-5339",
                    "--user", "pz.viewer", "--timeout", "30",
                ] + (site.map { ["--site", $0] } ?? []))
            }
            for (index, viewer) in viewers.enumerated() {
                #expect(try await viewer.waitForExit() == 0, "\(viewer.standardError)")
                let node = sites[index].map { "relay-\($0)" } ?? "relay-origin"
                #expect(viewer.standardError.contains("served by relay node \(node) "), "\(sites[index] ?? "no site"): \(viewer.standardError)")
                #expect(try await probe(data.appendingPathComponent("site-\(index).ts").path).frames >= 50)
            }
            // Two streams between sites: the origin served one pull to each edge, whatever their viewers.
            let pulls = origin.standardError.split(separator: "\n").filter { $0.contains("edge pulls a camera") }
            #expect(pulls.count == 2 && pulls.contains { $0.contains("relay-north") } && pulls.contains { $0.contains("relay-south") }, "\(pulls)")
            // The origin takes no pull without the coordinator's ticket for an edge, a viewer's ticket included.
            let info = try json(String(contentsOf: data.appendingPathComponent("server.json"), encoding: .utf8))
            let registered = try json(try #require(origin.lines.first))
            let refused = try await run(python, ["-c", """
                import sys, zmq.auth
                sys.path.insert(0, sys.argv[1])
                from media_endpoint import MediaClient, request
                origin, origin_key, server, server_key, certificate, incident = sys.argv[2:8]
                viewer = MediaClient(certificate)
                opened = request(viewer.connect(server, zmq.auth.load_certificate(server_key)[0]), "a", "feed.open", {"camera": "pz5339-sim-01",
                    "justification": {"reason": "public-order", "text": "A viewer's ticket, tried upstream", "incident": int(incident)}})
                ticket = opened["result"]["redirect"]["ticket"]
                for id, body in (("b", {"camera": "pz5339-sim-01", "ticket": ticket}), ("c", {"camera": "pz5339-sim-01", "ticket": "eyJ2aWV3IjoieCJ9.AAAA"}), ("d", {"camera": "pz5339-sim-01"})):
                    print(request(viewer.connect(origin, origin_key.encode()), id, "feed.upstream", body).get("error", {}).get("code"))
                """, pythonHelpers, try #require(registered["media"] as? String), try #require(registered["server_key"] as? String), try #require(info["media"] as? String),
                data.appendingPathComponent("keys/server.key").path, data.appendingPathComponent("keys/users/pz.viewer.key_secret").path, "\(id)"])
            #expect(refused.stdout.split(separator: "\n") == ["ticket_invalid", "ticket_invalid", "ticket_invalid"], "\(refused.stdout) \(refused.stderr)")
            // The refused one's view lingers 30 s unopened before it is recorded stopped.
            let records = try await auditRecords(data, viewsStopped: 5)
            #expect(records.filter { $0["action"] as? String == "view.started" }.count == 6, "five viewers and the ticket tried upstream, no edge")
        }
    }

    /// The origin dies under an edge: the edge's pull stalls, the edge says so in its report, the
    /// server places the camera on the site's other origin node, and the edge pulls from it; its
    /// viewer plays on from the same edge.
    @Test func anEdgesViewerPlaysOnWhenItsOriginNodeDies() async throws {
        try await withCameraServer(arguments: ["--relay-max-streams", "0"]) { data in
            let origins = [
                try await startRelayNode(data, name: "relay-a", agency: "pz-5339", arguments: ["--site", "pz-hq", "--origin-of", "pz-5339"]),
                try await startRelayNode(data, name: "relay-b", agency: "pz-5339", viewer: false, arguments: ["--site", "pz-hq", "--origin-of", "pz-5339"]),
            ]
            let edge = try await startRelayNode(data, name: "relay-north", viewer: false, arguments: ["--site", "north"])
            defer { (origins + [edge]).forEach { $0.kill(SIGKILL) } }
            let id = try await openIncidentAtTheCamera(data)
            let output = data.appendingPathComponent("edge.ts").path
            let seconds = 16
            let watch = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "\(seconds)", "--reason", "public-order",
                "--text", "From the north, while the origin dies", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer",
                "--timeout", "30", "--site", "north",
            ])
            try await watch.waitForStandardError(containing: "sealed (content key")
            try await Task.sleep(for: .seconds(3))
            let serving = try #require(origins.firstIndex { $0.standardError.contains("edge pulls a camera") }, "neither origin served the edge")
            origins[serving].kill(SIGKILL)
            #expect(try await watch.waitForExit() == 0, "\(watch.standardError)")
            #expect(!watch.standardError.contains("the relay ended the view"), "\(watch.standardError)")
            #expect(!watch.standardError.contains("served by relay node relay-a") && !watch.standardError.contains("served by relay node relay-b"),
                    "the viewer stays on its site's edge: \(watch.standardError)")
            let other = origins[1 - serving]
            #expect(other.standardError.contains("edge pulls a camera"), "the edge pulls from the other origin now: \(other.standardError.suffix(600))")
            let probed = try await probe(output)
            // 25 frames a second: the view lost at most 8 s (the edge's pull stalls 2 s, a report or two, the new origin opens the camera).
            #expect(probed.codec == "h264" && probed.frames >= (seconds - 8) * 25, "\(probed)")
        }
    }

    /// A view is closed only by its own viewer: another user who learnt its id is told there is
    /// no such view, and the view plays on; its viewer closes it.
    @Test func onlyItsViewerClosesAView() async throws {
        try await withCameraServer { data in
            for (user, agency) in [("pz.viewer", "pz-5339"), ("cc.viewer", "crisis-centre")] {
                #expect(try await vigil("user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", "operator",
                                        "--data", data.path, "--agency", agency).status == 0)
            }
            let id = try await openIncidentAtTheCamera(data)
            let output = data.appendingPathComponent("closed.ts").path
            let watch = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "4", "--reason", "public-order",
                "--text", "A view someone else tries to close", "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30",
                "--delivery", "packets",
            ])
            try await watch.waitForStandardError(containing: "under grant")
            let view = try #require(watch.standardError.split(separator: " ").drop { $0 != "view" }.dropFirst().first.map(String.init))
            let info = try json(String(contentsOf: data.appendingPathComponent("server.json"), encoding: .utf8))
            let closed = try await run(python, ["-c", """
                import sys, zmq.auth
                sys.path.insert(0, sys.argv[1])
                from media_endpoint import MediaClient, request
                media, server_key, certificate, view = sys.argv[2:6]
                other = MediaClient(certificate)
                print(request(other.connect(media, zmq.auth.load_certificate(server_key)[0]), "x", "feed.close", {"view": view}).get("error", {}).get("code"))
                """, pythonHelpers, try #require(info["media"] as? String), data.appendingPathComponent("keys/server.key").path,
                data.appendingPathComponent("keys/users/cc.viewer.key_secret").path, view])
            #expect(closed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "view_not_found", "\(closed.stdout) \(closed.stderr)")
            #expect(try await watch.waitForExit() == 0, "\(watch.standardError)")
            #expect(!watch.standardError.contains("the relay ended the view"), "the view played to its end: \(watch.standardError)")
            #expect(try await probe(output).frames >= 75)
            let records = try await auditRecords(data, viewsStopped: 1)
            #expect(records.contains { $0["action"] as? String == "view.stopped" && $0["user"] as? String == "pz.viewer" }, "its own viewer closed it")
        }
    }

    /// A node that stops (SIGTERM) deregisters: the coordinator drops it at once, so the next
    /// viewer is served by the server's own relay without waiting for the node's silence.
    @Test func aRelayNodeThatStopsDeregisters() async throws {
        try await withCameraServer(arguments: ["--relay-max-streams", "0"]) { data in
            let node = try await startRelayNode(data)
            defer { node.kill(SIGKILL) }
            let id = try await openIncidentAtTheCamera(data)
            let output = data.appendingPathComponent("node.ts").path
            let watched = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", output, "--seconds", "1",
                                          "--reason", "public-order", "--text", "Through the node", "--data", data.path, "--agency", "pz-5339",
                                          "--user", "pz.viewer", "--timeout", "30")
            #expect(watched.status == 0 && watched.stderr.contains("served by relay node relay-1"), "\(watched.stderr)")

            node.kill(SIGTERM)
            #expect(try await node.waitForExit() == 0, "\(node.standardError)")
            // At once (a silent node would still be sent viewers for 5 s): the server's own relay.
            let after = try await vigil("watch", "--incident", "\(id)", "--camera", "pz5339-sim-01", "-o", data.appendingPathComponent("after.ts").path,
                                        "--seconds", "1", "--reason", "public-order", "--text", "The node stopped", "--data", data.path,
                                        "--agency", "pz-5339", "--user", "pz.viewer", "--timeout", "30")
            #expect(after.status == 0 && !after.stderr.contains("relay node"), "\(after.stderr)")
            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            #expect(records.contains { $0["action"] as? String == "relay.deregistered" && $0["user"] as? String == "relay-1" }, "\(records.map { $0["action"] })")
        }
    }

    /// The relay operations defend themselves: only a relay key registers, a bad registration
    /// and a report before registering get their codes, a wrong type gets bad_request.
    @Test func relayOperationsRefuseWhatIsNotARegisteredRelayNode() async throws {
        // The new command line refuses what it cannot use.
        for (arguments, message) in [
            (["relay", "--coordinator", "http://127.0.0.1:7710", "--server-key", "k", "--cert", "c"], "--coordinator is a tcp://HOST:PORT endpoint"),
            (["relay", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "/nonexistent/server.key", "--cert", "c"], "certificate not found"),
            (["relay", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c", "--http-port", "70000"], "--http-port must be 0 to 65535"),
            (["relay", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c", "--origin-of", "stib"], "--origin-of needs --site"),
            (["relay", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c", "--site", ""], "--site is a name of 1 to 100 characters"),
            (["watch", "--incident", "1", "--camera", "c", "--reason", "public-order", "--text", "Both ways", "-o", "x.ts", "--link"], "either -o FILE"),
            (["serve", "--thumbnail-interval", "0"], "--thumbnail-interval must be 0.1 to 3600 seconds"),
            (["serve", "--relay-max-streams=-1"], "must be 0 or more"),
        ] {
            let refused = try await run(vigilBinary, arguments)
            #expect(refused.status != 0 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "relay-9", "--name", "N", "--badge", "R-9", "--role", "relay",
                                    "--data", data.path, "--agency", "crisis-centre").status == 0)
            let key = String(repeating: "a", count: 40)
            let report: [String: Any] = ["cameras": [String: Any](), "views": [String](), "ended": [String](), "streams": 0, "mbps": 0]
            func replies(_ certificate: String, _ requests: [[String: Any]]) async throws -> [[String: Any]] {
                try await BusSession.run(data, as: certificate, requests: requests).replies
            }
            let code = errorCode
            let register: [String: Any] = ["media": "tcp://127.0.0.1:7723", "server_key": key, "maximum_streams": 10, "maximum_mbps": 40]
            let asAgency = try await replies("keys/agencies/crisis-centre.key_secret", [
                ["op": "relay.register", "body": register], ["op": "relay.report", "body": report], ["op": "relay.deregister", "body": [String: Any]()],
            ])
            #expect(asAgency.map(code) == ["role_required", "role_required", "role_required"], "\(asAgency)")
            var badRegistration = register
            badRegistration["media"] = "inproc://elsewhere"
            var badLinks = register
            badLinks["links"] = "ftp://127.0.0.1:7724"
            var badReport = report
            badReport["streams"] = "many"
            // A view the server never allowed goes on nowhere: the reply tells the node to end it.
            var strangerReport = report
            strangerReport["views"] = ["never-allowed"]
            // Deregistering before registering, or twice, is relay_unknown.
            let asNode = try await replies("keys/users/relay-9.key_secret", [
                ["op": "relay.report", "body": report], ["op": "relay.register", "body": badRegistration], ["op": "relay.register", "body": badLinks],
                ["op": "relay.register", "body": register], ["op": "relay.report", "body": badReport], ["op": "relay.report", "body": strangerReport],
                ["op": "relay.deregister", "body": [String: Any]()], ["op": "relay.deregister", "body": [String: Any]()],
            ])
            #expect(asNode.map(code) == ["relay_unknown", "relay_invalid", "relay_invalid", nil, "bad_request", nil, nil, "relay_unknown"], "\(asNode)")
            let registered = try #require(asNode[3]["result"] as? [String: Any])
            #expect(registered["relay"] as? String == "relay-9" && (registered["secret"] as? String)?.count == 44)
            let answer = try #require(asNode[5]["result"] as? [String: Any])
            #expect(answer["assignments"] as? [Any] != nil)
            #expect((answer["end"] as? [String: String])?["never-allowed"] == "the server holds no such view", "\(answer)")
        }
    }
}
