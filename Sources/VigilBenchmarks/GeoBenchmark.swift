import Foundation
import Geo
import RegistryFixtures

/// `vigil bench geo`: the geospatial engine's figures beside the targets of its issue.
public struct GeoBenchmark {
    let fixtures: URL
    let queries: Int
    let largeCount: Int
    let python: String

    /// - Parameters:
    ///   - fixtures: the fixtures folder (the Brussels registry and the demonstration routes).
    ///   - queries: queries per round; `largeCount`: cameras of the large registry; `python`: for shapely beside.
    public init(fixtures: URL, queries: Int, largeCount: Int, python: String) {
        (self.fixtures, self.queries, self.largeCount, self.python) = (fixtures, queries, largeCount, python)
    }

    public func run() throws {
        var random = SystemRandomNumberGenerator()
        let brussels = try CameraRegistryFile.read(contentsOf: fixtures.appendingPathComponent("brussels/cameras.geojson"))
        let projection = try Projection(crs: .belgianLambert2008)
        Measurement.say("vigil bench geo: each figure is the median of 5 rounds of \(queries) queries; \(ProcessInfo.processInfo.activeProcessorCount) cores")

        Measurement.say("\nBrussels fixture, \(brussels.count) cameras")
        let index = try CameraIndex(cameras: brussels, projection: projection)
        let centres = (0..<queries).map { _ in
            try! GeoPoint(lat: Double.random(in: 50.81...50.88, using: &random), lon: Double.random(in: 4.31...4.42, using: &random))
        }
        let radius = try Measurement.medianP50(centres) { _ = try index.within(radiusMeters: 300, of: $0) }
        print(Measurement.row("radius 300 m, p50", radius, unit: "µs", target: 5))
        print(Measurement.row("radius 300 m, p99", radius.p99, unit: "µs", target: nil))
        let sees = try Measurement.medianP50(centres) { _ = try index.seeing($0) }
        print(Measurement.row("sees a point, p50", sees, unit: "µs", target: 20))
        let route = try demonstrationRoute()
        let corridor = try Measurement.medianP50(Array(repeating: route, count: max(100, queries / 10))) {
            _ = try index.alongRoute($0, widthMeters: 60)
        }
        print(Measurement.row("5.3 km route corridor, 60 m wide, p50", corridor, unit: "µs", target: 150))
        var march = try MarchTracker(
            index: index, route: route,
            roads: try RoadNetwork(contentsOf: fixtures.appendingPathComponent("sources/brussels_roads_major_osm2013.geojson"), projection: projection),
            configuration: MarchConfiguration())
        // The head walks the route in 5 m steps, a fix every 4 s, the tail 500 m behind it.
        let steps = (0..<Int(march.routeLengthMeters / 5)).map { Double($0) * 5 }
        var clock = Date(timeIntervalSince1970: 0)
        let moves = try Measurement.medianP50(steps) { head in
            clock.addTimeInterval(4)
            _ = try march.update(head: .measure(head), tail: .measure(max(0, head - 500)), at: clock)
        }
        print(Measurement.row("march-window reselection after a head move, p50", moves, unit: "µs", target: 200))
        print(Measurement.row("march-window reselection, p99", moves.p99, unit: "µs", target: nil))

        Measurement.say("\nGenerated registry, \(largeCount) cameras uniform over 100 km × 100 km around Brussels (100 per km²)")
        let large = generated(count: largeCount, around: try projection.metric(BrusselsRegistryGenerator.grandPlace), projection: projection)
        let heapBefore = Measurement.residentBytes()
        let buildStart = ContinuousClock.now
        let largeIndex = try CameraIndex(cameras: large, projection: projection)
        _ = try largeIndex.within(radiusMeters: 1, of: large[0].position)  // GEOS builds the trees on first query
        let build = ContinuousClock.now - buildStart
        let bytesPerCamera = Double(Measurement.residentBytes() - heapBefore) / Double(large.count)
        print(Measurement.row("index build", build / .seconds(1), unit: "s", target: 3))
        print(Measurement.row("index memory per camera", bytesPerCamera, unit: "bytes", target: 400))
        let largeCentres = (0..<queries).map { _ in large[Int.random(in: 0..<large.count, using: &random)].position }
        let largeRadius = try Measurement.medianP50(largeCentres) { _ = try largeIndex.within(radiusMeters: 300, of: $0) }
        let vigilP50 = largeRadius.p50
        print(Measurement.row("radius 300 m, p50", largeRadius, unit: "µs", target: 50))
        print(Measurement.row("radius 300 m, p99", largeRadius.p99, unit: "µs", target: nil))

        Measurement.say("\nThe same \(largeCount)-camera radius queries through shapely's STRtree (Python, also GEOS)")
        guard let shapely = try runShapely(cameras: large, centres: largeCentres, projection: projection) else {
            Measurement.say("  shapely not available (\(python) with shapely); skipped")
            return
        }
        print(Measurement.row("shapely index build", shapely.build, unit: "s", target: nil))
        print(Measurement.row("shapely radius 300 m, p50", shapely.p50, unit: "µs", target: nil))
        print(Measurement.row("vigil faster than shapely at p50", shapely.p50 / vigilP50, unit: "×", target: nil))
    }

    private func demonstrationRoute() throws -> GeoJSONGeometry {
        // Gare du Midi → Rond-point Schuman, 5.3 km, the third demonstration route.
        try GeoJSONGeometry.read(contentsOf: fixtures.appendingPathComponent("sources/brussels_demo_routes_osm2013.geojson").path, feature: 2)
    }

    /// Cameras at uniformly random positions, with random headings and fields of view.
    private func generated(count: Int, around centre: MetricPoint, projection: Projection) -> [Camera] {
        var random = SeededRandom(seed: 1_000_000)
        return (0..<count).map { number in
            let point = MetricPoint(x: centre.x + random.uniform(-50_000...50_000), y: centre.y + random.uniform(-50_000...50_000))
            let position = try! projection.geographic(point)
            let omni = number % 5 == 0
            return Camera(
                id: "gen-\(number)", owner: "pz-5339", kind: .street, placeType: "road", position: position,
                headingDegrees: omni ? nil : random.uniform(0...359), fieldOfViewDegrees: omni ? nil : random.uniform(40...100),
                rangeMeters: random.uniform(30...150), stream: "", confidentiality: .public, tags: [])
        }
    }

    private func runShapely(cameras: [Camera], centres: [GeoPoint], projection: Projection) throws -> (build: Double, p50: Double)? {
        let folder = try makeBenchFolder("shapely")
        defer { try? FileManager.default.removeItem(at: folder) }
        let points = folder.appendingPathComponent("points.csv"), queries = folder.appendingPathComponent("queries.csv")
        try cameras.map { let m = try projection.metric($0.position); return "\(m.x),\(m.y)" }.joined(separator: "\n")
            .write(to: points, atomically: false, encoding: .utf8)
        try centres.map { let m = try projection.metric($0); return "\(m.x),\(m.y),300" }.joined(separator: "\n")
            .write(to: queries, atomically: false, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [fixtures.deletingLastPathComponent().appendingPathComponent("Benchmarks/shapely_radius.py").path, points.path, queries.path]
        let output = Pipe()
        process.standardOutput = output
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let build = result["build_s"] as? Double, let p50 = result["p50_us"] as? Double
        else { return nil }
        return (build, p50)
    }
}
