import Foundation
import Testing
@testable import Geo

@Suite("Areas through GEOS")
struct AreaTests {
    @Test func policeZoneContainsItsCentre() throws {
        let data = try Data(contentsOf: fixturesFolder.appendingPathComponent("sources/brussels_police_zones.geojson"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let features = try #require(root["features"] as? [[String: Any]])
        let polbru = try #require(features.first { ($0["properties"] as? [String: Any])?["police_zone_code"] as? Int == 5339 })
        let geometry = String(decoding: try JSONSerialization.data(withJSONObject: polbru["geometry"]!), as: UTF8.self)
        let zone = try Area(name: "5339", geoJSONGeometry: geometry)
        #expect(zone.contains(try GeoPoint(lat: 50.8467, lon: 4.3525)))  // Grand-Place, Bruxelles
        #expect(!zone.contains(try GeoPoint(lat: 50.8676, lon: 4.3730)))  // Schaerbeek town hall, zone 5344
    }

    @Test func refusesASelfIntersectingPolygon() {
        let bowtie = #"{"type":"Polygon","coordinates":[[[4.30,50.80],[4.40,50.90],[4.40,50.80],[4.30,50.90],[4.30,50.80]]]}"#
        #expect(throws: GeoError.self) { try Area(name: "bowtie", geoJSONGeometry: bowtie) }
    }

    @Test(arguments: [
        #"{"type":"Polygon","coordinates":[[[4.30,50.80],[4.40,50.90],[4.40,50.80]]]}"#,  // unclosed
        #"{"type":"Polygon","coordinates":"nope"}"#,
        "not json",
    ])
    func refusesUnreadableGeometry(_ text: String) {
        do {
            _ = try Area(name: "bad", geoJSONGeometry: text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.code == "area_invalid")
        }
    }
}
