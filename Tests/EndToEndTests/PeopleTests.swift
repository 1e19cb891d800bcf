import Foundation
import Testing

/// Named users with their own keys, role checks on the bus, and the commander's commands.
@Suite("vigil users, roles and incident commands", .serialized, .timeLimit(.minutes(2)))
struct PeopleTests {
    @Test func namedUsersAuthenticateAndOnlyAuditorsReadTheLog() async throws {
        try await withServer { data, _ in
            let added = try await vigil(
                "user", "add", "cc.auditor", "--name", "C. Janssens", "--badge", "AUD-4", "--role", "auditor",
                "--data", data.path, "--agency", "crisis-centre")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("keys/users/cc.auditor.key_secret").path))
            #expect(try await vigil("user", "add", "cc.op", "--name", "D. Op", "--badge", "OP-9", "--role", "operator",
                                    "--data", data.path).status == 0)
            let duplicate = try await vigil("user", "add", "cc.op", "--name", "X", "--badge", "1", "--role", "operator", "--data", data.path)
            #expect(duplicate.status == 1 && duplicate.stderr.contains("user_exists"), "\(duplicate.stderr)")
            let badRole = try await vigil("user", "add", "cc.x", "--name", "X", "--badge", "1", "--role", "king", "--data", data.path)
            #expect(badRole.status != 0 && badRole.stderr.contains("--role king"))

            let listed = try await vigil("user", "list", "--data", data.path, "--json")
            let users = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            #expect(users.compactMap { $0["id"] as? String } == ["cc.auditor", "cc.op"])

            // The agency's own key and an operator are refused; the auditor reads, and the read is itself audited.
            let asAgency = try await vigil("audit", "read", "--data", data.path)
            #expect(asAgency.status == 1 && asAgency.stderr.contains("role_required"), "\(asAgency.stderr)")
            let asOperator = try await vigil("audit", "read", "--data", data.path, "--user", "cc.op")
            #expect(asOperator.status == 1 && asOperator.stderr.contains("role_required"))
            let read = try await vigil("audit", "read", "--data", data.path, "--user", "cc.auditor")
            #expect(read.status == 0, "\(read.stderr)")
            let actions = try read.stdout.split(separator: "\n").map { try json(String($0)) }.compactMap { ($0["record"] as? [String: Any])?["action"] as? String }
            #expect(actions.contains("user.added") && actions.contains("audit.read.refused"))
            let again = try await vigil("audit", "read", "--data", data.path, "--user", "cc.auditor")
            let users2 = try again.stdout.split(separator: "\n").map { try json(String($0))["record"] as? [String: Any] }
            #expect(users2.contains { $0?["action"] as? String == "audit.read" && $0?["user"] as? String == "cc.auditor" })
            #expect(users2.contains { $0?["action"] as? String == "auth.accepted" && $0?["user"] as? String == "cc.auditor" })
        }
    }

    /// The audit channel `audit/` carries each new entry to auditors only.
    @Test func onlyAuditorsReceiveTheAuditChannel() async throws {
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "cc.auditor", "--name", "C. Janssens", "--badge", "AUD-4", "--role", "auditor",
                                    "--data", data.path).status == 0)
            // Time enough for the incident to be opened under a loaded suite (3 s was not always).
            let auditor = try await BusSession(data, as: "keys/users/cc.auditor.key_secret", topics: ["audit/"], linger: 8)
            let agency = try await BusSession(data, as: "keys/agencies/crisis-centre.key_secret", topics: ["audit/"], linger: 3)
            #expect(try await vigil("incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "100", "--data", data.path).status == 0)
            // The entries (signed checkpoints, latest-wins with seq 0, may come between them).
            let received = try await auditor.finished().events.compactMap { $0["event"] as? [String: Any] }
                .filter { $0["type"] as? String == "audit.entry" }
            let actions = received.compactMap { ($0["body"] as? [String: Any])?["record"] as? [String: Any] }.compactMap { $0["action"] as? String }
            #expect(actions.contains("incident.opened"), "\(actions)")
            let sequences = received.compactMap { $0["seq"] as? Int }
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count)
            #expect(try await agency.finished().events.isEmpty, "an agency key is no auditor")
        }
    }

    @Test func aCommanderUpdatesAndHandsOverAnIncident() async throws {
        try await withServer { data, _ in
            #expect(try await vigil("user", "add", "siamu.chief", "--name", "E. Chef", "--badge", "F-1", "--role", "commander",
                                    "--data", data.path, "--agency", "siamu").status == 0)
            let opened = try await vigil(
                "incident", "open", "--kind", "fire", "--at", "50.8467,4.3525", "--radius", "200", "--draft", "--severity", "Severe",
                "--urgency", "Immediate", "--participant", "siamu", "--ref", "dispatch=CAD-77", "--data", data.path, "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let incident = try #require(try json(opened.stdout)["incident"] as? [String: Any])
            let id = try #require(incident["id"] as? Int)
            #expect(incident["status"] as? String == "draft")
            #expect((incident["details"] as? [String: Any])?["severity"] as? String == "Severe")

            let badStatus = try await vigil("incident", "update", "\(id)", "--status", "closed", "--data", data.path)
            #expect(badStatus.status == 1 && badStatus.stderr.contains("status_transition_invalid"), "\(badStatus.stderr)")
            let badWord = try await vigil("incident", "update", "\(id)", "--severity", "Huge", "--data", data.path)
            #expect(badWord.status == 1 && badWord.stderr.contains("severity_invalid"))
            let opening = try await vigil("incident", "update", "\(id)", "--status", "open", "--data", data.path)
            #expect(opening.status == 0 && opening.stdout.contains("open"), "\(opening.stderr)")

            let handed = try await vigil("incident", "handover", "\(id)", "--to", "siamu", "--commander", "siamu.chief", "--data", data.path)
            #expect(handed.status == 0 && handed.stdout.contains("led by siamu, commanded by siamu.chief"), "\(handed.stderr)")
            let shown = try await vigil("incident", "show", "\(id)", "--data", data.path)
            #expect(shown.stdout.contains("commander siamu.chief") && shown.stdout.contains("with crisis-centre") && shown.stdout.contains("dispatch=CAD-77"))
            let formerLead = try await vigil("incident", "close", "\(id)", "--data", data.path)
            #expect(formerLead.status == 1 && formerLead.stderr.contains("not_lead_agency"))
            let closed = try await vigil("incident", "close", "\(id)", "--data", data.path, "--user", "siamu.chief", "--agency", "siamu")
            #expect(closed.status == 0, "\(closed.stderr)")
        }
    }
}
