import Foundation
import Geo
import Logging
import Testing
@testable import Incidents

/// A service over a fresh database with the Brussels registry, its road network, and the Midi → Schuman route.
private func withBrussels(_ body: (IncidentService, Database, GeoJSONGeometry) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-march-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let database = try Database(path: folder.appendingPathComponent("vigil.sqlite").path)
    let cameras = try CameraRegistryFile.read(contentsOf: fixtures.appendingPathComponent("brussels/cameras.geojson"))
    _ = try RegistryStore(database: database).loadIfEmpty(
        cameras: cameras, fixture: try RegistryFixture.read(contentsOf: fixtures.appendingPathComponent("agencies.json")))
    let projection = try Projection(crs: .belgianLambert2008)
    let index = try CameraIndex(cameras: cameras, projection: projection)
    let roads = try RoadNetwork(contentsOf: fixtures.appendingPathComponent("sources/brussels_roads_major_osm2013.geojson"), projection: projection)
    struct Collection: Decodable { struct Feature: Decodable { var geometry: GeoJSONGeometry }; var features: [Feature] }
    let route = try JSONDecoder().decode(
        Collection.self, from: Data(contentsOf: fixtures.appendingPathComponent("sources/brussels_demo_routes_osm2013.geojson"))).features[2].geometry
    try await body(IncidentService(database: database, engine: CameraEngine(index: index), roads: roads, logger: Logger(label: "test")), database, route)
}

/// Applies a change to the set of (camera, section) pairs a follower holds.
private func apply(_ change: IncidentChange, to state: inout [String: String?]) {
    for id in change.removed { state[id] = nil }
    for camera in change.added + change.relabelled { state[camera.id] = camera.section }
}

@Suite("March incidents")
struct MarchIncidentTests {
    @Test func movesPublishDeltasThatRebuildTheSelection() async throws {
        try await withBrussels { service, _, route in
            let opened = try await service.openMarch(
                OpenMarchRequest(kind: .demonstration, route: route, head: .measure(1_000), tail: .measure(600)), by: "pz-5341")
            #expect(opened.incident.march?.headMeters == 1_000)
            #expect(opened.added.allSatisfy { $0.section != nil })
            var state = Dictionary(uniqueKeysWithValues: opened.added.map { ($0.id, $0.section) })
            var sequence = opened.sequence
            for head in stride(from: 1_100.0, through: 3_000, by: 100) {
                let change = try await service.move(opened.incidentId, head: .measure(head), tail: .measure(head - 400), by: "pz-5341")
                #expect(change.sequence == sequence + 1)
                sequence = change.sequence
                #expect(change.change == .moved)
                apply(change, to: &state)
                let snapshot = try await service.snapshot(opened.incidentId)
                #expect(Dictionary(uniqueKeysWithValues: snapshot.cameras.map { ($0.id, $0.section) }) == state)
                #expect(snapshot.incident.march?.headMeters == head)
            }
            let snapshot = try await service.snapshot(opened.incidentId)
            #expect(snapshot.route == route)
            #expect(snapshot.cameras.map { $0.section ?? "" }.contains("ahead"))
        }
    }

    @Test func theMomentTheHeadPassedEachCameraBehindTheTailComesFromTheJournal() async throws {
        try await withBrussels { service, _, route in
            let opened = try await service.openMarch(
                OpenMarchRequest(kind: .demonstration, route: route, head: .measure(1_000), tail: .measure(600)), by: "pz-5341")
            var moves: [(at: Date, head: Double)] = [(opened.at, 1_000)]
            for head in stride(from: 1_400.0, through: 3_000, by: 400) {
                try await Task.sleep(for: .milliseconds(20))
                let change = try await service.move(opened.incidentId, head: .measure(head), tail: .measure(head - 400), by: "pz-5341")
                moves.append((change.at, head))
            }
            let behind = try await service.headPassages(opened.incidentId, section: "behind")
            #expect(!behind.isEmpty && behind.allSatisfy { $0.section == "behind" })
            for passage in behind {
                let at = try #require(passage.at, "the head is past every camera behind the tail")
                if passage.alongMeters <= 1_000 {
                    #expect(passage.beforeOpening && at == opened.at, "passed before the march was opened")
                    continue
                }
                // Between the two moves that bracket the camera's distance, in proportion.
                let after = try #require(moves.firstIndex { $0.head >= passage.alongMeters })
                let (a, b) = (moves[after - 1], moves[after])
                let expected = a.at.addingTimeInterval((passage.alongMeters - a.head) / (b.head - a.head) * b.at.timeIntervalSince(a.at))
                #expect(abs(at.timeIntervalSince(expected)) < 0.001 && !passage.beforeOpening, "\(passage)")
            }
            // Cameras ahead of the head have not been passed.
            let ahead = try await service.headPassages(opened.incidentId, section: "ahead")
            #expect(!ahead.isEmpty && ahead.allSatisfy { $0.at == nil || $0.alongMeters <= 3_000 })
            // A point incident has no route.
            let point = try await service.open(OpenIncidentRequest(kind: .fire, at: GeoPoint(lat: 50.8467, lon: 4.3525), radiusMeters: 100), by: "siamu")
            await #expect(throws: IncidentError.self) { _ = try await service.headPassages(point.incidentId) }
        }
    }

    @Test func aHeadOffTheRouteIsReportedAndFallsBack() async throws {
        try await withBrussels { service, _, route in
            let opened = try await service.openMarch(
                OpenMarchRequest(kind: .demonstration, route: route, head: .measure(1_000), tail: .measure(600)), by: "pz-5341")
            let off = try await service.move(opened.incidentId, head: .point(try GeoPoint(lat: 50.85, lon: 4.33)), tail: .measure(600), by: "pz-5341")
            #expect(off.events == ["head_left_route"])
            #expect(off.incident.march?.onRoute == false)
            #expect(try await service.snapshot(opened.incidentId).cameras.allSatisfy { $0.section == "fallback" })
            #expect(abs(off.incident.center.lat - 50.85) < 1e-6)
        }
    }

    @Test func refusesMovesThatMakeNoSense() async throws {
        try await withBrussels { service, _, route in
            let point = try await service.open(
                OpenIncidentRequest(kind: .fire, at: try GeoPoint(lat: 50.8453, lon: 4.3571), radiusMeters: 100), by: "siamu")
            let notMarch = await #expect(throws: IncidentError.self) {
                try await service.move(point.incidentId, head: .measure(10), tail: .measure(0), by: "siamu")
            }
            #expect(notMarch?.code == "incident_not_march")
            let opened = try await service.openMarch(
                OpenMarchRequest(kind: .demonstration, route: route, head: .measure(1_000), tail: .measure(600)), by: "pz-5341")
            let reversed = await #expect(throws: IncidentError.self) {
                try await service.move(opened.incidentId, head: .measure(100), tail: .measure(900), by: "pz-5341")
            }
            #expect(reversed?.code == "march_invalid")
            #expect(try await service.snapshot(opened.incidentId).incident.sequence == 1)  // nothing stored
            let zeroLength = await #expect(throws: IncidentError.self) {
                try await service.openMarch(OpenMarchRequest(
                    kind: .demonstration, route: GeoJSONGeometry(type: "LineString", coordinates: .list([.position([4.35, 50.85]), .position([4.35, 50.85])])),
                    head: .measure(0), tail: .measure(0)), by: "pz-5341")
            }
            #expect(zeroLength?.code == "route_zero_length")
            _ = try await service.close(opened.incidentId, by: "pz-5341")
            let closed = await #expect(throws: IncidentError.self) {
                try await service.move(opened.incidentId, head: .measure(1_200), tail: .measure(800), by: "pz-5341")
            }
            #expect(closed?.code == "incident_closed")
        }
    }

    @Test func aRestartedServiceRebuildsTheTrackerAndKeepsTheDeltasRight() async throws {
        try await withBrussels { service, database, route in
            let opened = try await service.openMarch(
                OpenMarchRequest(kind: .demonstration, route: route, head: .measure(1_000), tail: .measure(600)), by: "pz-5341")
            var state = Dictionary(uniqueKeysWithValues: opened.added.map { ($0.id, $0.section) })
            let cameras = try RegistryStore(database: database).cameras()
            let restarted = IncidentService(
                database: try Database(path: database.path),
                engine: CameraEngine(index: try CameraIndex(cameras: cameras, projection: try Projection(crs: .belgianLambert2008))),
                roads: nil, logger: Logger(label: "test"))
            let change = try await restarted.move(opened.incidentId, head: .measure(1_500), tail: .measure(1_100), by: "pz-5341")
            apply(change, to: &state)
            let snapshot = try await restarted.snapshot(opened.incidentId)
            #expect(Dictionary(uniqueKeysWithValues: snapshot.cameras.map { ($0.id, $0.section) }) == state)
            #expect(change.sequence == 2)
        }
    }
}
