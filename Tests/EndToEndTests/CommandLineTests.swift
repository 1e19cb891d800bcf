import Foundation
import Testing

/// The command line's own promises: its version, a clear error for every kind of bad input it
/// can see before starting, IPv6 on every endpoint, and JSON log lines.
@Suite("vigil command line", .serialized, .timeLimit(.minutes(2)))
struct CommandLineTests {
    @Test func printsItsVersion() async throws {
        let version = try await vigil("--version")
        #expect(version.status == 0 && version.stdout.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil, "\(version.stdout)")
        for shell in ["bash", "zsh", "fish"] {
            let completion = try await vigil("--generate-completion-script", shell)
            #expect(completion.status == 0 && completion.stdout.contains("serve") && completion.stdout.contains("incident"), "\(shell)")
        }
    }

    @Test func badInputBeforeAnythingStartsGetsAClearError() async throws {
        // A negative radius is a value, not an option (and so is a western longitude).
        let negative = try await vigil("cameras", "select", "--near", "50.85,4.35", "--radius", "-5")
        #expect(negative.status == 1 && negative.stderr.contains("radius_invalid"), "\(negative.stderr)")
        let west = try await vigil("cameras", "select", "--near", "50.85,-4.35", "--radius", "100")
        #expect(west.status == 1 && west.stderr.contains("coordinate_outside_crs"), "\(west.stderr)")

        // A data folder that is a file.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-not-a-folder-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let shown = try await vigil("incident", "show", "1", "--data", file.path)
        #expect(shown.status == 1 && shown.stderr.contains("data_folder_invalid"), "\(shown.stderr)")
        let served = try await vigil("serve", "--data", file.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0",
                                     "--media-port", "0", "--http-port", "0", "--console-port", "0")
        #expect(served.status != 0 && served.stderr.contains("data_folder_invalid"), "\(served.stderr)")

        // A host that is a name (or a typo): refused before the folder is made.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-unknown-host-\(UUID().uuidString)")
        let unknown = try await vigil("serve", "--host", "nonexistent.invalid", "--data", folder.path)
        #expect(unknown.status != 0 && unknown.stderr.contains("is not an IPv4 or IPv6 address"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
        let relay = try await vigil("relay", "--host", "localhost", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c")
        #expect(relay.status != 0 && relay.stderr.contains("is not an IPv4 or IPv6 address"), "\(relay.stderr)")
        // A relay bound to every address says which one viewers reach; the unspecified one reaches none.
        for (host, advertise) in [("0.0.0.0", nil), ("::", nil), ("0.0.0.0", "0.0.0.0")] as [(String, String?)] {
            let everywhere = try await vigil(["relay", "--host", host, "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c"]
                                             + (advertise.map { ["--advertise", $0] } ?? []))
            #expect(everywhere.status != 0 && (everywhere.stderr.contains("say with --advertise") || everywhere.stderr.contains("reaches no viewer")),
                    "\(host) \(advertise ?? "-"): \(everywhere.stderr)")
        }
    }

    /// Under `--json`, what a script reads: results as JSON, and errors as one JSON object on
    /// standard error (a file's problems each with its code and field).
    @Test func jsonOutputAndJSONErrors() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-not-a-folder-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let refused = try await vigil("incident", "show", "1", "--data", file.path, "--json")
        #expect(refused.status == 1)
        #expect(((try json(refused.stderr))["error"] as? [String: Any])?["code"] as? String == "data_folder_invalid", "\(refused.stderr)")

        try await withStoppedServerFolder("json") { data in
            let verified = try await vigil("audit", "verify", "--data", data.path, "--json")
            #expect(verified.status == 0, "\(verified.stderr)")
            let chain = try json(verified.stdout)
            #expect(chain["intact"] as? Bool == true && chain["entries"] is Int && chain["checkpoints"] is [Any], "\(verified.stdout)")

            let bad = data.appendingPathComponent("bad.geojson")
            try Data(#"""
                {"type":"FeatureCollection","features":[
                 {"type":"Feature","geometry":{"type":"Point","coordinates":[4.35,95]},"properties":{"id":"a","owner":"pz-5339","kind":"street","place_type":"road","stream":"rtsp://x/a","confidentiality":"public"}},
                 {"type":"Feature","geometry":{"type":"Point","coordinates":[4.35,50.85]},"properties":{"id":"b","owner":"pz-5339","kind":"nope","place_type":"road","stream":"rtsp://x/b","confidentiality":"public"}}]}
                """#.utf8).write(to: bad)
            let imported = try await vigil("cameras", "import", bad.path, "--data", data.path, "--json")
            #expect(imported.status == 1)
            let error = try #require((try json(imported.stderr))["error"] as? [String: Any], "\(imported.stderr)")
            #expect(error["code"] as? String == "registry_invalid")
            let problems = try #require(error["problems"] as? [[String: Any]])
            #expect(problems.count == 2 && problems.allSatisfy { $0["code"] is String && $0["field"] is String }, "\(problems)")

            let good = data.appendingPathComponent("good.geojson")
            try Data(#"""
                {"type":"FeatureCollection","features":[
                 {"type":"Feature","geometry":{"type":"Point","coordinates":[4.3525,50.8467]},"properties":{"id":"json-01","owner":"pz-5339","kind":"street","place_type":"square","stream":"rtsp://x/c","confidentiality":"public"}}]}
                """#.utf8).write(to: good)
            let added = try await vigil("cameras", "import", good.path, "--data", data.path, "--json")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(try json(added.stdout)["imported"] as? Int == 1, "\(added.stdout)")
        }
    }

    /// The march window's horizon and widths are set from the command line, and a bad one is
    /// refused with the setting it names.
    @Test func marchWindowSettingsFromTheCommandLine() async throws {
        try await withServer { data, _ in
            let route = repositoryRoot.appendingPathComponent("fixtures/sources/brussels_demo_routes_osm2013.geojson").path
            func open(_ settings: [String]) async throws -> (ahead: Int, settings: [String: Any]) {
                let opened = try await vigil(["incident", "open", "--kind", "demonstration", "--route", route, "--feature", "2",
                                              "--head", "800", "--tail", "400", "--data", data.path, "--json"] + settings)
                #expect(opened.status == 0, "\(opened.stderr)")
                let snapshot = try json(opened.stdout)
                let cameras = try #require(snapshot["cameras"] as? [[String: Any]], "\(opened.stdout)")
                let march = try #require((snapshot["incident"] as? [String: Any])?["march"] as? [String: Any], "\(opened.stdout)")
                return (cameras.filter { $0["section"] as? String == "ahead" }.count, try #require(march["settings"] as? [String: Any], "\(march)"))
            }
            let standard = try await open([])
            let farther = try await open(["--ahead-meters", "1500", "--width", "80", "--behind-meters", "100"])
            #expect(farther.ahead > standard.ahead, "1,500 m ahead sees more than 300 m: \(farther.ahead) against \(standard.ahead)")
            // The incident says what its window was drawn with: the settings given, the defaults for the rest.
            #expect(standard.settings["ahead_meters"] as? Double == 300 && standard.settings["corridor_width_meters"] as? Double == 60, "\(standard.settings)")
            #expect(farther.settings["ahead_meters"] as? Double == 1500 && farther.settings["corridor_width_meters"] as? Double == 80
                && farther.settings["behind_meters"] as? Double == 100 && farther.settings["side_street_radius_meters"] as? Double == 80, "\(farther.settings)")
            let shown = try await vigil("incident", "open", "--kind", "demonstration", "--route", route, "--feature", "2", "--head", "800",
                                        "--tail", "400", "--ahead-seconds", "120", "--data", data.path)
            #expect(shown.stdout.contains("  window: corridor 60 m, ahead 300 m (or 120 s at the head's speed, if farther), behind 200 m"), "\(shown.stdout)")
            let refused = try await vigil("incident", "open", "--kind", "demonstration", "--route", route, "--feature", "2", "--head", "800",
                                          "--tail", "400", "--ahead-seconds", "5000", "--data", data.path)
            #expect(refused.status == 1 && refused.stderr.contains("march_invalid") && refused.stderr.contains("ahead_seconds"), "\(refused.stderr)")
        }
    }

    /// An incident on the cameras that see a point: its selection is theirs, it is redrawn like
    /// any other, and it survives a restart as what it is.
    @Test func anIncidentOnTheCamerasThatSeeAPoint() async throws {
        let seen = "50.796547,4.399177"  // 10 m in front of pz5339-street-0001
        try await withStoppedServerFolder("sees") { data in
            var id = 0
            try await withServer(data: data) { data, _ in
                let opened = try await vigil("incident", "open", "--kind", "fire", "--sees", seen, "--data", data.path, "--json")
                #expect(opened.status == 0, "\(opened.stderr)")
                let reply = try json(opened.stdout)
                id = try #require((reply["incident"] as? [String: Any])?["id"] as? Int)
                let cameras = try #require(reply["cameras"] as? [[String: Any]])
                #expect(cameras.contains { $0["id"] as? String == "pz5339-street-0001" } && cameras.allSatisfy { $0["reason"] as? String == "sees_point" },
                        "\(cameras)")
                let refused = try await vigil("incident", "open", "--kind", "fire", "--sees", seen, "--radius", "100", "--data", data.path)
                #expect(refused.status != 0, "--sees takes no radius")
            }
            // After a restart the server recomputes it as the cameras that see the point, not a circle.
            try await withServer(data: data) { data, _ in
                let shown = try json(try await vigil("incident", "show", "\(id)", "--data", data.path, "--json").stdout)
                let cameras = shown["cameras"] as? [[String: Any]] ?? []
                #expect(!cameras.isEmpty && cameras.allSatisfy { $0["reason"] as? String == "sees_point" }, "\(cameras)")
                #expect((shown["area"] as? [String: Any])?["type"] as? String == "Point", "the snapshot carries the point: \(shown.keys)")
            }
        }
    }

    /// `vigil bench … --json`: one JSON object per figure on standard output, beside its target
    /// where it has one; headings go to standard error. (A small run: the figures are not looked at.)
    @Test func benchmarkFiguresAsJSON() async throws {
        let bench = try await vigil("bench", "bus", "--requests", "100", "--subscribers", "5", "--events", "1000", "--json")
        #expect(bench.status == 0, "\(bench.stderr)")
        let figures = try bench.stdout.split(separator: "\n").map { try json(String($0)) }
        #expect(figures.count >= 8, "\(bench.stdout)")
        #expect(figures.allSatisfy { $0["figure"] is String && $0["value"] is Double && $0["unit"] is String })
        #expect(figures.contains { $0["target"] != nil && $0["met"] is Bool })
        #expect(bench.stderr.contains("vigil bench bus"), "the heading is on standard error")
    }

    @Test func aDamagedDatabaseIsRefusedWithItsCodeAndLeftAsItWas() async throws {
        try await withStoppedServerFolder("damaged") { data in
            let file = data.appendingPathComponent("vigil.sqlite")
            for journal in ["vigil.sqlite-wal", "vigil.sqlite-shm"] { try? FileManager.default.removeItem(at: data.appendingPathComponent(journal)) }
            let damaged = Data(String(repeating: "not a database ", count: 500).utf8)
            try damaged.write(to: file)
            let served = try await vigil("serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0",
                                         "--media-port", "0", "--http-port", "0", "--console-port", "0")
            #expect(served.status != 0 && served.stderr.contains("database_unusable") && served.stderr.contains("put back a copy"), "\(served.stderr)")
            let verified = try await vigil("audit", "verify", "--data", data.path)
            #expect(verified.status != 0 && verified.stderr.contains("database_unusable"), "\(verified.stderr)")
            #expect(try Data(contentsOf: file) == damaged, "nothing was written over the damaged file")
        }
    }

    @Test func aDamagedCertificateIsRefusedWithItsCode() async throws {
        try await withStoppedServerFolder("damaged-key") { data in
            try Data("garbage\n".utf8).write(to: data.appendingPathComponent("keys/server.key_secret"))
            let served = try await vigil("serve", "--data", data.path, "--command-port", "0", "--event-port", "0", "--metrics-port", "0",
                                         "--media-port", "0", "--http-port", "0", "--console-port", "0")
            #expect(served.status != 0 && served.stderr.contains("certificate_invalid") && served.stderr.contains("server.key_secret"), "\(served.stderr)")
        }
        try await withServer { data, _ in
            try Data("public-key = \"short\"\n".utf8).write(to: data.appendingPathComponent("keys/agencies/pz-5339.key_secret"))
            let listed = try await vigil("grant", "list", "--data", data.path, "--agency", "pz-5339")
            #expect(listed.status == 1 && listed.stderr.contains("certificate_invalid"), "\(listed.stderr)")
            let unknown = try await vigil("grant", "list", "--data", data.path, "--agency", "nobody")
            #expect(unknown.status == 1 && unknown.stderr.contains("key_missing"), "\(unknown.stderr)")
        }
    }

    @Test func consolePortMinusOneServesNoConsole() async throws {
        // As the help says it: `--console-port -1`, not only `--console-port=-1`.
        try await withServer(arguments: ["--console-port", "-1"]) { _, server in
            let ready = try json(server.lines[0])
            #expect(ready["console"] == nil || ready["console"] is NSNull, "\(ready)")
            #expect(ready["command"] is String)
        }
    }

    @Test func everyEndpointWorksOnIPv6() async throws {
        try await withServer(arguments: ["--host", "::1"]) { data, server in
            let ready = try json(server.lines[0])
            for endpoint in ["command", "events", "media"] {
                #expect((ready[endpoint] as? String)?.hasPrefix("tcp://[::1]:") == true, "\(endpoint): \(ready)")
            }
            #expect((ready["http"] as? String)?.hasPrefix("http://[::1]:") == true && (ready["metrics"] as? String)?.hasPrefix("http://[::1]:") == true)
            // A client command over the bus, and the metrics over HTTP.
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "200", "--data", data.path)
            #expect(opened.status == 0, "\(opened.stderr)")
            let metrics = try await run(python, ["-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())",
                                                 try #require(ready["metrics"] as? String)])
            #expect(metrics.status == 0 && metrics.stdout.contains("vigil_bus_messages_in_total"), "\(metrics.stderr)")
            // A link's address is an IPv6 URL a player opens.
            let head = try await run(python, ["-c", "import sys, urllib.request\ntry: urllib.request.urlopen(sys.argv[1], timeout=10)\nexcept urllib.error.HTTPError as e: print(e.code)",
                                              try #require(ready["http"] as? String) + "/views/none/stream.ts"])
            #expect(head.stdout == "404", "\(head.stdout) \(head.stderr)")
        }
    }

    @Test func logLinesAreJSONOnRequest() async throws {
        try await withServer(arguments: ["--log-format", "json"]) { _, server in
            try await server.waitForStandardError(containing: "registry loaded")
            let lines = server.standardError.split(separator: "\n").map(String.init)
            #expect(!lines.isEmpty)
            for line in lines {
                let entry = try json(line)
                #expect(entry["level"] is String && entry["message"] is String && entry["label"] is String, "\(line)")
                #expect((entry["time"] as? String)?.hasSuffix("Z") == true, "RFC 3339 in UTC: \(line)")
            }
        }
    }
}
