import Foundation
import Testing

/// Brief requirement 11: a server killed with SIGKILL at any moment keeps every acknowledged
/// change; journals continue their sequence numbers; open incidents recompute their selections.
@Suite("vigil recovery after SIGKILL", .serialized, .timeLimit(.minutes(3)))
struct RecoveryTests {
    /// What the test knows of an incident: the last acknowledged state, and whether a change of it
    /// was in flight when the server died (then it may or may not have been committed).
    struct Known {
        var sequence: Int
        var status: String
        var inFlight = false
    }

    private func incidentOf(_ output: String) throws -> [String: Any] {
        let object = try json(output)
        return try #require((object["incident"] as? [String: Any]))
    }

    @Test func everyAcknowledgedChangeSurvivesKillsInALoop() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-loop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        var known: [Int: Known] = [:]
        var random = SystemRandomNumberGenerator()
        let path = data.path

        /// One random change as command-line arguments: open, redraw, update or close.
        func change() -> [String] {
            let open = known.filter { $0.value.status == "open" }.keys.sorted()
            let lat = String(format: "50.84%02d", Int.random(in: 0...99, using: &random))
            let lon = String(format: "4.35%02d", Int.random(in: 0...99, using: &random))
            guard let id = open.randomElement(using: &random), open.count >= 2 || Bool.random(using: &random) else {
                return ["incident", "open", "--kind", "fire", "--at", "\(lat),\(lon)", "--radius", "150", "--data", path, "--json"]
            }
            switch Int.random(in: 0..<4, using: &random) {
            case 0: return ["incident", "redraw", "\(id)", "--at", "\(lat),\(lon)", "--radius", "\(Int.random(in: 50...300, using: &random))", "--data", path, "--json"]
            case 1: return ["incident", "update", "\(id)", "--ref", "dispatch=CAD-\(UInt32.random(in: 0...UInt32.max, using: &random))", "--data", path, "--json"]
            case 2: return ["incident", "close", "\(id)", "--data", path, "--json"]
            default: return ["incident", "open", "--kind", "traffic", "--at", "\(lat),\(lon)", "--radius", "100", "--data", path, "--json"]
            }
        }

        /// Records an acknowledged reply; every reply states the incident's id, status and sequence.
        func acknowledge(_ output: String, expectedSequence: Int?) throws {
            let incident = try incidentOf(output)
            let id = try #require(incident["id"] as? Int)
            let sequence = try #require(incident["sequence"] as? Int)
            if let expectedSequence { #expect(sequence == expectedSequence, "the journal of incident \(id) continues without a gap") }
            known[id] = Known(sequence: sequence, status: try #require(incident["status"] as? String))
        }

        func target(of arguments: [String]) -> Int? {
            arguments[1] == "open" ? nil : Int(arguments[2])
        }

        for round in 0..<6 {
            try await withServer(data: data) { _, server in
                // Everything acknowledged before the last kill is there.
                for (id, expected) in known.sorted(by: { $0.key < $1.key }) {
                    let shown = try await vigil("incident", "show", "\(id)", "--data", path, "--json")
                    #expect(shown.status == 0, "round \(round): \(shown.stderr)")
                    let incident = try incidentOf(shown.stdout)
                    let sequence = try #require(incident["sequence"] as? Int)
                    let status = try #require(incident["status"] as? String)
                    if expected.inFlight {
                        #expect(sequence == expected.sequence || sequence == expected.sequence + 1, "round \(round), incident \(id)")
                    } else {
                        #expect(sequence == expected.sequence && status == expected.status, "round \(round), incident \(id): \(sequence) \(status)")
                    }
                    known[id] = Known(sequence: sequence, status: status)
                }
                for _ in 0..<3 {
                    let arguments = change()
                    let done = try await run(vigilBinary, arguments)
                    #expect(done.status == 0, "\(arguments): \(done.stderr)")
                    try acknowledge(done.stdout, expectedSequence: target(of: arguments).map { known[$0]!.sequence + 1 })
                }
                // One more change in flight while the server is killed, after a random delay.
                let arguments = change()
                let inFlight = try await RunningProcess(vigilBinary, arguments + ["--timeout", "2"])
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...60, using: &random)))
                server.kill(SIGKILL)
                _ = try await server.waitForExit()
                if try await inFlight.waitForExit() == 0 {
                    while !inFlight.outputEnded { try await Task.sleep(for: .milliseconds(10)) }
                    try acknowledge(inFlight.lines.joined(separator: "\n"), expectedSequence: nil)
                } else if let id = target(of: arguments) {
                    known[id]?.inFlight = true
                }
            }
        }
        #expect(known.count >= 2)
        let verified = try await vigil("audit", "verify", "--data", path)
        #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout) \(verified.stderr)")
    }

    @Test func openIncidentsRecomputeTheirSelectionsOnRestart() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-recompute-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        var id = 0
        var sequence = 0
        try await withServer(data: data) { data, server in
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8300,4.4000", "--radius", "120", "--data", data.path, "--json")
            let incident = try incidentOf(opened.stdout)
            id = try #require(incident["id"] as? Int)
            sequence = try #require(incident["sequence"] as? Int)
            server.kill(SIGKILL)
            _ = try await server.waitForExit()
        }
        // While the server is down, an owner adds a camera at the incident.
        let file = data.appendingPathComponent("new-camera.geojson")
        try Data(#"""
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.4001, 50.8301]},
             "properties": {"id": "pz5343-street-new", "owner": "pz-5343", "kind": "street", "place_type": "road", "range_m": 40,
                            "stream": "sim://pz5343-street-new", "confidentiality": "public", "tags": []}}]}
            """#.utf8).write(to: file)
        let imported = try await vigil("cameras", "import", file.path, "--data", data.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        try await withServer(data: data) { data, _ in
            let shown = try await vigil("incident", "show", "\(id)", "--data", data.path, "--json")
            let snapshot = try json(shown.stdout)
            let cameras = (snapshot["cameras"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            #expect(cameras.contains("pz5343-street-new"))
            #expect((snapshot["incident"] as? [String: Any])?["sequence"] as? Int == sequence + 1, "the recomputation is journalled")
        }
    }

    /// Whether this process may mount a tmpfs (root, outside a container that forbids it): tried once.
    static let mayMountTmpfs: Bool = {
        guard getuid() == 0 else { return false }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-mount-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        guard (try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)) != nil else { return false }
        return succeeds("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", folder.path]) && succeeds("/bin/umount", [folder.path])
    }()

    /// Runs a tool to its end, synchronously (where no `await` may be: a trait, a `defer`).
    static func succeeds(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// A disk that fills up: every change, and every read that is audited, is refused with
    /// `storage_failure`; the server goes on serving what it holds; a view that ends meanwhile
    /// has its end recorded once there is room again, at the moment it ended; and nothing stored
    /// before is lost (a SIGKILL and a restart show it, with the audit chain intact). The data
    /// folder is on a 64 MiB tmpfs, which only root may mount.
    @Test(.enabled(if: Self.mayMountTmpfs, "mounts a small tmpfs, which needs root (as CI runs) with the right to mount"))
    func aFullDiskRefusesWithStorageFailureAndLosesNothing() async throws {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-e2e-full-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: mountPoint) }
        let mounted = try await run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mountPoint.path])
        try #require(mounted.status == 0, "\(mounted.stderr)")
        defer { _ = Self.succeeds("/bin/umount", ["--lazy", mountPoint.path]) }
        let data = mountPoint.appendingPathComponent("data")
        let filler = mountPoint.appendingPathComponent("filler")
        try await withServer(data: data) { _, server in
            server.kill(SIGTERM)
            _ = try await server.waitForExit()
        }
        try await addTestCameras(to: data)
        var kept = (id: 0, sequence: 0)
        var afterID = 0
        var (fullSince, roomAgain) = (Date(), Date())
        func records() async throws -> [[String: Any]] {
            let exported = try await vigil("audit", "export", "--data", data.path)
            return try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
        }
        func time(_ record: [String: Any]) -> Date? { (record["at"] as? String).flatMap { try? Date($0, strategy: .iso8601) } }
        try await withServer(data: data) { data, server in
            #expect(try await vigil("user", "add", "pz.viewer", "--name", "V", "--badge", "B-1", "--role", "operator", "--data", data.path, "--agency", "pz-5339").status == 0)
            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "30",
                                         "--data", data.path, "--agency", "pz-5339", "--json")
            try #require(opened.status == 0, "\(opened.stderr)")
            let incident = try incidentOf(opened.stdout)
            kept = (try #require(incident["id"] as? Int), try #require(incident["sequence"] as? Int))
            // A view that will end while the disk is full.
            let watching = try await RunningProcess(vigilBinary, [
                "watch", "--incident", "\(kept.id)", "--camera", "pz5339-sim-01", "--reason", "public-order", "--text", "Watching the square",
                "--seconds", "3", "-o", mountPoint.appendingPathComponent("watched.ts").path, "--data", data.path, "--agency", "pz-5339", "--user", "pz.viewer",
            ])
            func openViews() async throws -> [[String: Any]]? {
                let listed = try await vigil("view", "list", "--incident", "\(kept.id)", "--data", data.path, "--agency", "pz-5339", "--json")
                guard listed.status == 0 else { return nil }
                return try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
            }
            let started = ContinuousClock.now
            while try await openViews()?.isEmpty != false, ContinuousClock.now - started < .seconds(30) { try await Task.sleep(for: .milliseconds(100)) }

            // The disk fills up (dd stops at "No space left on device").
            let filled = try await run(URL(fileURLWithPath: "/bin/dd"), ["if=/dev/zero", "of=\(filler.path)", "bs=1M", "count=100"])
            #expect(filled.status != 0 && filled.stderr.contains("No space left"), "\(filled.stderr)")
            fullSince = Date()
            for refused in [
                ["incident", "open", "--kind", "fire", "--at", "50.8500,4.3600", "--radius", "100"],
                ["incident", "redraw", "\(kept.id)", "--at", "50.8470,4.3530", "--radius", "120"],
                ["view", "list", "--incident", "\(kept.id)"],
            ] {
                let answer = try await vigil(refused + ["--data", data.path, "--agency", "pz-5339"])
                #expect(answer.status == 1 && answer.stderr.contains("storage_failure"), "\(refused): \(answer.stderr)")
            }
            let shown = try await vigil("incident", "show", "\(kept.id)", "--data", data.path, "--agency", "pz-5339", "--json")
            #expect(try incidentOf(shown.stdout)["sequence"] as? Int == kept.sequence, "what was stored is still read: \(shown.stderr)")
            // The view ends (its viewer's seconds are up) while nothing can be written.
            _ = try await watching.waitForExit()
            try await Task.sleep(for: .seconds(1))
            #expect(server.isRunning)

            // Room again: the server goes on, and the view's end is recorded.
            try FileManager.default.removeItem(at: filler)
            roomAgain = Date()
            let after = try await vigil("incident", "open", "--kind", "traffic", "--at", "50.8500,4.3600", "--radius", "100", "--data", data.path, "--json")
            #expect(after.status == 0, "\(after.stderr)")
            afterID = try #require(try incidentOf(after.stdout)["id"] as? Int)
            let waiting = ContinuousClock.now
            while try await openViews()?.isEmpty != true, ContinuousClock.now - waiting < .seconds(60) { try await Task.sleep(for: .milliseconds(200)) }
            #expect(try await openViews()?.isEmpty == true, "the view that ended is no longer listed as watched")
            // The clients that connected while the disk was full are in the log too, at their moment.
            func authenticatedWhileFull() async throws -> Bool {
                try await records().contains { $0["action"] as? String == "auth.accepted" && time($0).map { $0 > fullSince && $0 < roomAgain } == true }
            }
            while try await !authenticatedWhileFull(), ContinuousClock.now - waiting < .seconds(90) { try await Task.sleep(for: .milliseconds(500)) }
            #expect(try await authenticatedWhileFull(), "an authentication made while the disk was full is recorded once there is room")
            server.kill(SIGKILL)
            _ = try await server.waitForExit()
        }
        try await withServer(data: data) { data, _ in
            let shown = try await vigil("incident", "show", "\(kept.id)", "--data", data.path, "--agency", "pz-5339", "--json")
            #expect(try incidentOf(shown.stdout)["sequence"] as? Int == kept.sequence, "the refused redraw left the incident as it was")
            let later = try await vigil("incident", "show", "\(afterID)", "--data", data.path, "--json")
            #expect(try incidentOf(later.stdout)["kind"] as? String == "traffic", "the change made once the disk had room survived the kill: \(later.stderr)")
            let logged = try await records()
            let stopped = try #require(logged.first { $0["action"] as? String == "view.stopped" }, "\(logged.map { $0["action"] })")
            let stoppedAt = try #require(time(stopped), "\(stopped)")
            #expect(stoppedAt < roomAgain, "the end is recorded at the moment the view ended, not when it could be written: \(stoppedAt) \(roomAgain)")
            #expect(stopped["reason"] as? String != "server_restarted", "\(stopped)")
            let verified = try await vigil("audit", "verify", "--data", data.path)
            #expect(verified.status == 0 && verified.stdout.contains("intact"), "\(verified.stdout) \(verified.stderr)")
        }
    }
}
