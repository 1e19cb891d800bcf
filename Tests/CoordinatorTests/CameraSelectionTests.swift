import Bus
import Foundation
import Geo
import Incidents
import Testing
import TestSupport

/// `cameras.select` on a coordinator in this process: a selection outside any incident shows an
/// agency only the cameras it may watch live now, under the confidentiality rule, and its
/// limit counts only those.
// Two minutes: its hundreds of decisions one by one take over a minute when the whole suite loads both cores.
@Suite("Camera selection over the bus", .serialized, .timeLimit(.minutes(2)))
struct CameraSelectionTests {
    static let grandPlace = ["lat": 50.8467, "lon": 4.3525]

    private func select(_ agency: String, _ query: [String: Any], in coordinator: InProcessCoordinator) async throws -> [[String: Any]] {
        let body = try JSONSerialization.data(withJSONObject: query)
        let result = try await offThePool { () -> Data in
            let client = try coordinator.client(agency)
            defer { client.close() }
            return try client.requestJSON("cameras.select", try JSONSerialization.jsonObject(with: body) as? [String: Any] ?? [:])
        }
        return (try JSONSerialization.jsonObject(with: result) as? [String: Any])?["cameras"] as? [[String: Any]] ?? []
    }

    /// What the decision function says of `camera` for `agency`, live, without an incident.
    private func allowed(_ camera: String, _ agency: String, in coordinator: InProcessCoordinator) async throws -> Bool {
        try await coordinator.server.access.decide(AccessRequest(agency: agency, camera: camera, mode: .live)).isAllowed
    }

    @Test func onlyWhatTheAgencyMayWatchIsShownAndTheLimitCountsOnlyThat() async throws {
        try await InProcessCoordinator.with(agencies: ["pz-5340", "siamu"]) { coordinator in
            let radius: [String: Any] = ["type": "radius", "at": Self.grandPlace, "meters": 3_000]
            let everything = try coordinator.server.engine.index.select(
                SelectionQuery(type: .radius, at: try GeoPoint(lat: 50.8467, lon: 4.3525), meters: 3_000))
            // Exactly what the decision function allows each agency, and nothing of the rest.
            for agency in ["pz-5340", "siamu"] {
                let seen = Set(try await select(agency, radius, in: coordinator).compactMap { $0["id"] as? String })
                #expect(seen.count < everything.count, "\(agency): \(seen.count) of \(everything.count)")
                for match in everything {
                    let mayWatch = try await allowed(match.camera.id, agency, in: coordinator)
                    #expect(seen.contains(match.camera.id) == mayWatch, "\(agency), \(match.camera.id): shown \(seen.contains(match.camera.id)), allowed \(mayWatch)")
                }
            }
            let shown = try await select("pz-5340", radius, in: coordinator)
            let ids = shown.compactMap { $0["id"] as? String }
            #expect(ids.count > 5)
            // Ranked as the query ranks them.
            let distances = shown.compactMap { $0["distance_meters"] as? Double }
            #expect(distances == distances.sorted())
            // A confidential camera: no position, its distance rounded up to 500 m.
            for camera in shown where camera["position"] == nil {
                #expect(((camera["distance_meters"] as? Double) ?? 1).truncatingRemainder(dividingBy: 500) == 0, "\(camera)")
            }

            // The limit counts what the agency may see: the first three of them, not of everything.
            let limited = try await select("pz-5340", radius.merging(["filter": ["limit": 3]]) { $1 }, in: coordinator)
            #expect(limited.compactMap { $0["id"] as? String } == Array(ids.prefix(3)))
            // The k nearest it may see, however many hidden ones are nearer.
            let nearest = try await select("pz-5340", ["type": "nearest", "at": Self.grandPlace, "count": 5], in: coordinator)
            #expect(nearest.compactMap { $0["id"] as? String } == Array(ids.prefix(5)), "\(nearest)")

        }
    }

    @Test func aBadQueryGetsItsCode() async throws {
        try await InProcessCoordinator.with(agencies: ["pz-5340"]) { coordinator in
            for (query, code) in [
                (["type": "radius", "at": Self.grandPlace, "meters": -5] as [String: Any], "radius_invalid"),
                (["type": "radius", "at": Self.grandPlace, "meters": 100, "filter": ["limit": 0]], "limit_invalid"),
                (["type": "nearest", "at": ["lat": 95, "lon": 4.35], "count": 3], "coordinate_out_of_range"),
                (["type": "sideways"], "bad_request"),
            ] {
                let refused = await { () -> String? in
                    do { _ = try await select("pz-5340", query, in: coordinator); return nil } catch BusClientError.remote(let body) { return body.code } catch { return "\(error)" }
                }()
                #expect(refused == code, "\(query)")
            }
        }
    }
}
