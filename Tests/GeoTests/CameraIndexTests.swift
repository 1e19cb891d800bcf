import TestSupport
import Testing
@testable import Geo

@Suite("Camera index")
struct CameraIndexTests {
    @Test func selectsExactlyTheCamerasWithinTheRadiusNearestFirst() throws {
        let centre = try GeoPoint(lat: 50.8467, lon: 4.3525)
        // About 111 m per 0.001 degree of latitude.
        let cameras = try [
            camera("far", 50.8467 + 0.0040, 4.3525),
            camera("near", 50.8467 + 0.0005, 4.3525),
            camera("mid", 50.8467 - 0.0020, 4.3525),
            camera("edge-out", 50.8467 + 0.0028, 4.3525),
        ]
        let index = try CameraIndex(cameras: cameras, projection: try Projection(crs: .belgianLambert2008))
        let matches = try index.within(radiusMeters: 300, of: centre)
        #expect(matches.map(\.camera.id) == ["near", "mid"])
        #expect(matches.allSatisfy { $0.reason == "within_radius" && $0.distanceMeters <= 300 })
        #expect(abs(matches[0].distanceMeters - ellipsoidalMeters(centre, cameras[1].position)) < 0.5)
    }

    @Test(arguments: [0.0, -5, .nan, .infinity, 50_001])
    func refusesAbsurdRadii(_ radius: Double) throws {
        let index = try CameraIndex(cameras: [try camera("a", 50.85, 4.35)], projection: try Projection(crs: .belgianLambert2008))
        do {
            _ = try index.within(radiusMeters: radius, of: try GeoPoint(lat: 50.85, lon: 4.35))
            Issue.record("radius \(radius) accepted")
        } catch {
            #expect(error.code == "radius_invalid")
            #expect(error.field == "radius")
        }
    }

    @Test func refusesACentreOutsideTheCRS() throws {
        let index = try CameraIndex(cameras: [try camera("a", 50.85, 4.35)], projection: try Projection(crs: .belgianLambert2008))
        let error = #expect(throws: GeoError.self) {
            try index.within(radiusMeters: 100, of: try GeoPoint(lat: 40.4, lon: -3.7))  // Madrid
        }
        #expect(error?.code == "coordinate_outside_crs")
        #expect(error?.field == "at")
    }

    /// The STRtree must return what a full scan of the real Brussels fixture returns.
    @Test func agreesWithAFullScanOnTheBrusselsFixture() throws {
        let cameras = try CameraRegistryFile.read(contentsOf: fixturesFolder.appendingPathComponent("brussels/cameras.geojson"))
        let projection = try Projection(crs: .belgianLambert2008)
        let index = try CameraIndex(cameras: cameras, projection: projection)
        var random = TestRandom(seed: 20_261_122)
        for _ in 0..<50 {
            let centre = try GeoPoint(lat: Double.random(in: 50.80...50.89, using: &random), lon: Double.random(in: 4.30...4.42, using: &random))
            let radius = Double.random(in: 50...1_500, using: &random)
            let origin = try projection.metric(centre)
            let scanned = try Set(cameras.filter { try projection.metric($0.position).distance(to: origin) <= radius }.map(\.id))
            let selected = try index.within(radiusMeters: radius, of: centre)
            #expect(Set(selected.map(\.camera.id)) == scanned, "at \(centre) within \(radius) m")
            #expect(selected.map(\.distanceMeters) == selected.map(\.distanceMeters).sorted())
        }
    }
}
