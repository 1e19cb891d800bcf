import Foundation
import Geo
import Logging
import Testing
@testable import Incidents

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures")

/// The Brussels registry with the fixture agreements loaded, an incident service and the access service.
private func withAgreements(_ body: (AccessService, IncidentService, [Camera]) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-access-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let database = try Database(path: folder.appendingPathComponent("vigil.sqlite").path)
    let cameras = try CameraRegistryFile.read(contentsOf: fixtures.appendingPathComponent("brussels/cameras.geojson"))
        + CameraRegistryFile.read(contentsOf: fixtures.appendingPathComponent("marseille/cameras.geojson"))
    _ = try RegistryStore(database: database).loadIfEmpty(
        cameras: cameras, fixture: try RegistryFixture.read(contentsOf: fixtures.appendingPathComponent("agencies.json")))
    let zones = try AgreementFixture.policeZones(contentsOf: fixtures.appendingPathComponent("sources/brussels_police_zones.geojson"))
    // Only Brussels cameras go in the index (one CRS); Marseille's are decided from the registry too.
    let engine = CameraEngine(index: try CameraIndex(cameras: cameras.filter { $0.owner != "marseille-landlord" }, projection: try Projection(crs: .belgianLambert2008)))
    let access = AccessService(database: database)
    let grants = try AgreementFixture.read(contentsOf: fixtures.appendingPathComponent("agreements.json"), policeZones: zones, validFrom: Date(timeIntervalSince1970: 0))
    #expect(try access.loadIfEmpty(grants) == grants.count)
    try await body(access, IncidentService(database: database, engine: engine, logger: Logger(label: "test")), cameras)
}

private func camera(_ cameras: [Camera], owner: String, kind: CameraKind, placeType: String? = nil) throws -> Camera {
    try #require(cameras.first { $0.owner == owner && $0.kind == kind && (placeType == nil || $0.placeType == placeType) })
}

@Suite("Access decisions on the fixture agreements")
struct AccessControlTests {
    @Test func alwaysSharingZonesShareTheirStreetCameras() async throws {
        try await withAgreements { access, _, cameras in
            let street = try camera(cameras, owner: "pz-5339", kind: .street)
            #expect(try await access.decide(AccessRequest(agency: "pz-5344", camera: street.id, mode: .live)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "crisis-centre", camera: street.id, mode: .playback)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .export)) == .allow(grant: "owner"))
            let fire = try await access.decide(AccessRequest(agency: "siamu", camera: street.id, mode: .live))
            #expect(fire == .deny(code: "no_grant", message: "pz-5339 has granted siamu no access to its cameras"))
            let export = try await access.decide(AccessRequest(agency: "pz-5344", camera: street.id, mode: .export))
            guard case .deny(let code, _) = export else { Issue.record("export allowed"); return }
            #expect(code == "mode_not_granted")
        }
    }

    @Test func incidentOnlyZonesShareOnlyTheCamerasOfAnOpenIncident() async throws {
        try await withAgreements { access, incidents, cameras in
            let street = try camera(cameras, owner: "pz-5342", kind: .street)
            let none = try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .live))
            guard case .deny(let code, _) = none else { Issue.record("allowed without an incident"); return }
            #expect(code == "condition_unmet")
            let here = try await incidents.open(OpenIncidentRequest(kind: .traffic, at: street.position, radiusMeters: 50), by: "pz-5339")
            #expect(try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .live, incident: here.incidentId)).isAllowed)
            let elsewhere = try await incidents.open(
                OpenIncidentRequest(kind: .traffic, at: try GeoPoint(lat: 50.8467, lon: 4.3525), radiusMeters: 50), by: "pz-5339")
            #expect(!(try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .live, incident: elsewhere.incidentId)).isAllowed))
            _ = try await incidents.close(here.incidentId, by: "pz-5339")
            #expect(!(try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .live, incident: here.incidentId)).isAllowed))
        }
    }

    @Test func stibSharesStationsWithTheZoneTheyAreInDuringAnIncident() async throws {
        try await withAgreements { access, incidents, cameras in
            // A platform camera of a station in zone 5340 (Molenbeek: Comte de Flandre).
            let platform = try #require(cameras.first { $0.id.hasPrefix("stib-comte-de-flandre") && $0.placeType == "platform" })
            let incident = try await incidents.open(OpenIncidentRequest(kind: .publicOrder, at: platform.position, radiusMeters: 100), by: "pz-5340")
            let request = AccessRequest(agency: "pz-5340", camera: platform.id, mode: .live, incident: incident.incidentId)
            #expect(try await access.decide(request).isAllowed)
            var otherZone = request
            otherZone.agency = "pz-5344"
            guard case .deny(let code, _) = try await access.decide(otherZone) else { Issue.record("another zone allowed"); return }
            #expect(code == "outside_scope")
            var playback = request
            playback.mode = .playback
            #expect(!(try await access.decide(playback).isAllowed))
            // The crisis centre only during a crisis.
            var crisisCentre = request
            crisisCentre.agency = "crisis-centre"
            #expect(!(try await access.decide(crisisCentre).isAllowed))
            let crisis = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: try GeoPoint(lat: 50.85, lon: 4.35), radiusMeters: 10), by: "crisis-centre")
            crisisCentre.incident = crisis.incidentId
            #expect(try await access.decide(crisisCentre).isAllowed)
        }
    }

    @Test func tunnelsAreSharedWithFireAndPoliceAtAllTimes() async throws {
        try await withAgreements { access, _, cameras in
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)
            #expect(try await access.decide(AccessRequest(agency: "siamu", camera: tunnel.id, mode: .live)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "pz-5343", camera: tunnel.id, mode: .playback)).isAllowed)
            #expect(!(try await access.decide(AccessRequest(agency: "stib", camera: tunnel.id, mode: .live)).isAllowed))
        }
    }

    @Test func revocationAndExpiryEndAccess() async throws {
        try await withAgreements { access, _, cameras in
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)
            let grant = try #require(try await access.grants().first { $0.owner == "bruxelles-mobilite" && $0.agency == "siamu" })
            let notOwner = await #expect(throws: IncidentError.self) { try await access.revoke(grant.id, by: "siamu", reason: "test") }
            #expect(notOwner?.code == "not_owner")
            try await access.revoke(grant.id, by: "bruxelles-mobilite", reason: "agreement ended")
            guard case .deny(let code, _) = try await access.decide(AccessRequest(agency: "siamu", camera: tunnel.id, mode: .live)) else {
                Issue.record("allowed after revocation"); return
            }
            #expect(code == "grant_revoked")
            let expiring = Grant(
                id: "short", owner: "bruxelles-mobilite", agency: "stib", scope: GrantScope(kinds: [.tunnel]), modes: [.live],
                validFrom: Date(timeIntervalSince1970: 0), validUntil: Date(timeIntervalSinceNow: -1), purpose: "test", legalBasis: "test",
                condition: .always)
            try await access.create(expiring, by: "bruxelles-mobilite")
            guard case .deny(let expired, _) = try await access.decide(AccessRequest(agency: "stib", camera: tunnel.id, mode: .live)) else {
                Issue.record("allowed after expiry"); return
            }
            #expect(expired == "grant_expired")
        }
    }

    @Test func refusesBadGrants() async throws {
        try await withAgreements { access, _, _ in
            func grant(_ id: String, agency: String = "siamu", modes: [AccessMode] = [.live], area: GeoJSONGeometry? = nil) -> Grant {
                Grant(id: id, owner: "stib", agency: agency, scope: GrantScope(area: area), modes: modes, validFrom: .distantPast,
                      purpose: "p", legalBasis: "l", condition: .always)
            }
            let bowtie = GeoJSONGeometry(type: "Polygon", coordinates: .list([.list([
                .position([4.30, 50.80]), .position([4.40, 50.90]), .position([4.40, 50.80]), .position([4.30, 50.90]), .position([4.30, 50.80]),
            ])]))
            for (bad, code) in [(grant("a", modes: []), "grant_invalid"), (grant("b", area: bowtie), "grant_invalid"),
                                (grant("c", agency: "martians"), "agency_unknown"), (grant("fixture-1"), "grant_exists")] {
                let error = await #expect(throws: IncidentError.self) { try await access.create(bad, by: "stib") }
                #expect(error?.code == code)
            }
        }
    }

    @Test func namedUsersAndClearancesAreChecked() throws {
        let camera = Camera(id: "c", owner: "stib", kind: .metro, placeType: "hall", position: try GeoPoint(lat: 50.85, lon: 4.35),
                            headingDegrees: nil, fieldOfViewDegrees: nil, rangeMeters: 30, stream: "", confidentiality: .public, tags: [])
        let grant = Grant(id: "g", owner: "stib", agency: "siamu", users: ["commander"], scope: GrantScope(), modes: [.live],
                          validFrom: .distantPast, purpose: "p", legalBasis: "l", condition: .always)
        func decide(user: String?, roles: [String]?, agency: String? = "siamu", expiry: Date? = nil) -> AccessDecision {
            AccessControl.decide(
                AccessRequest(agency: "siamu", user: user, camera: "c", mode: .live),
                facts: AccessFacts(camera: camera, grants: [grant], incident: nil, cameraInIncidentSelection: false,
                                   userRoles: roles, userAgency: agency, userClearanceExpiry: expiry)) { _, _ in true }
        }
        #expect(decide(user: "u1", roles: ["commander"]).isAllowed)
        #expect(decide(user: "u1", roles: ["operator"]) != .allow(grant: "g"))
        #expect(decide(user: "u1", roles: ["commander"], agency: "pz-5339") == .deny(code: "user_unknown", message: "u1 is not a user of siamu"))
        #expect(decide(user: "u1", roles: ["commander"], expiry: .distantPast) == .deny(code: "clearance_expired", message: "the clearance of u1 expired"))
    }
}
