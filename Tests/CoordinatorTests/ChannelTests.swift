import Bus
import Foundation
import Testing
import TestSupport

/// An incident's channel, its per-agency copies and a revoked grant, on a coordinator running
/// in this process (see `InProcessCoordinator`).
@Suite("Channels in process", .serialized, .timeLimit(.minutes(1)))
struct ChannelTests {
    /// A street camera of zone 5339 (the fixture: shared with the crisis centre at all times).
    static let camera = (id: "pz5339-street-0001", lat: 50.7965016, lon: 4.3992992)

    private func openIncident(as agency: String, participants: [String], in coordinator: InProcessCoordinator) throws -> (id: Int, cameras: [String]) {
        let client = try coordinator.client(agency)
        defer { client.close() }
        let opened = try client.call("incident.open", [
            "kind": "public-order", "at": ["lat": Self.camera.lat, "lon": Self.camera.lon], "radius_meters": 60,
            "details": ["participants": participants],
        ])
        let id = try #require((opened["incident"] as? [String: Any])?["id"] as? Int)
        return (id, (opened["cameras"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
    }

    /// The lead and a participant each receive the change on their own topic; an agency that
    /// takes no part cannot subscribe and receives nothing.
    @Test func eachCoordinatingAgencyReceivesItsOwnCopy() async throws {
        try await InProcessCoordinator.with(agencies: ["pz-5339", "crisis-centre", "siamu"]) { coordinator in
            let (id, cameras) = try await offThePool { try openIncident(as: "pz-5339", participants: ["crisis-centre"], in: coordinator) }
            #expect(cameras.contains(Self.camera.id), "\(cameras)")
            let received = try await offThePool { () -> [String: [BusEvent]] in
                var clients: [String: BusClient] = [:]
                defer { clients.values.forEach { $0.close() } }
                for agency in ["crisis-centre", "siamu"] {
                    let client = try coordinator.client(agency)
                    try client.subscribeAndWait(["incident/\(id)/\(agency)/"])
                    clients[agency] = client
                }
                let lead = try coordinator.client("pz-5339")
                defer { lead.close() }
                _ = try lead.call("incident.update", ["incident": id, "title": "Gathering at the square"])
                return try clients.mapValues { try $0.events(within: .milliseconds(600)) }
            }
            let participant = try #require(received["crisis-centre"])
            #expect(participant.map(\.type) == ["incident.updated"] && participant.first?.seq == 2, "\(participant.map(\.type))")
            #expect(participant.first?.topic == "incident/\(id)/crisis-centre/")
            #expect(received["siamu"]?.isEmpty == true, "an agency outside the incident receives nothing")
        }
    }

    /// Revoking a grant takes the cameras it showed out of the grantee's copy at once, with the
    /// next sequence number.
    @Test func aRevokedGrantRemovesItsCamerasAtOnce() async throws {
        try await InProcessCoordinator.with(agencies: ["pz-5339", "crisis-centre"]) { coordinator in
            let (id, _) = try await offThePool { try openIncident(as: "pz-5339", participants: ["crisis-centre"], in: coordinator) }
            let events = try await offThePool { () -> [BusEvent] in
                let follower = try coordinator.client("crisis-centre")
                defer { follower.close() }
                let snapshot = try follower.call("incident.snapshot", ["incident": id])
                let seen = (snapshot["cameras"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                #expect(seen.contains(Self.camera.id), "\(seen)")
                try follower.subscribeAndWait(["incident/\(id)/crisis-centre/"])
                let owner = try coordinator.client("pz-5339")
                defer { owner.close() }
                let grants = try JSONSerialization.jsonObject(with: try owner.requestJSON("grant.list", [:])) as? [[String: Any]] ?? []
                let grant = try #require(grants.first { $0["owner"] as? String == "pz-5339" && $0["agency"] as? String == "crisis-centre" }?["id"] as? String)
                _ = try owner.call("grant.revoke", ["grant": grant, "reason": "agreement suspended"])
                return try follower.events(within: .milliseconds(600))
            }
            let change = try #require(events.first { $0.type == "incident.access-changed" }, "\(events.map(\.type))")
            let body = try JSONSerialization.jsonObject(with: change.payload) as? [String: Any]
            let removed = (body?["body"] as? [String: Any])?["removed"] as? [String] ?? []
            #expect(removed.contains(Self.camera.id), "\(removed)")
            #expect(change.seq == 2)
        }
    }
}
