import Testing
@testable import Geo

@Suite("Projection through PROJ")
struct ProjectionTests {
    @Test func grandPlaceInBelgianLambert2008() throws {
        let projection = try Projection(crs: .belgianLambert2008)
        let metric = try projection.metric(try GeoPoint(lat: 50.8467, lon: 4.3525))
        // EPSG:3812 puts its origin (649328, 665262) near 50.7978 N 4.3592 E: the Grand-Place lies
        // about 470 m west and 5.4 km north of it.
        #expect(abs(metric.x - 648_857) < 30)
        #expect(abs(metric.y - 670_700) < 30)
        let back = try projection.geographic(metric)
        #expect(abs(back.lat - 50.8467) < 1e-9)
        #expect(abs(back.lon - 4.3525) < 1e-9)
    }

    @Test(arguments: [(0.0027, 0.0), (0.0, 0.0043), (0.009, 0.012)])
    func planarDistancesAgreeWithTheEllipsoid(_ dLat: Double, _ dLon: Double) throws {
        let projection = try Projection(crs: .belgianLambert2008)
        let a = try GeoPoint(lat: 50.8467, lon: 4.3525)
        let b = try GeoPoint(lat: a.lat + dLat, lon: a.lon + dLon)
        let planar = try projection.metric(a).distance(to: try projection.metric(b))
        let ellipsoid = ellipsoidalMeters(a, b)
        // Lambert 2008's scale factor stays within 1.5e-4 of 1 over Belgium.
        #expect(abs(planar - ellipsoid) / ellipsoid < 1.5e-4, "planar \(planar) m, ellipsoid \(ellipsoid) m")
    }

    @Test func refusesPointsOutsideTheAreaOfUse() throws {
        let projection = try Projection(crs: .belgianLambert2008)
        do {
            _ = try projection.metric(try GeoPoint(lat: 43.30, lon: 5.37), field: "at")  // Marseille
            Issue.record("Marseille accepted in EPSG:3812")
        } catch {
            #expect(error.code == "coordinate_outside_crs")
            #expect(error.field == "at")
        }
        let lambert93 = try Projection(crs: .lambert93)
        _ = try lambert93.metric(try GeoPoint(lat: 43.30, lon: 5.37))
    }
}
