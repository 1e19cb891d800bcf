import Foundation
import Testing

/// The command line's own promises: its version, a clear error for every kind of bad input it
/// can see before starting, IPv6 on every endpoint, and JSON log lines.
@Suite("vigil command line", .serialized, .timeLimit(.minutes(2)))
struct CommandLineTests {
    @Test func printsItsVersion() async throws {
        let version = try await vigil("--version")
        #expect(version.status == 0 && version.stdout.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil, "\(version.stdout)")
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
                                     "--media-port", "0", "--http-port", "0")
        #expect(served.status != 0 && served.stderr.contains("data_folder_invalid"), "\(served.stderr)")

        // A host that is a name (or a typo): refused before the folder is made.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-unknown-host-\(UUID().uuidString)")
        let unknown = try await vigil("serve", "--host", "nonexistent.invalid", "--data", folder.path)
        #expect(unknown.status != 0 && unknown.stderr.contains("is not an IPv4 or IPv6 address"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
        let relay = try await vigil("relay", "--host", "localhost", "--coordinator", "tcp://127.0.0.1:7710", "--server-key", "k", "--cert", "c")
        #expect(relay.status != 0 && relay.stderr.contains("is not an IPv4 or IPv6 address"), "\(relay.stderr)")
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
