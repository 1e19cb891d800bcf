import Foundation
import Geo
import Logging
import Testing
@testable import Incidents

/// A service over a fresh database file in a temporary folder, with a few cameras around the Grand-Place.
func withService(_ body: (IncidentService, Database, URL) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-incidents-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let database = try Database(path: folder.appendingPathComponent("vigil.sqlite").path)
    func camera(_ id: String, _ lat: Double, _ lon: Double, _ confidentiality: LocationConfidentiality = .public) throws -> Camera {
        Camera(id: id, owner: "pz-5339", kind: .street, placeType: "road", position: try GeoPoint(lat: lat, lon: lon),
               headingDegrees: 90, fieldOfViewDegrees: 60, rangeMeters: 100, stream: "sim://\(id)",
               confidentiality: confidentiality, tags: ["t"], privacyMasks: id == "far" ? [[[0, 0], [0.5, 0], [0.5, 0.5]]] : [])
    }
    let cameras = try [
        camera("near", 50.8468, 4.3525), camera("secret", 50.8470, 4.3526, .confidential), camera("far", 50.8600, 4.3525),
    ]
    let fixture = RegistryFixture(
        agencies: [
            Agency(id: "crisis-centre", name: "Crisis centre", kind: "crisis-centre", region: "brussels"),
            Agency(id: "siamu", name: "Fire service", kind: "fire-ambulance", region: "brussels"),
        ],
        owners: [Owner(id: "pz-5339", name: "Polbru", country: "BE", regime: "police", retentionDays: 365)])
    let registry = RegistryStore(database: database)
    #expect(try registry.loadIfEmpty(cameras: cameras, fixture: fixture))
    #expect(try registry.loadIfEmpty(cameras: cameras, fixture: fixture) == false)
    #expect(try registry.cameras() == cameras.sorted { $0.id < $1.id })
    let index = try CameraIndex(cameras: try registry.cameras(), projection: try Projection(crs: .belgianLambert2008))
    try await body(IncidentService(database: database, engine: CameraEngine(index: index), logger: Logger(label: "test")), database, folder)
}

@Suite("Incident service")
struct IncidentServiceTests {
    let grandPlace = try! GeoPoint(lat: 50.8467, lon: 4.3525)

    @Test func opensSelectsJournalsAndCloses() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            #expect(opened.sequence == 1)
            #expect(opened.change == .opened)
            #expect(opened.added.map(\.id) == ["near", "secret"])
            let snapshot = try await service.snapshot(opened.incidentId)
            #expect(snapshot.incident.status == .open)
            #expect(snapshot.cameras == opened.added)

            let closed = try await service.close(opened.incidentId, by: "crisis-centre")
            #expect(closed.sequence == 2)
            #expect(Set(closed.removed) == ["near", "secret"])
            let after = try await service.snapshot(opened.incidentId)
            #expect(after.incident.status == .closed)
            #expect(after.incident.closedAt != nil)
            #expect(after.cameras.isEmpty)
        }
    }

    @Test func withholdsTheExactPositionOfConfidentialCameras() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .crisis, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            let secret = try #require(opened.added.first { $0.id == "secret" })
            #expect(secret.position == nil)
            #expect(secret.distanceMeters == SelectedCamera.confidentialDistanceStep)
            let stored = try #require(try await service.snapshot(opened.incidentId).cameras.first { $0.id == "secret" })
            #expect(stored == secret)
            #expect(opened.added.first { $0.id == "near" }?.position != nil)
        }
    }

    @Test func refusesBadRequestsAndKeepsWhatIsStored() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            await #expect(throws: IncidentError.notFound(999)) { try await service.snapshot(999) }
            await #expect(throws: IncidentError.notFound(999)) { try await service.close(999, by: "crisis-centre") }
            let radius = await #expect(throws: IncidentError.self) {
                try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: -1), by: "crisis-centre")
            }
            #expect(radius?.code == "radius_invalid")
            let title = await #expect(throws: IncidentError.self) {
                try await service.open(
                    OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 10, title: String(repeating: "x", count: 201)), by: "crisis-centre")
            }
            #expect(title?.code == "title_too_long")
            let unknownAgency = await #expect(throws: IncidentError.self) {
                try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 10), by: "nobody")
            }
            #expect(unknownAgency?.code == "agency_unknown")
            _ = try await service.close(opened.incidentId, by: "crisis-centre")
            let twice = await #expect(throws: IncidentError.self) { try await service.close(opened.incidentId, by: "crisis-centre") }
            #expect(twice?.code == "incident_closed")
            #expect(try await service.snapshot(opened.incidentId).incident.sequence == 2)
        }
    }

    @Test func survivesReopeningTheFile() async throws {
        try await withService { service, database, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .medical, at: grandPlace, radiusMeters: 300, exercise: true), by: "crisis-centre")
            let reopened = try Database(path: database.path)
            let index = try CameraIndex(cameras: try RegistryStore(database: reopened).cameras(), projection: try Projection(crs: .belgianLambert2008))
            let again = IncidentService(database: reopened, engine: CameraEngine(index: index), logger: Logger(label: "test"))
            let snapshot = try await again.snapshot(opened.incidentId)
            #expect(snapshot.incident.exercise)
            #expect(snapshot.cameras.map(\.id) == opened.added.map(\.id))
            #expect(try await again.close(opened.incidentId, by: "crisis-centre").sequence == 2)
        }
    }
}

@Suite("Database")
struct DatabaseTests {
    @Test func refusesAFileThatIsNotADatabase() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-not-a-db-\(UUID().uuidString)")
        try Data("this is not SQLite, just text that is long enough to fill a header page".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: SQLiteError.self) { try Database(path: file.path) }
    }

    @Test func appliesEveryMigrationOnce() async throws {
        try await withTemporaryDatabaseFile("migrations") { path in
            _ = try Database(path: path)
            let database = try Database(path: path)
            #expect(try database.runSync { try $0.userVersion } == Int64(Migrations.all.count))
            #expect(try database.runSync { try $0.query("PRAGMA journal_mode").first?.text(0) } == "wal")
        }
    }
}

@Suite("Redrawing incidents")
struct RedrawTests {
    let grandPlace = try! GeoPoint(lat: 50.8467, lon: 4.3525)

    private func square(_ lat: Double, _ lon: Double, _ half: Double) -> GeoJSONGeometry {
        let ring = [(lat - half, lon - half), (lat + half, lon - half), (lat + half, lon + half), (lat - half, lon + half), (lat - half, lon - half)]
        return GeoJSONGeometry(type: "Polygon", coordinates: .list([.list(ring.map { .position([$0.1, $0.0]) })]))
    }

    @Test func aWiderRadiusAddsOnlyTheNewCameras() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 20), by: "crisis-centre")
            #expect(opened.added.map(\.id) == ["near"])  // "secret" is 34 m away
            let wider = try await service.redraw(opened.incidentId, to: .circle(center: grandPlace, radiusMeters: 2_000), by: "crisis-centre")
            #expect(wider.change == .redrawn && wider.sequence == 2)
            #expect(Set(wider.added.map(\.id)) == ["secret", "far"])
            #expect(wider.removed.isEmpty)
            #expect(wider.incident.radiusMeters == 2_000)
            let moved = try await service.redraw(opened.incidentId, to: .circle(center: try GeoPoint(lat: 50.8600, lon: 4.3525), radiusMeters: 30), by: "crisis-centre")
            #expect(moved.added.isEmpty)
            #expect(moved.removed == ["near", "secret"])
            #expect(try await service.snapshot(opened.incidentId).cameras.map(\.id) == ["far"])
        }
    }

    @Test func aPerimeterIncidentSelectsInsideAndIsRedrawn() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .publicOrder, area: .perimeter(square(50.8469, 4.3525, 0.0005))), by: "crisis-centre")
            #expect(Set(opened.added.map(\.id)) == ["near", "secret"])
            #expect(opened.incident.radiusMeters > 40 && opened.incident.radiusMeters < 80)
            let snapshot = try await service.snapshot(opened.incidentId)
            #expect(snapshot.area == square(50.8469, 4.3525, 0.0005))
            let redrawn = try await service.redraw(opened.incidentId, to: .perimeter(square(50.8600, 4.3525, 0.0005)), by: "crisis-centre")
            #expect(redrawn.added.map(\.id) == ["far"])
            #expect(redrawn.removed == ["near", "secret"])
            let bowtie = GeoJSONGeometry(type: "Polygon", coordinates: .list([.list([
                .position([4.30, 50.80]), .position([4.40, 50.90]), .position([4.40, 50.80]), .position([4.30, 50.90]), .position([4.30, 50.80]),
            ])]))
            let invalid = await #expect(throws: IncidentError.self) { try await service.redraw(opened.incidentId, to: .perimeter(bowtie), by: "crisis-centre") }
            #expect(invalid?.code == "area_invalid")
            #expect(try await service.snapshot(opened.incidentId).incident.sequence == 2)  // the refused redraw stored nothing
        }
    }
}
