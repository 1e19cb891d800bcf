import Foundation
import Testing

@Suite("vigil cameras", .serialized, .timeLimit(.minutes(3)))
struct CamerasCommandTests {

    /// 650 random queries of every kind on the real Brussels fixture, checked against
    /// GeographicLib's geodesics (Tests/python/geo_oracle.py).
    @Test func selectionsAgreeWithTheGeodesicOracle() async throws {
        let oracle = try await run(python, [
            repositoryRoot.appendingPathComponent("Tests/python/geo_oracle.py").path, vigilBinary.path,
            repositoryRoot.appendingPathComponent("fixtures/brussels/cameras.geojson").path,
            repositoryRoot.appendingPathComponent("fixtures/sources/brussels_demo_routes_osm2013.geojson").path,
        ], timeout: .seconds(150))
        #expect(oracle.status == 0, "\(oracle.stdout)\n\(oracle.stderr)")
        #expect(oracle.stdout.contains("650 passed, 0 failed"))
    }

    @Test func batchAnswersEveryLineAndReportsBadOnes() async throws {
        let batch = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-batch-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: batch) }
        try Data("""
            {"type":"radius","at":{"lat":50.8453,"lon":4.3571},"meters":200,"filter":{"owners":["stib"],"limit":3}}
            not json
            {"type":"radius","at":{"lat":50.8453,"lon":4.3571},"meters":-4}

            {"type":"nearest","at":{"lat":50.8453,"lon":4.3571},"count":2}
            """.utf8).write(to: batch)
        let answered = try await vigil("cameras", "select", "--batch", batch.path)
        #expect(answered.status == 0, "\(answered.stderr)")
        let lines = try answered.stdout.split(separator: "\n").map { try json(String($0)) }
        #expect(lines.map { $0["line"] as? Int } == [1, 2, 3, 5])
        let first = try #require(lines[0]["cameras"] as? [[String: Any]])
        #expect(first.count == 3 && first.allSatisfy { $0["owner"] as? String == "stib" })
        #expect((lines[1]["error"] as? [String: Any])?["code"] as? String == "query_invalid")
        #expect((lines[2]["error"] as? [String: Any])?["code"] as? String == "radius_invalid")
        #expect((lines[3]["cameras"] as? [Any])?.count == 2)
    }

    @Test func selectRefusesBadInputClearly() async throws {
        let both = try await vigil("cameras", "select", "--sees", "50.85,4.35", "--near", "50.85,4.35", "--radius", "100")
        #expect(both.status != 0 && both.stderr.contains("exactly one"))
        let outside = try await vigil("cameras", "select", "--sees", "43.30,5.37")
        #expect(outside.status == 1 && outside.stderr.contains("coordinate_outside_crs"))
        let missingFile = try await vigil("cameras", "select", "--area", "/nonexistent.geojson")
        #expect(missingFile.status == 1 && missingFile.stderr.contains("geometry_unreadable"))
        let marseille = try await vigil("cameras", "select", "--region", "marseille", "--near", "43.35,5.40", "--radius", "5000", "--json")
        #expect(marseille.status == 0, "\(marseille.stderr)")
    }

    /// The same queries asked of a running server (`--over-bus`, `cameras.select`): an agency
    /// gets only what it may watch, confidential cameras without a position; a batch goes on past
    /// a bad line; and what cannot go over the bus is refused before anything is sent.
    @Test func overTheBusAnAgencyGetsOnlyWhatItMayWatch() async throws {
        try await withServer { data, _ in
            let near = ["--near", "50.8453,4.3571", "--radius", "1500", "--json"]
            let onThisHost = try await vigil(["cameras", "select", "--data", data.path] + near)
            let asked = try await vigil(["cameras", "select", "--over-bus", "--data", data.path, "--agency", "stib"] + near)
            #expect(onThisHost.status == 0 && asked.status == 0, "\(onThisHost.stderr) \(asked.stderr)")
            let all = try #require(try json(onThisHost.stdout)["cameras"] as? [[String: Any]])
            let seen = try #require(try json(asked.stdout)["cameras"] as? [[String: Any]], "\(asked.stdout)")
            let allIds = Set(all.compactMap { $0["id"] as? String }), seenIds = seen.compactMap { $0["id"] as? String }
            #expect(!seen.isEmpty && Set(seenIds).isSubset(of: allIds) && seenIds.count < allIds.count, "\(seenIds.count) of \(allIds.count)")
            #expect(seen.contains { $0["owner"] as? String == "stib" } && all.contains { $0["owner"] as? String != "stib" })
            // The server's rule for what it shows: no position and a 500 m step for a confidential camera.
            #expect(seen.allSatisfy { camera in
                camera["position"] != nil || (camera["distance_meters"] as? Double ?? 1).truncatingRemainder(dividingBy: 500) == 0
            }, "\(seen.filter { $0["position"] == nil })")
            let text = try await vigil(["cameras", "select", "--over-bus", "--data", data.path, "--agency", "stib", "--near", "50.8453,4.3571", "--radius", "1500"])
            #expect(text.stdout.hasPrefix("\(seen.count) camera"), "\(text.stdout.prefix(200)) \(text.stderr)")

            let batch = data.appendingPathComponent("queries.jsonl")
            try Data("""
                {"type":"radius","at":{"lat":50.8453,"lon":4.3571},"meters":1500}
                not json
                {"type":"radius","at":{"lat":50.8453,"lon":4.3571},"meters":1500,"filter":{"limit":0}}
                """.utf8).write(to: batch)
            let batched = try await vigil("cameras", "select", "--over-bus", "--data", data.path, "--agency", "stib", "--batch", batch.path)
            #expect(batched.status == 0, "\(batched.stderr)")
            let lines = try batched.stdout.split(separator: "\n").map { try json(String($0)) }
            #expect(lines.map { $0["line"] as? Int } == [1, 2, 3], "\(batched.stdout)")
            #expect((lines.first?["cameras"] as? [Any])?.count == seen.count)
            #expect((lines.dropFirst().first?["error"] as? [String: Any])?["code"] as? String == "query_invalid")
            #expect((lines.last?["error"] as? [String: Any])?["code"] as? String == "limit_invalid", "the refusal, on its line: \(lines.last ?? [:])")

            let march = try await vigil("cameras", "select", "--over-bus", "--data", data.path, "--route", batch.path, "--width", "60", "--head", "0", "--tail", "0")
            #expect(march.status == 64 && march.stderr.contains("--over-bus"), "\(march.status) \(march.stderr)")
            let stray = try await vigil("cameras", "select", "--agency", "stib", "--near", "50.8453,4.3571", "--radius", "100")
            #expect(stray.status == 64 && stray.stderr.contains("go with --over-bus"), "\(stray.stderr)")
            let stranger = try await vigil(["cameras", "select", "--over-bus", "--data", data.path, "--agency", "nobody"] + near)
            #expect(stranger.status == 1 && stranger.stderr.contains("key_missing"), "\(stranger.stderr)")
        }
    }

    @Test func aRunningServerPicksUpImportedCamerasOnSIGHUP() async throws {
        try await withServer { data, server in
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-hup-\(UUID().uuidString).csv")
            defer { try? FileManager.default.removeItem(at: file) }
            try Data("""
                id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags
                forest-dome,pz-5342,street,square,50.8000,4.4100,,,80,rtsp://example/dome,public,
                """.utf8).write(to: file)
            // An incident already open there has no camera yet; the reload gives it the new one.
            let before = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8001,4.4100", "--radius", "50", "--data", data.path, "--json")
            let earlier = try #require((try json(before.stdout)["incident"] as? [String: Any])?["id"] as? Int, "\(before.stdout) \(before.stderr)")
            #expect(try #require(try json(before.stdout)["cameras"] as? [[String: Any]]).isEmpty)
            #expect(try await vigil("cameras", "import", file.path, "--data", data.path).status == 0)
            server.kill(SIGHUP)
            try await server.waitForStandardError(containing: "selections recomputed")
            let opened = try await vigil("incident", "open", "--kind", "fire", "--at", "50.8001,4.4100", "--radius", "50", "--data", data.path, "--json")
            let cameras = try #require(try json(opened.stdout)["cameras"] as? [[String: Any]])
            #expect(cameras.map { $0["id"] as? String } == ["forest-dome"])
            let shown = try await vigil("incident", "show", "\(earlier)", "--data", data.path, "--json")
            #expect((try json(shown.stdout)["cameras"] as? [[String: Any]])?.map { $0["id"] as? String } == ["forest-dome"], "\(shown.stdout)")
        }
    }

    @Test func importIsAllOrNothingAndExportRoundTrips() async throws {
        try await withServer { data, server in
            server.kill(SIGTERM)
            _ = try await server.waitForExit()
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-import-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let bad = folder.appendingPathComponent("bad.csv")
            try Data("""
                id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags
                new-1,stib,metro,hall,50.85,4.35,,,40,rtsp://x/1,public,a;b
                new-2,stib,metro,hall,95,4.35,,,40,rtsp://x/2,public,
                new-3,nobody,street,road,50.85,4.35,10,60,80,rtsp://x/3,public,
                new-1,stib,bus,hall,50.85,4.35,,,40,rtsp://x/4,public,
                "unterminated,stib,metro,hall,50.85,4.35,,,40,rtsp://x/5,public,
                """.utf8).write(to: bad)
            let refused = try await vigil("cameras", "import", bad.path, "--data", data.path)
            #expect(refused.status == 1)
            for expected in ["line 3", "line 5.kind", "line 6", "3 problems"] {
                #expect(refused.stderr.contains(expected), "\(refused.stderr)")
            }
            let good = folder.appendingPathComponent("good.csv")
            try Data("""
                id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags
                new-1,stib,metro,hall,50.85,4.35,,,40,rtsp://x/1,public,a;b
                new-3,nobody,street,road,50.85,4.35,10,60,80,rtsp://x/3,public,
                """.utf8).write(to: good)
            let unknownOwner = try await vigil("cameras", "import", good.path, "--data", data.path)
            #expect(unknownOwner.status == 1 && unknownOwner.stderr.contains("owner_unknown"))

            let exported = folder.appendingPathComponent("export.geojson")
            #expect(try await vigil("cameras", "export", "--data", data.path, "-o", exported.path).status == 0)
            let before = try #require(try json(String(decoding: Data(contentsOf: exported), as: UTF8.self))["features"] as? [Any])
            #expect(before.count == 4_684)  // nothing of the refused files was imported

            try Data("""
                id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags
                new-1,stib,metro,hall,50.85,4.35,,,40,rtsp://x/1,public,a;b
                """.utf8).write(to: good)
            let imported = try await vigil("cameras", "import", good.path, "--data", data.path)
            #expect(imported.status == 0, "\(imported.stderr)")
            #expect(try await vigil("cameras", "export", "--data", data.path, "-o", exported.path).status == 0)
            let after = try json(String(decoding: Data(contentsOf: exported), as: UTF8.self))
            let features = try #require(after["features"] as? [[String: Any]])
            #expect(features.count == 4_685)
            let added = try #require(features.first { ($0["properties"] as? [String: Any])?["id"] as? String == "new-1" })
            #expect((added["properties"] as? [String: Any])?["tags"] as? [String] == ["a", "b"])
            let again = try await vigil("cameras", "import", good.path, "--data", data.path)
            #expect(again.status == 1 && again.stderr.contains("camera_exists"))
        }
    }
}
