import Foundation
import Testing

/// Justified consultations and evidence holds over the bus, from the Python client written from docs/protocol.md.
@Suite("vigil consultations and evidence holds over the bus", .serialized, .timeLimit(.minutes(2)))
struct ConsultationTests {

    /// A Bruxelles Mobilité tunnel camera of the fixture: its id and position.
    private func tunnelCamera() throws -> (id: String, lat: Double, lon: Double) {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("fixtures/brussels/cameras.geojson"))
        let collection = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for feature in collection["features"] as? [[String: Any]] ?? [] {
            let properties = feature["properties"] as? [String: Any] ?? [:]
            guard properties["owner"] as? String == "bruxelles-mobilite",
                  let coordinates = (feature["geometry"] as? [String: Any])?["coordinates"] as? [Double] else { continue }
            return (try #require(properties["id"] as? String), coordinates[1], coordinates[0])
        }
        throw ProcessFailure(description: "no tunnel camera in the fixture")
    }

    @Test func consultationsNeedAJustificationAndHoldsReachTheOwner() async throws {
        try await withServer { data, _ in
            let tunnel = try tunnelCamera()
            #expect(try await vigil("user", "add", "pz.cmd", "--name", "H. Commissaire", "--badge", "P-5343-12", "--role", "commander",
                                    "--data", data.path, "--agency", "pz-5343").status == 0)
            let opened = try await vigil("incident", "open", "--kind", "traffic", "--at", "\(tunnel.lat),\(tunnel.lon)", "--radius", "50",
                                         "--data", data.path, "--agency", "pz-5343", "--json")
            let id = try #require((try json(opened.stdout)["incident"] as? [String: Any])?["id"] as? Int)

            let footageFrom = Date().addingTimeInterval(-7200).formatted(.iso8601)
            let requests: [[String: Any]] = [
                ["op": "view.start", "body": ["camera": tunnel.id, "mode": "live"]],
                ["op": "view.start", "body": ["camera": tunnel.id, "mode": "live",
                                              "justification": ["reason": "traffic-management", "text": "Queue after a collision", "incident": id]]],
                ["op": "hold.create", "body": ["incident": id, "cameras": [tunnel.id], "footage_from": footageFrom,
                                               "footage_to": Date().formatted(.iso8601), "legal_reference": "PV BR.55.L1.000123/2026"]],
                ["op": "view.list", "body": ["incident": "the tunnel one"]],
            ]
            // The owner listens on its channel; the police commander may not.
            let owner = try await BusSession(data, as: "keys/agencies/bruxelles-mobilite.key_secret", topics: ["owner/bruxelles-mobilite/"], linger: 6)
            let commander = try await BusSession.run(data, as: "keys/users/pz.cmd.key_secret", requests: requests, topics: ["owner/bruxelles-mobilite/"])
            let ownerEvents = try await owner.finished().events
            let replies = commander.replies
            #expect(replies.count == 4)
            #expect((replies[3]["error"] as? [String: Any])?["field"] as? String == "body.incident", "a view list needs a numeric incident: \(replies[3])")
            #expect((replies[3]["error"] as? [String: Any])?["code"] as? String == "bad_request")
            #expect((replies[0]["error"] as? [String: Any])?["code"] as? String == "justification_required")
            let ticket = try #require(replies[1]["result"] as? [String: Any], "\(replies[1])")
            #expect(ticket["camera"] as? String == tunnel.id && ticket["view"] is String)
            let hold = try #require(replies[2]["result"] as? [String: Any], "\(replies[2])")
            let holdId = try #require(hold["id"] as? Int)
            #expect(commander.events.isEmpty, "the owner channel is the owner's only")
            let preservation = try #require(ownerEvents.compactMap { $0["event"] as? [String: Any] }
                .first { $0["type"] as? String == "preservation.requested" })
            #expect(preservation["type"] as? String == "preservation.requested" && preservation["seq"] as? Int == 1)
            #expect((preservation["body"] as? [String: Any])?["cameras"] as? [String] == [tunnel.id])

            // The owner lists the holds on its cameras; only the agency that placed a hold releases it.
            let listed = try await vigil("hold", "list", "--data", data.path, "--agency", "bruxelles-mobilite")
            #expect(listed.stdout.contains("hold \(holdId)"), "\(listed.stdout)")
            let wrong = try await vigil("hold", "release", "\(holdId)", "--reason", "x", "--data", data.path, "--agency", "bruxelles-mobilite")
            #expect(wrong.status == 1 && wrong.stderr.contains("not_hold_agency"))
            #expect(try await vigil("hold", "release", "\(holdId)", "--reason", "footage copied", "--data", data.path, "--user", "pz.cmd", "--agency", "pz-5343").status == 0)

            // Who is watching what: the incident's lead sees the commander's view (not its text), so does
            // the camera's owner; an agency outside the incident is refused, another owner sees nothing of it.
            for (arguments, owner) in [(["--incident", "\(id)", "--agency", "pz-5343"], false), (["--agency", "bruxelles-mobilite"], true)] {
                let listed = try await run(vigilBinary, ["view", "list", "--json", "--data", data.path] + arguments)
                let views = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.stderr)")
                #expect(views.count == 1 && views[0]["user"] as? String == "pz.cmd" && views[0]["agency"] as? String == "pz-5343"
                    && views[0]["camera"] as? String == tunnel.id && views[0]["reason"] as? String == "traffic-management"
                    && views[0]["incident"] as? Int == id && views[0]["justification"] == nil, "owner \(owner): \(views)")
            }
            let outsider = try await vigil("view", "list", "--incident", "\(id)", "--data", data.path, "--agency", "pz-5339")
            #expect(outsider.status == 1 && outsider.stderr.contains("not_participant"), "\(outsider.stderr)")
            let otherOwner = try await vigil("view", "list", "--data", data.path, "--agency", "stib")
            #expect(otherOwner.status == 0 && otherOwner.stdout.contains("Nobody is watching."), "\(otherOwner.stdout)")
            let badIncident = try await vigil("view", "list", "--incident", "tomorrow", "--data", data.path)
            #expect(badIncident.status != 0 && badIncident.stderr.contains("--incident"), "\(badIncident.stderr)")

            let exported = try await vigil("audit", "export", "--data", data.path)
            let records = try exported.stdout.split(separator: "\n").compactMap { try json(String($0))["record"] as? [String: Any] }
            let started = try #require(records.first { $0["action"] as? String == "view.started" })
            #expect(started["user"] as? String == "pz.cmd" && started["badge"] as? String == "P-5343-12")
            #expect(started["justification"] as? String == "Queue after a collision" && started["reason"] as? String == "traffic-management")
            #expect(records.contains { $0["action"] as? String == "preservation.requested" && $0["recipient"] as? String == "bruxelles-mobilite" })
            #expect(records.contains { $0["action"] as? String == "hold.released" && $0["user"] as? String == "pz.cmd" })
            #expect(records.filter { $0["action"] as? String == "view.listed" }.count == 3)
            #expect(records.contains { $0["action"] as? String == "view.list.refused" && $0["agency"] as? String == "pz-5339" })
        }
    }
}
