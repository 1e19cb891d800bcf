import Foundation
import Geo
import Testing
@testable import Incidents

/// Retention enforced by deletion, evidence holds that prevent it, and the relay's byte budget,
/// with the clock run forward (the test's own `now`).
@Suite("Footage catalog: retention, holds, budget")
struct FootageCatalogTests {
    private let day = RetentionPolicy.day

    private func segment(_ camera: Camera, at start: Date, bytes: Int = 1_000) -> FootageSegment {
        FootageSegment(
            camera: camera.id, relay: "coordinator", file: "\(camera.id)/\(Int(start.timeIntervalSince1970 * 1000)).ts", start: start,
            end: start + 6, bytes: bytes, keyframes: [0, 2, 4], incidents: [1])
    }

    private func deletions(_ audit: AuditStore) async throws -> [AuditRecord] {
        try await audit.entries(from: nil, to: nil).map(\.record).filter { $0.action == "footage.deleted" }
    }

    @Test func footageGoesAtTheEndOfItsRetentionUnlessAHoldKeepsIt() async throws {
        try await withAgreements { access, incidents, cameras in
            let catalog = FootageCatalog(database: access.database)
            let audit = AuditStore(database: access.database)
            let holds = EvidenceHolds(database: access.database)
            let tunnel = try camera(cameras, owner: "bruxelles-mobilite", kind: .tunnel)  // 30 days
            let street = try camera(cameras, owner: "pz-5339", kind: .street)  // police: 365 days
            let now = Date()
            let old = now - 31 * day
            let (a, b, c) = (segment(tunnel, at: old), segment(tunnel, at: old + 6), segment(tunnel, at: old + 12))
            for item in [a, b, c, segment(tunnel, at: now - day), segment(street, at: old)] { try await catalog.add(item) }
            let incident = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: tunnel.position, radiusMeters: 50), by: "crisis-centre")
            let hold = try await holds.create(
                HoldRequest(incident: incident.incidentId, cameras: [tunnel.id], footageFrom: old + 7, footageTo: old + 8, legalReference: "PV 2026/77"),
                agency: "crisis-centre", user: nil, at: now)

            // Now: the tunnel's month has passed for a and c; b is held; the police camera keeps a year.
            let first = try await catalog.sweepRetention(at: now)
            #expect(first.map(\.files) == [[a.file], [c.file]], "\(first)")
            #expect(first.allSatisfy { $0.reason == .retention && $0.camera == tunnel.id })
            #expect(try await catalog.segments(camera: tunnel.id, from: old, to: now).map(\.file) == [b.file, segment(tunnel, at: now - day).file])
            let audited = try await deletions(audit)
            #expect(audited.count == 2 && audited.allSatisfy { $0.cameras == [tunnel.id] && $0.reason == "retention" && $0.footageFrom != nil })

            // A year on: everything unheld is gone, one audit entry per camera and range (not per file).
            let later = try await catalog.sweepRetention(at: now + 400 * day)
            #expect(Set(later.map(\.camera)) == [tunnel.id, street.id])
            #expect(try await catalog.segments(camera: tunnel.id, from: old, to: now + 400 * day).map(\.file) == [b.file], "the hold keeps b")
            // Released, the hold keeps nothing.
            _ = try await holds.release(hold.id, agency: "crisis-centre", user: nil, reason: "case closed")
            #expect(try await catalog.sweepRetention(at: now + 400 * day).map(\.files) == [[b.file]])
            #expect(try await catalog.sweepRetention(at: now + 400 * day).isEmpty, "deleted once")
            #expect(try await deletions(audit).count == 5)
        }
    }

    @Test func theBudgetDeletesTheOldestUnheldFootageAndAsksOwnersToPreserveHeldFootageAtRisk() async throws {
        try await withAgreements { access, incidents, cameras in
            let catalog = FootageCatalog(database: access.database)
            let holds = EvidenceHolds(database: access.database)
            let street = try camera(cameras, owner: "pz-5339", kind: .street)
            let now = Date()
            let segments = (0..<10).map { segment(street, at: now - 3_600 + Double($0) * 6, bytes: 1_000) }
            for item in segments { try await catalog.add(item) }
            // 10,000 bytes kept, 6,000 allowed: the four oldest go.
            let (deleted, atRisk) = try await catalog.enforceBudget(relay: "coordinator", budget: 6_000, at: now)
            #expect(deleted.flatMap(\.files) == segments.prefix(4).map(\.file) && deleted.allSatisfy { $0.reason == .diskBudget })
            #expect(atRisk.isEmpty)
            #expect(try await catalog.bytes(at: now).kept == 6_000)

            // Held footage that fills the budget stays, and its owner is asked to preserve it (once an hour).
            let incident = try await incidents.open(OpenIncidentRequest(kind: .crisis, at: street.position, radiusMeters: 50), by: "crisis-centre")
            _ = try await holds.create(
                HoldRequest(incident: incident.incidentId, cameras: [street.id], footageFrom: now - 7_200, footageTo: now, legalReference: "PV 2026/78"),
                agency: "crisis-centre", user: nil, at: now)
            let (none, asked) = try await catalog.enforceBudget(relay: "coordinator", budget: 5_000, at: now)
            #expect(none.isEmpty, "held footage is never deleted for room")
            #expect(asked.map(\.owner) == ["pz-5339"] && asked.first?.cameras == [street.id] && asked.first?.heldBytes == 6_000)
            #expect(try await catalog.bytes(at: now) == (6_000, 6_000))
            #expect(try await catalog.enforceBudget(relay: "coordinator", budget: 5_000, at: now + 60).atRisk.isEmpty, "not asked again within the hour")
            #expect(try await catalog.enforceBudget(relay: "coordinator", budget: 5_000, at: now + 3_700).atRisk.count == 1)
        }
    }
}
