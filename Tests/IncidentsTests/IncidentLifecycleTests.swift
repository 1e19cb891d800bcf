import Foundation
import Geo
import Testing
@testable import Incidents
import VigilProtocol

@Suite("Incident life cycle, details and hand-over")
struct IncidentLifecycleTests {
    let grandPlace = try! GeoPoint(lat: 50.8467, lon: 4.3525)

    private func expectRefusal(_ code: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected \(code)")
        } catch let error as IncidentError {
            #expect(error.code == code, "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func followsTheLifeCycleAndRefusesIllegalTransitions() async throws {
        try await withService { service, _, _ in
            var request = OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300)
            request.draft = true
            let draft = try await service.open(request, by: "crisis-centre")
            #expect(draft.incident.status == .draft)
            #expect(draft.added.map(\.id) == ["near", "secret"], "a draft prepares its selection")
            let id = draft.incidentId
            await expectRefusal("status_transition_invalid") { _ = try await service.update(id, IncidentUpdate(status: .closed), by: "crisis-centre") }

            var sequence = draft.sequence
            for status in [IncidentStatus.open, .onHold, .open, .closed, .archived] {
                let change = try await service.update(id, IncidentUpdate(status: status), by: "crisis-centre")
                sequence += 1
                #expect(change.sequence == sequence)
                #expect(change.incident.status == status)
                #expect(change.fields == ["status"])
                #expect(change.change == (status == .closed ? .closed : .updated))
                if status == .closed { #expect(Set(change.removed) == ["near", "secret"]) }
            }
            let archived = try await service.snapshot(id)
            #expect(archived.cameras.isEmpty && archived.incident.closedAt != nil)
            await expectRefusal("status_transition_invalid") { _ = try await service.update(id, IncidentUpdate(status: .open), by: "crisis-centre") }
            await expectRefusal("incident_closed") { _ = try await service.redraw(id, to: .circle(center: grandPlace, radiusMeters: 100), by: "crisis-centre") }

            let other = try await service.open(OpenIncidentRequest(kind: .traffic, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            let cancelled = try await service.update(other.incidentId, IncidentUpdate(status: .cancelled), by: "crisis-centre")
            #expect(cancelled.change == .closed && cancelled.incident.status == .cancelled && cancelled.removed.count == 2)
            await expectRefusal("incident_closed") { _ = try await service.update(other.incidentId, IncidentUpdate(status: .cancelled), by: "crisis-centre") }
        }
    }

    @Test func onlyTheLeadAgencyChangesAnIncident() async throws {
        try await withService { service, _, _ in
            let id = try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300), by: "crisis-centre").incidentId
            await expectRefusal("not_lead_agency") { _ = try await service.update(id, IncidentUpdate(severity: .severe), by: "siamu") }
            await expectRefusal("not_lead_agency") { _ = try await service.redraw(id, to: .circle(center: grandPlace, radiusMeters: 50), by: "siamu") }
            await expectRefusal("not_lead_agency") { _ = try await service.close(id, by: "siamu") }
            await expectRefusal("not_lead_agency") { _ = try await service.handOver(id, to: "siamu", commander: nil, by: "siamu") }
            await expectRefusal("nothing_changed") { _ = try await service.update(id, IncidentUpdate(status: .open), by: "crisis-centre") }
            #expect(try await service.snapshot(id).incident.sequence == 1, "nothing refused was journalled")
        }
    }

    /// A recomputation after a registry reload runs beside the requests: when a request changed
    /// the incident after the recomputation read it, the request's change stands.
    @Test func aRecomputationNeverUndoesAChangeMadeMeanwhile() async throws {
        try await withService { service, _, _ in
            let opened = try await service.open(OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            let id = opened.incidentId
            // The operator narrows the incident after the recomputation read it at its first sequence.
            let narrowed = try await service.redraw(id, to: .circle(center: grandPlace, radiusMeters: 20), by: "crisis-centre")
            #expect(!narrowed.removed.isEmpty)
            let wide = IncidentArea.circle(center: grandPlace, radiusMeters: 300)
            await expectRefusal("nothing_changed") {
                _ = try await service.redraw(id, to: wide, by: IncidentService.systemActor, recomputing: opened.sequence)
            }
            let stored = try await service.snapshot(id)
            #expect(stored.incident.radiusMeters == 20 && stored.incident.sequence == narrowed.sequence, "the operator's change stands")
            #expect(Set(stored.cameras.map(\.id)) == Set(opened.added.map(\.id)).subtracting(narrowed.removed))
            // Read at the current sequence, the same recomputation is written.
            let recomputed = try await service.redraw(id, to: wide, by: IncidentService.systemActor, recomputing: narrowed.sequence)
            #expect(recomputed.sequence == narrowed.sequence + 1 && Set(recomputed.added.map(\.id)) == Set(narrowed.removed))
        }
    }

    @Test func storesDetailsAndHandsOver() async throws {
        try await withService { service, database, _ in
            let users = UserDirectory(database: database)
            try await users.add(User(id: "cc.dupont", agency: "crisis-centre", name: "A. Dupont", badge: "CC-17", roles: [.commander]), by: "crisis-centre")
            try await users.add(User(id: "siamu.peeters", agency: "siamu", name: "B. Peeters", badge: "F-203", roles: [.commander]), by: "siamu")
            var request = OpenIncidentRequest(kind: .fire, at: grandPlace, radiusMeters: 300)
            request.details = IncidentDetails(
                severity: .severe, urgency: .immediate, certainty: .observed, participants: ["siamu"], commander: "cc.dupont",
                externalReferences: ["dispatch": "CAD-2026-004211"])
            let opened = try await service.open(request, by: "crisis-centre")
            #expect(opened.incident.details == request.details)

            var bad = request
            bad.details.commander = "siamu.peeters"
            await expectRefusal("commander_invalid") { _ = try await service.open(bad, by: "crisis-centre") }
            bad.details = IncidentDetails(participants: ["nobody"])
            await expectRefusal("agency_unknown") { _ = try await service.open(bad, by: "crisis-centre") }

            let id = opened.incidentId
            let updated = try await service.update(
                id, IncidentUpdate(severity: .extreme, externalReferences: ["dispatch": "", "police": "PV-55"]), by: "crisis-centre")
            #expect(updated.fields == ["severity", "external_references"])
            #expect(updated.incident.details.externalReferences == ["police": "PV-55"])

            let handed = try await service.handOver(id, to: "siamu", commander: "siamu.peeters", by: "crisis-centre")
            #expect(handed.change == .handedOver)
            #expect(handed.incident.leadAgency == "siamu")
            #expect(handed.incident.details.participants == ["crisis-centre"], "the previous lead stays on")
            #expect(handed.incident.details.commander == "siamu.peeters")
            await expectRefusal("not_lead_agency") { _ = try await service.update(id, IncidentUpdate(severity: .minor), by: "crisis-centre") }
            #expect(try await service.snapshot(id).incident == handed.incident)
        }
    }

    @Test func linksPartsToTheirParentWithoutCycles() async throws {
        try await withService { service, _, _ in
            let march = try await service.open(OpenIncidentRequest(kind: .demonstration, at: grandPlace, radiusMeters: 300), by: "crisis-centre")
            var split = OpenIncidentRequest(kind: .publicOrder, at: grandPlace, radiusMeters: 100, title: "group that split off")
            split.details.parent = march.incidentId
            let part = try await service.open(split, by: "crisis-centre")
            #expect(part.incident.details.parent == march.incidentId)
            #expect(try await service.snapshot(march.incidentId).children == [part.incidentId])
            await expectRefusal("parent_invalid") {
                _ = try await service.update(march.incidentId, IncidentUpdate(parent: part.incidentId), by: "crisis-centre")
            }
            await expectRefusal("parent_invalid") { _ = try await service.update(march.incidentId, IncidentUpdate(parent: march.incidentId), by: "crisis-centre") }
            split.details.parent = 999
            await expectRefusal("parent_invalid") { _ = try await service.open(split, by: "crisis-centre") }
        }
    }

    @Test func readsUpdatesFromTheWire() throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let body = try decoder.decode(
            UpdateIncidentBody.self,
            from: Data(#"{"incident": 4, "status": "on-hold", "severity": "Severe", "external_references": {"dispatch": "X"}}"#.utf8))
        #expect(try body.update() == IncidentUpdate(status: .onHold, severity: .severe, externalReferences: ["dispatch": "X"]))
        for (json, code) in [(#"{"incident": 4, "severity": "bad"}"#, "severity_invalid"), (#"{"incident": 4, "status": "paused"}"#, "status_invalid")] {
            let bad = try decoder.decode(UpdateIncidentBody.self, from: Data(json.utf8))
            #expect(throws: IncidentError.self) { try bad.update() }
            do { _ = try bad.update() } catch { #expect(error.code == code) }
        }
    }
}
