import Testing
@testable import Geo

@Suite("GeoPoint")
struct GeoPointTests {
    @Test func parsesOperatorInput() throws {
        let point = try GeoPoint(parsing: " 50.8467 , 4.3525 ")
        #expect(point.lat == 50.8467)
        #expect(point.lon == 4.3525)
    }

    @Test(arguments: ["", "50.8", "50.8,4.3,1", "north,east", "50.8;4.3"])
    func refusesMalformedText(_ text: String) {
        #expect(throws: GeoError.self) { try GeoPoint(parsing: text) }
        do {
            _ = try GeoPoint(parsing: text, field: "--at")
        } catch {
            #expect(error.code == "coordinate_invalid")
            #expect(error.field == "--at")
        }
    }

    @Test(arguments: [(90.0001, 4.0), (-91, 4), (50, 180.5), (50, -181)])
    func refusesOutOfRange(_ lat: Double, _ lon: Double) {
        do {
            _ = try GeoPoint(lat: lat, lon: lon)
            Issue.record("accepted \(lat),\(lon)")
        } catch {
            #expect(error.code == "coordinate_out_of_range")
        }
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func refusesNonFinite(_ value: Double) {
        do {
            _ = try GeoPoint(lat: value, lon: 4)
            Issue.record("accepted \(value)")
        } catch {
            #expect(error.code == "coordinate_invalid")
        }
    }
}
