import Foundation
import Geo
import Logging
import Testing
@testable import Incidents

/// The repository's fixtures folder.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures")

/// The Brussels registry with the fixture agreements loaded, an incident service and the access service.
func withAgreements(_ body: (AccessService, IncidentService, [Camera]) async throws -> Void) async throws {
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

func camera(_ cameras: [Camera], owner: String, kind: CameraKind, placeType: String? = nil) throws -> Camera {
    try #require(cameras.first { $0.owner == owner && $0.kind == kind && (placeType == nil || $0.placeType == placeType) })
}

@Suite("Access decisions on the fixture agreements")
struct AccessControlTests {
    @Test func alwaysSharingZonesShareTheirStreetCameras() async throws {
        try await withAgreements { access, _, cameras in
            let street = try camera(cameras, owner: "pz-5339", kind: .street)
            #expect(try await access.decide(AccessRequest(agency: "pz-5344", camera: street.id, mode: .live)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "crisis-centre", camera: street.id, mode: .playback, footageTime: Date() - 3600)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .export, footageTime: Date() - 3600)) == .allow(grant: "owner"))
            let fire = try await access.decide(AccessRequest(agency: "siamu", camera: street.id, mode: .live))
            #expect(fire == .deny(code: "no_grant", message: "pz-5339 has granted siamu no access to its cameras"))
            let export = try await access.decide(AccessRequest(agency: "pz-5344", camera: street.id, mode: .export, footageTime: Date() - 3600))
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
            let drill = try await incidents.open(OpenIncidentRequest(kind: .traffic, at: street.position, radiusMeters: 50, exercise: true), by: "pz-5339")
            guard case .deny(_, let message) = try await access.decide(AccessRequest(agency: "pz-5339", camera: street.id, mode: .live, incident: drill.incidentId)) else {
                Issue.record("an exercise opened an event-bound grant"); return
            }
            #expect(message.hasSuffix("is an exercise"))
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
            var open = OpenIncidentRequest(kind: .publicOrder, at: platform.position, radiusMeters: 100)
            open.details.participants = ["pz-5344"]
            let incident = try await incidents.open(open, by: "pz-5340")
            let request = AccessRequest(agency: "pz-5340", camera: platform.id, mode: .live, incident: incident.incidentId)
            #expect(try await access.decide(request).isAllowed)
            // Zone 5344 takes part, but the station is in zone 5340.
            var otherZone = request
            otherZone.agency = "pz-5344"
            guard case .deny(let code, _) = try await access.decide(otherZone) else { Issue.record("another zone allowed"); return }
            #expect(code == "outside_scope")
            var playback = request
            playback.mode = .playback
            playback.footageTime = Date() - 60
            guard case .deny(let playbackCode, _) = try await access.decide(playback) else { Issue.record("playback allowed"); return }
            #expect(playbackCode == "mode_not_granted")
            // The crisis centre only during a crisis, and only for the stations the crisis selects: it takes
            // no part in the zone's incident, and a crisis elsewhere is no key to this station.
            var crisisCentre = request
            crisisCentre.agency = "crisis-centre"
            guard case .deny(let outsider, _) = try await access.decide(crisisCentre) else { Issue.record("an outsider allowed"); return }
            #expect(outsider == "not_participant")
            let elsewhere = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: try GeoPoint(lat: 50.85, lon: 4.35), radiusMeters: 10), by: "crisis-centre")
            crisisCentre.incident = elsewhere.incidentId
            guard case .deny(let away, _) = try await access.decide(crisisCentre) else { Issue.record("a crisis elsewhere is a key"); return }
            #expect(away == "condition_unmet")
            let crisis = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: platform.position, radiusMeters: 100), by: "crisis-centre")
            crisisCentre.incident = crisis.incidentId
            #expect(try await access.decide(crisisCentre).isAllowed)
        }
    }

    @Test func tunnelsAreSharedWithFireAndPoliceAtAllTimes() async throws {
        try await withAgreements { access, _, cameras in
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)
            #expect(try await access.decide(AccessRequest(agency: "siamu", camera: tunnel.id, mode: .live)).isAllowed)
            #expect(try await access.decide(AccessRequest(agency: "pz-5343", camera: tunnel.id, mode: .playback, footageTime: Date() - 3600)).isAllowed)
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
            #expect(try await access.auditExpiries().map(\.id) == ["short"])
            #expect(try await access.auditExpiries().isEmpty, "each expiry is recorded once")
            #expect(try await AuditStore(database: access.database).entries(from: nil, to: nil).contains { $0.record.action == "grant.expired" && $0.record.grant == "short" })
        }
    }

    /// Twenty-five tiny incidents, or incidents opened by anyone, do not turn a bounded
    /// incident-bound grant into standing access: the oldest open incidents up to its number
    /// count, and only those opened by a user with one of its roles.
    @Test func incidentBoundGrantsHoldWithinTheirLimits() async throws {
        try await withAgreements { access, incidents, cameras in
            let street = try camera(cameras, owner: "pz-5342", kind: .street)
            try await UserDirectory(database: access.database).add(
                User(id: "siamu.cmd", agency: "siamu", name: "C", badge: "S-1", roles: [.commander]), by: "siamu")
            try await UserDirectory(database: access.database).add(
                User(id: "siamu.op", agency: "siamu", name: "O", badge: "S-2", roles: [.operator]), by: "siamu")
            try await access.create(Grant(
                id: "bounded", owner: "pz-5342", agency: "siamu", scope: GrantScope(kinds: [.street]), modes: [.live], validFrom: .distantPast,
                purpose: "p", legalBasis: "l", condition: .whileIncidentOpen(kinds: nil, cameraInSelection: true),
                limits: IncidentLimits(maxOpenIncidents: 2, openerRoles: ["commander"])), by: "pz-5342")
            func denial(_ decision: AccessDecision) -> String? {
                if case .deny(let code, _) = decision { return code }
                return nil
            }
            func refusal(opening user: String) async throws -> (Int64, String?) {
                let opened = try await incidents.open(OpenIncidentRequest(kind: .fire, at: street.position, radiusMeters: 30), by: "siamu", user: user)
                let decision = try await access.decide(AccessRequest(agency: "siamu", camera: street.id, mode: .live, incident: opened.incidentId))
                return (opened.incidentId, denial(decision))
            }
            let (byOperator, notCommander) = try await refusal(opening: "siamu.op")
            #expect(notCommander == "opener_role_not_granted")
            // The operator's incident is open too: it counts among the two oldest.
            #expect(try await refusal(opening: "siamu.cmd").1 == nil)
            var later: [Int64] = []
            for _ in 0..<3 {
                let (id, code) = try await refusal(opening: "siamu.cmd")
                #expect(code == "incident_limit_reached")
                later.append(id)
            }
            // Closing the oldest lets the next one in, and only it.
            _ = try await incidents.close(byOperator, by: "siamu")
            func decided(_ id: Int64) async throws -> String? {
                denial(try await access.decide(AccessRequest(agency: "siamu", camera: street.id, mode: .live, incident: id)))
            }
            #expect(try await decided(later[0]) == nil)
            #expect(try await decided(later[1]) == "incident_limit_reached")
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
        func decide(user: String?, roles: [String]?, agency: String? = "siamu", expiry: Date? = nil, status: UserStatus = .active) -> AccessDecision {
            AccessControl.decide(
                AccessRequest(agency: "siamu", user: user, camera: "c", mode: .live),
                facts: AccessFacts(camera: camera, grants: [grant], incident: nil, cameraInIncidentSelection: false,
                                   userRoles: roles, userAgency: agency, userClearanceExpiry: expiry, userStatus: status)) { _, _ in true }
        }
        // A withdrawn user's open views end at their next decision (once a second).
        #expect(decide(user: "u1", roles: ["commander"], status: .suspended) == .deny(code: "user_suspended", message: "u1 is suspended"))
        #expect(decide(user: "u1", roles: ["commander"], status: .removed) == .deny(code: "user_removed", message: "u1 was removed"))
        #expect(decide(user: "u1", roles: ["commander"]).isAllowed)
        #expect(decide(user: "u1", roles: ["operator"]) != .allow(grant: "g"))
        #expect(decide(user: "u1", roles: ["commander"], agency: "pz-5339") == .deny(code: "user_unknown", message: "u1 is not a user of siamu"))
        #expect(decide(user: "u1", roles: ["commander"], expiry: .distantPast) == .deny(code: "clearance_expired", message: "the clearance of u1 expired"))
    }
}

@Suite("Retention, evidence holds and justified consultations")
struct RetentionAndConsultationTests {
    private let day = RetentionPolicy.day

    private func code(_ decision: AccessDecision) -> String? {
        if case .deny(let code, _) = decision { return code }
        return nil
    }

    @Test func retentionIsCappedByTheRegime() {
        #expect(RetentionPolicy(regime: "police", declaredDays: 400).retentionDays == 365)
        #expect(RetentionPolicy(regime: "police", declaredDays: 400).judicialOnlyAfterDays == 30)
        #expect(RetentionPolicy(regime: "designated-place", declaredDays: 120).retentionDays == 90)
        #expect(RetentionPolicy(regime: "public-place", declaredDays: 30).retentionDays == 30)
        #expect(RetentionPolicy(regime: "fr-csi", declaredDays: 60).retentionDays == 30)
        #expect(RetentionPolicy(regime: "designated-place", declaredDays: 90).judicialOnlyAfterDays == nil)
    }

    @Test func footageRulesHoldForEveryoneIncludingTheOwner() async throws {
        try await withAgreements { access, _, cameras in
            let street = try camera(cameras, owner: "pz-5339", kind: .street)
            func playback(_ agency: String, daysAgo: Double?, prosecutor: String? = nil) async throws -> AccessDecision {
                try await access.decide(AccessRequest(
                    agency: agency, camera: street.id, mode: .playback, footageTime: daysAgo.map { Date() - $0 * day }, prosecutorReference: prosecutor))
            }
            #expect(try await playback("crisis-centre", daysAgo: 2).isAllowed)
            #expect(code(try await playback("crisis-centre", daysAgo: 40)) == "prosecutor_decision_required")
            #expect(code(try await playback("pz-5339", daysAgo: 40)) == "prosecutor_decision_required", "the owner too")
            #expect(try await playback("crisis-centre", daysAgo: 40, prosecutor: "PK-BXL-2026/1234").isAllowed)
            #expect(code(try await playback("crisis-centre", daysAgo: 400, prosecutor: "PK-1")) == "footage_expired")
            #expect(code(try await playback("crisis-centre", daysAgo: nil)) == "footage_time_required")
            #expect(code(try await playback("crisis-centre", daysAgo: -1)) == "footage_in_future")
        }
    }

    @Test func holdsSendPreservationRequestsAndOverrideRetention() async throws {
        try await withAgreements { access, incidents, cameras in
            let holds = EvidenceHolds(database: access.database)
            let street = try camera(cameras, owner: "pz-5339", kind: .street)
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)
            let incident = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: street.position, radiusMeters: 50), by: "crisis-centre")
            let from = Date() - 31 * day
            let tunnelPlayback = AccessRequest(agency: "pz-5343", camera: tunnel.id, mode: .playback, footageTime: from + 60)
            #expect(code(try await access.decide(tunnelPlayback)) == "footage_expired")

            let hold = try await holds.create(
                HoldRequest(incident: incident.incidentId, cameras: [street.id, tunnel.id, tunnel.id], footageFrom: from, footageTo: Date() - 30 * day,
                            legalReference: "PV BR.12.L3.004211/2026"),
                agency: "crisis-centre", user: nil)
            #expect(hold.cameras == [street.id, tunnel.id].sorted())
            #expect(hold.preservationRequests.map(\.owner) == ["bruxelles-mobilite", "pz-5339"])
            let police = try #require(hold.preservationRequests.first { $0.owner == "pz-5339" })
            #expect(abs(police.deadline.timeIntervalSince(from + 365 * day)) < 1)
            #expect(!police.footageMayBeLost)
            let road = try #require(hold.preservationRequests.first { $0.owner == "bruxelles-mobilite" })
            #expect(road.footageMayBeLost, "a 30-day retention has already overwritten footage from 31 days ago")
            #expect(road.sequence == 1 && road.cameras == [tunnel.id])
            #expect(try await access.decide(tunnelPlayback).isAllowed, "held footage is kept")

            let second = try await holds.create(
                HoldRequest(incident: incident.incidentId, cameras: [tunnel.id], footageFrom: Date() - 3600, footageTo: Date(), legalReference: "PV 2"),
                agency: "crisis-centre", user: nil)
            #expect(second.preservationRequests.map(\.sequence) == [2], "numbered per owner channel")
            #expect(try await holds.holds(for: "bruxelles-mobilite").map(\.id) == [hold.id, second.id], "owners see the holds on their cameras")

            await #expect(throws: IncidentError(.notIncidentAgency, message: "siamu does not take part in incident \(incident.incidentId)", field: "incident")) {
                _ = try await holds.create(HoldRequest(incident: incident.incidentId, cameras: [tunnel.id], footageFrom: from, footageTo: Date(), legalReference: "x"),
                                           agency: "siamu", user: nil)
            }
            let badRange = await #expect(throws: IncidentError.self) {
                _ = try await holds.create(HoldRequest(incident: incident.incidentId, cameras: [tunnel.id], footageFrom: Date(), footageTo: from, legalReference: "x"),
                                           agency: "crisis-centre", user: nil)
            }
            #expect(badRange?.code == "hold_invalid")
            let unknown = await #expect(throws: IncidentError.self) {
                _ = try await holds.create(HoldRequest(incident: incident.incidentId, cameras: ["nope"], footageFrom: from, footageTo: Date(), legalReference: "x"),
                                           agency: "crisis-centre", user: nil)
            }
            #expect(unknown?.code == "camera_unknown")
            let notMine = await #expect(throws: IncidentError.self) { _ = try await holds.release(hold.id, agency: "pz-5339", user: nil, reason: "x") }
            #expect(notMine?.code == "not_hold_agency")
            let expiring = try await holds.create(
                HoldRequest(incident: incident.incidentId, cameras: [street.id], footageFrom: from, footageTo: Date(), legalReference: "PV 3",
                            expiresAt: Date() + 60), agency: "crisis-centre", user: nil)
            #expect(try await holds.auditExpiries().isEmpty)
            #expect(try await holds.auditExpiries(at: Date() + 120) == [expiring.id])
            #expect(try await holds.auditExpiries(at: Date() + 180).isEmpty)
            let released = try await holds.release(hold.id, agency: "crisis-centre", user: nil, reason: "case closed")
            #expect(released.releasedAt != nil)
            #expect(code(try await access.decide(tunnelPlayback)) == "footage_expired", "a released hold no longer keeps footage")
            let actions = try await AuditStore(database: access.database).entries(from: nil, to: nil).map(\.record.action)
            #expect(actions.filter { $0 == "preservation.requested" }.count == 4)
            #expect(actions.contains("hold.expired"))
            #expect(actions.contains("hold.created") && actions.contains("hold.released"))
        }
    }

    @Test func consultationsNeedANamedUserAndAJustificationAndAreAudited() async throws {
        try await withAgreements { access, incidents, cameras in
            let users = UserDirectory(database: access.database)
            try await users.add(User(id: "pz.agent", agency: "pz-5343", name: "F. Agent", badge: "P-77", roles: [.operator]), by: "pz-5343")
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)
            let real = try await incidents.open(OpenIncidentRequest(kind: .traffic, at: tunnel.position, radiusMeters: 50), by: "pz-5343")
            let drill = try await incidents.open(OpenIncidentRequest(kind: .traffic, at: tunnel.position, radiusMeters: 50, exercise: true), by: "pz-5343")
            let why = Justification(reason: .trafficManagement, text: "Collision in the tunnel, checking the queue", incident: real.incidentId)
            func start(user: String? = "pz.agent", _ justification: Justification?, agency: String = "pz-5343") async throws -> ViewTicket {
                try await access.start(Consultation(
                    request: AccessRequest(agency: agency, user: user, camera: tunnel.id, mode: .live), justification: justification, source: "test"))
            }
            for (user, justification, expected) in [
                (nil, why, "named_user_required"), ("pz.agent", nil, "justification_required"),
                ("pz.agent", Justification(reason: .rescue, text: "  ", incident: real.incidentId), "justification_required"),
                ("pz.agent", Justification(reason: .training, text: "drill on a real one", incident: real.incidentId), "justification_invalid"),
                ("pz.agent", Justification(reason: .rescue, text: "not a drill reason", incident: drill.incidentId), "justification_invalid"),
            ] as [(String?, Justification?, String)] {
                let error = await #expect(throws: IncidentError.self) { _ = try await start(user: user, justification) }
                #expect(error?.code == expected)
            }
            let ticket = try await start(why)
            #expect(ticket.grant.hasPrefix("fixture-"), "allowed by a fixture agreement, not as owner: \(ticket.grant)")
            try await access.stop(view: ticket.view, agency: "pz-5343", user: "pz.agent")
            let twice = await #expect(throws: IncidentError.self) { try await access.stop(view: ticket.view, agency: "pz-5343", user: "pz.agent") }
            #expect(twice?.code == "view_stopped")
            // A refusal by the decision function is audited too: an agency citing an incident it takes no part in.
            try await users.add(User(id: "stib.op", agency: "stib", name: "G. Op", badge: "S-1", roles: [.operator]), by: "stib")
            let refused = await #expect(throws: IncidentError.self) { _ = try await start(user: "stib.op", why, agency: "stib") }
            #expect(refused?.code == "not_participant")
            // Five NULs are not a justification, nor are zero-width spaces.
            for invisible in ["\u{0}\u{0}\u{0}\u{0}\u{0}", "\u{200B}\u{200B}\u{200B}\u{200B}\u{200B}\u{200B}", "ab\u{0}\u{0}\u{0}"] {
                let error = await #expect(throws: IncidentError.self) {
                    _ = try await start(Justification(reason: .trafficManagement, text: invisible, incident: real.incidentId))
                }
                #expect(error?.code == "justification_required")
            }

            let records = try await AuditStore(database: access.database).entries(from: nil, to: nil).map(\.record)
            let started = try #require(records.first { $0.action == "view.started" })
            #expect(started.user == "pz.agent" && started.badge == "P-77" && started.reason == "traffic-management")
            #expect(started.justification == why.text && started.incident == real.incidentId && started.cameras == [tunnel.id] && started.grant == ticket.grant)
            #expect(records.contains { $0.action == "view.stopped" && $0.details?["view"] == ticket.view })
            #expect(records.contains { $0.action == "view.refused" && $0.user == "stib.op" && $0.details?["code"] == "not_participant" })
            // Refusals before the decision (no user, no justification) are in the log as well.
            for code in ["named_user_required", "justification_required", "justification_invalid"] {
                #expect(records.contains { $0.action == "view.refused" && $0.details?["code"] == code }, "\(code) not audited")
            }
            #expect(records.filter { $0.action == "view.refused" && $0.details?["code"] == "justification_required" }.count == 5)
        }
    }
}
