import Foundation
import Testing
@testable import Geo

/// A camera looking along `heading` with a field of view, `range` metres deep.
private func directed(_ id: String, _ lat: Double, _ lon: Double, heading: Double?, fov: Double?, range: Double,
                      owner: String = "stib", kind: CameraKind = .metro, tags: [String] = []) throws -> Camera {
    Camera(id: id, owner: owner, kind: kind, placeType: "platform", position: try GeoPoint(lat: lat, lon: lon),
           headingDegrees: heading, fieldOfViewDegrees: fov, rangeMeters: range, stream: "sim://\(id)",
           confidentiality: .public, tags: tags)
}

private func index(_ cameras: [Camera]) throws -> CameraIndex {
    try CameraIndex(cameras: cameras, projection: try Projection(crs: .belgianLambert2008))
}

private let centre = try! GeoPoint(lat: 50.8467, lon: 4.3525)

private func polygon(_ ring: [(Double, Double)]) -> GeoJSONGeometry {
    GeoJSONGeometry(type: "Polygon", coordinates: .list([.list(ring.map { .position([$0.1, $0.0]) })]))
}

private func line(_ points: [(Double, Double)]) -> GeoJSONGeometry {
    GeoJSONGeometry(type: "LineString", coordinates: .list(points.map { .position([$0.1, $0.0]) }))
}

@Suite("Selections")
struct SelectionTests {
    @Test func coverageSectorContainsWhatTheCameraSees() {
        let sector = CoverageSector(apex: MetricPoint(x: 0, y: 0), heading: 90, fieldOfView: 60, range: 100)
        #expect(sector.contains(MetricPoint(x: 50, y: 0)))  // straight ahead (east)
        #expect(sector.contains(MetricPoint(x: 50, y: 28)))  // 29 degrees off axis
        #expect(!sector.contains(MetricPoint(x: 50, y: 30)))  // 31 degrees off axis
        #expect(!sector.contains(MetricPoint(x: 101, y: 0)))  // beyond range
        #expect(!sector.contains(MetricPoint(x: -10, y: 0)))  // behind
        let box = sector.bounds
        #expect(box.minX == 0 && abs(box.maxX - 100) < 1e-9 && abs(box.maxY - 50) < 1e-9 && abs(box.minY + 50) < 1e-9)
        let dome = CoverageSector(apex: MetricPoint(x: 0, y: 0), heading: nil, fieldOfView: nil, range: 30)
        #expect(dome.contains(MetricPoint(x: -20, y: -20)))
        #expect(dome.ring.count == 73 && dome.ring.first == dome.ring.last)
    }

    @Test func seesAPointOnlyFromCamerasFacingIt() throws {
        // 0.0009 degrees of longitude is about 63 m at this latitude.
        let cameras = try [
            directed("facing", centre.lat, centre.lon - 0.0009, heading: 90, fov: 60, range: 100),
            directed("away", centre.lat, centre.lon - 0.0009, heading: 270, fov: 60, range: 100),
            directed("short", centre.lat, centre.lon - 0.0009, heading: 90, fov: 60, range: 40),
            directed("dome", centre.lat + 0.0003, centre.lon, heading: nil, fov: nil, range: 50),
        ]
        let seeing = try index(cameras).seeing(centre)
        #expect(seeing.map(\.camera.id) == ["dome", "facing"])
        #expect(seeing.allSatisfy { $0.reason == "sees_point" })
    }

    @Test func nearestStopsAtTheCountAndTheMaximumDistance() throws {
        let cameras = try (1...10).map { try directed("c\($0)", centre.lat + Double($0) * 0.001, centre.lon, heading: nil, fov: nil, range: 50) }
        let engine = try index(cameras)
        #expect(try engine.nearest(4, to: centre, maximumMeters: 5_000).map(\.camera.id) == ["c1", "c2", "c3", "c4"])
        #expect(try engine.nearest(4, to: centre, maximumMeters: 250).map(\.camera.id) == ["c1", "c2"])
        #expect(try engine.nearest(3, to: centre, maximumMeters: 5_000, filter: SelectionFilter(limit: 2)).count == 2)
        let error = #expect(throws: GeoError.self) { try engine.nearest(0, to: centre, maximumMeters: 100) }
        #expect(error?.code == "count_invalid")
    }

    @Test func areaSelectsCamerasInsideAndThoseLookingIn() throws {
        let square = polygon([(50.8460, 4.3515), (50.8475, 4.3515), (50.8475, 4.3535), (50.8460, 4.3535), (50.8460, 4.3515)])
        let cameras = try [
            directed("inside", centre.lat, centre.lon, heading: 0, fov: 60, range: 50),
            directed("looking-in", centre.lat, 4.3545, heading: 270, fov: 60, range: 100),
            directed("looking-out", centre.lat, 4.3545, heading: 90, fov: 60, range: 100),
        ]
        let found = try index(cameras).inArea(square)
        #expect(found.map(\.camera.id) == ["inside", "looking-in"])
        #expect(found[0].reason == "inside_area" && found[0].distanceMeters == 0)
        #expect(found[1].reason == "covers_area" && found[1].distanceMeters > 60 && found[1].distanceMeters < 80)
    }

    @Test func routeCorridorKeepsCamerasNearTheLineInRouteOrder() throws {
        let route = line([(50.8440, 4.3525), (50.8500, 4.3525)])  // about 667 m northwards
        let cameras = try [
            directed("north", 50.8490, 4.3526, heading: nil, fov: nil, range: 50),
            directed("south", 50.8450, 4.3524, heading: nil, fov: nil, range: 50),
            directed("off", 50.8470, 4.3545, heading: nil, fov: nil, range: 50),  // about 140 m east
        ]
        let found = try index(cameras).alongRoute(route, widthMeters: 60)
        #expect(found.map(\.camera.id) == ["south", "north"])
        #expect(found.allSatisfy { $0.distanceMeters <= 30 })
        let along = found.compactMap(\.alongMeters)
        #expect(along.count == 2 && along[0] < along[1] && abs(along[1] - 556) < 5)
    }

    @Test func filtersByOwnerKindAndTagsAndCapsTheRankedList() throws {
        let cameras = try [
            directed("a", centre.lat + 0.0001, centre.lon, heading: nil, fov: nil, range: 50, owner: "stib", kind: .metro, tags: ["x", "y"]),
            directed("b", centre.lat + 0.0002, centre.lon, heading: nil, fov: nil, range: 50, owner: "pz-5339", kind: .street, tags: ["x"]),
            directed("c", centre.lat + 0.0003, centre.lon, heading: nil, fov: nil, range: 50, owner: "stib", kind: .metro, tags: ["y"]),
        ]
        let engine = try index(cameras)
        #expect(try engine.within(radiusMeters: 100, of: centre, filter: SelectionFilter(owners: ["stib"])).map(\.camera.id) == ["a", "c"])
        #expect(try engine.within(radiusMeters: 100, of: centre, filter: SelectionFilter(kinds: [.street])).map(\.camera.id) == ["b"])
        #expect(try engine.within(radiusMeters: 100, of: centre, filter: SelectionFilter(tags: ["x", "y"])).map(\.camera.id) == ["a"])
        #expect(try engine.within(radiusMeters: 100, of: centre, filter: SelectionFilter(limit: 2)).map(\.camera.id) == ["a", "b"])
        let error = #expect(throws: GeoError.self) {
            try engine.select(SelectionQuery(type: .radius, at: centre, meters: 100, filter: SelectionFilter(limit: 0)))
        }
        #expect(error?.code == "limit_invalid")
    }

    @Test(arguments: [
        (SelectionQuery(type: .radius, meters: 100), "query_incomplete"),
        (SelectionQuery(type: .route, geometry: line([(50.845, 4.35), (50.845, 4.35)]), widthMeters: 50), "route_zero_length"),
        (SelectionQuery(type: .route, geometry: line([(50.845, 4.35)]), widthMeters: 50), "route_zero_length"),
        (SelectionQuery(type: .route, geometry: line([(50.845, 4.35), (50.846, 4.35)]), widthMeters: -5), "radius_invalid"),
        (SelectionQuery(type: .route, geometry: polygon([(50.84, 4.35), (50.85, 4.35), (50.85, 4.36), (50.84, 4.35)]), widthMeters: 5), "route_invalid"),
        (SelectionQuery(type: .area, geometry: polygon([(50.84, 4.35), (50.85, 4.35), (50.85, 4.36), (50.86, 4.36)])), "area_unclosed"),
        (SelectionQuery(type: .area, geometry: polygon([(50.84, 4.35), (50.85, 4.35), (50.84, 4.35)])), "area_invalid"),
        (SelectionQuery(type: .area, geometry: polygon([(50.80, 4.30), (50.90, 4.40), (50.80, 4.40), (50.90, 4.30), (50.80, 4.30)])), "area_invalid"),
        (SelectionQuery(type: .area, geometry: GeoJSONGeometry(type: "Polygon", coordinates: .list([]))), "area_empty"),
        (SelectionQuery(type: .area, geometry: polygon([(91, 4.35), (50.85, 4.35), (50.85, 4.36), (91, 4.35)])), "coordinate_out_of_range"),
        (SelectionQuery(type: .area, geometry: polygon([(43.3, 5.3), (43.4, 5.3), (43.4, 5.4), (43.3, 5.3)])), "coordinate_outside_crs"),
    ])
    func refusesBadQueriesWithStableCodes(_ query: SelectionQuery, _ code: String) throws {
        let engine = try index([try directed("a", centre.lat, centre.lon, heading: nil, fov: nil, range: 50)])
        let error = #expect(throws: GeoError.self) { try engine.select(query) }
        #expect(error?.code == code)
    }

    @Test func refusesRoutesOverTheVertexCap() throws {
        let engine = try index([try directed("a", centre.lat, centre.lon, heading: nil, fov: nil, range: 50)])
        let long = line((0...PlanarShape.maximumRouteVertices).map { (50.80 + Double($0) * 0.00001, 4.35) })
        let error = #expect(throws: GeoError.self) { try engine.alongRoute(long, widthMeters: 50) }
        #expect(error?.code == "route_too_long")
    }
}

@Suite("Camera engine")
struct CameraEngineTests {
    @Test func swapsInANewIndexWhileQueriesRun() async throws {
        let first = try (0..<50).map { try camera("old-\($0)", 50.8467 + Double($0) * 0.0001, 4.3525) }
        let engine = CameraEngine(index: try CameraIndex(cameras: first, projection: try Projection(crs: .belgianLambert2008)))
        let centre = try GeoPoint(lat: 50.8467, lon: 4.3525)
        let replacement = try first + (0..<50).map { try camera("new-\($0)", 50.8467 - Double($0) * 0.0001, 4.3525) }
        // Queries on another task see either the whole old or the whole new registry, never a mix or an error.
        let reader = Task.detached {
            var counts = Set<Int>()
            for _ in 0..<2_000 { counts.insert(try engine.index.within(radiusMeters: 1_000, of: centre).count) }
            return counts
        }
        try engine.replace(with: replacement)
        let seen = try await reader.value
        #expect(seen.isSubset(of: [50, 100]))
        #expect(try engine.index.within(radiusMeters: 1_000, of: centre).count == 100)
        // A camera the region's CRS cannot hold is left out, and said so; the others are used.
        let index = try engine.replace(with: replacement + [try camera("madrid", 40.4, -3.7)])
        #expect(index.cameras.count == 100 && engine.index.cameras.count == 100)
        #expect(index.refused.map(\.camera) == ["madrid"] && index.refused.first?.problem.code == "coordinate_outside_crs")
    }
}
