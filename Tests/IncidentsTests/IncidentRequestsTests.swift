import Foundation
import Geo
import Testing
@testable import Incidents
import VigilProtocol

@Suite("Incident request bodies")
struct IncidentRequestsTests {
    private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(json.utf8))
    }

    @Test func readsEachShapeOfIncident() throws {
        let circle = try decode(OpenIncidentBody.self, #"{"kind":"fire","at":{"lat":50.85,"lon":4.35},"radius_meters":300}"#)
        guard case .area(let open) = try circle.request(), case .circle(_, let radius) = open.area else { Issue.record("not a circle"); return }
        #expect(radius == 300)
        let route = #"{"type":"LineString","coordinates":[[4.33,50.83],[4.34,50.84]]}"#
        let march = try decode(OpenIncidentBody.self, #"{"kind":"demonstration","route":\#(route),"head":{"along_meters":50},"tail":{"lat":50.83,"lon":4.33},"march":{"ahead_meters":500}}"#)
        guard case .march(let request) = try march.request() else { Issue.record("not a march"); return }
        #expect(request.head == .measure(50))
        #expect(request.configuration.aheadMeters == 500 && request.configuration.behindMeters == 200)  // others keep their defaults
    }

    @Test(arguments: [
        (#"{"kind":"party","at":{"lat":50.85,"lon":4.35},"radius_meters":300}"#, "kind_invalid"),
        (#"{"kind":"fire","at":{"lat":95,"lon":4.35},"radius_meters":300}"#, "coordinate_out_of_range"),
        (#"{"kind":"fire","at":{"lat":50.85,"lon":4.35}}"#, "bad_request"),
        (#"{"kind":"fire","radius_meters":30,"area":{"type":"Polygon","coordinates":[]}}"#, "bad_request"),
        (#"{"kind":"demonstration","route":{"type":"LineString","coordinates":[]},"head":{"along_meters":1}}"#, "bad_request"),
        (#"{"kind":"demonstration","route":{"type":"LineString","coordinates":[]},"head":{"lat":50,"lon":4,"along_meters":1},"tail":{"along_meters":0}}"#, "bad_request"),
    ])
    func refusesBadBodiesWithStableCodes(_ json: String, _ code: String) throws {
        let body = try decode(OpenIncidentBody.self, json)
        let error = #expect(throws: IncidentError.self) { try body.request() }
        #expect(error?.code == code)
    }

    @Test func roundTripsRedrawAndMoveBodies() throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let redraw = RedrawIncidentBody(incident: 3, area: .circle(center: try GeoPoint(lat: 50.85, lon: 4.35), radiusMeters: 120))
        let decoded = try decode(RedrawIncidentBody.self, String(decoding: try encoder.encode(redraw), as: UTF8.self))
        #expect(try decoded.incidentArea() == .circle(center: try GeoPoint(lat: 50.85, lon: 4.35), radiusMeters: 120))
        let move = MoveIncidentBody(incident: 3, head: .measure(1_200), tail: .point(try GeoPoint(lat: 50.83, lon: 4.34)))
        let moved = try decode(MoveIncidentBody.self, String(decoding: try encoder.encode(move), as: UTF8.self))
        #expect(try moved.head.position(field: "head") == .measure(1_200))
        #expect(try moved.tail.position(field: "tail") == .point(try GeoPoint(lat: 50.83, lon: 4.34)))
    }
}
