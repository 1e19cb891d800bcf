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
}
