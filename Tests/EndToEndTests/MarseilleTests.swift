import Foundation
import Testing

/// Marseille end to end: the social-housing landlord that owns the estate cameras is an agency
/// with its own key. The prefecture opens an incident at an estate; it sees the estate's cameras
/// under the landlord's incident-bound grant, their positions withheld (they are confidential);
/// the landlord is told on its owner channel, lists who watches its cameras, and receives the
/// preservation request of a hold.
@Suite("Marseille end to end", .serialized, .timeLimit(.minutes(2)))
struct MarseilleTests {
    /// An estate camera of the fixture (confidential).
    static let estateCamera = (id: "estate-01-cam-1", lat: 43.3428492, lon: 5.413693)

    @Test func thePrefectureSeesAnEstateCameraWhosePositionStaysSecret() async throws {
        try await withServer(arguments: ["--region", "marseille"]) { data, _ in
            #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("keys/agencies/marseille-landlord.key_secret").path))
            // Long enough for the incident and the hold below on a machine loaded by the whole suite.
            let landlord = try await BusSession(data, as: "keys/agencies/marseille-landlord.key_secret", topics: ["owner/marseille-landlord/"], linger: 12)

            let opened = try await vigil("incident", "open", "--kind", "public-order", "--at", "\(Self.estateCamera.lat),\(Self.estateCamera.lon)",
                                         "--radius", "150", "--agency", "marseille-prefecture", "--data", data.path, "--json")
            #expect(opened.status == 0, "\(opened.stderr)")
            let reply = try json(opened.stdout)
            let id = try #require((reply["incident"] as? [String: Any])?["id"] as? Int)
            let cameras = try #require(reply["cameras"] as? [[String: Any]])
            let estate = try #require(cameras.first { $0["id"] as? String == Self.estateCamera.id }, "\(cameras.compactMap { $0["id"] })")
            #expect(estate["owner"] as? String == "marseille-landlord" && estate["position"] == nil, "the position stays secret: \(estate)")
            #expect(((estate["distance_meters"] as? Double) ?? 1).truncatingRemainder(dividingBy: 500) == 0)

            // A hold on the estate camera: the landlord receives the preservation request.
            let hold = try await vigil("hold", "create", "--incident", "\(id)", "--camera", Self.estateCamera.id, "--from", "2026-12-01T10:00:00Z",
                                       "--to", "2026-12-01T11:00:00Z", "--legal-reference", "PV 2026/113", "--agency", "marseille-prefecture",
                                       "--data", data.path)
            #expect(hold.status == 0, "\(hold.stderr)")

            let events = try await landlord.finished().events.compactMap { $0["event"] as? [String: Any] }
            #expect(events.contains { $0["type"] as? String == "incident.cameras-available" }, "\(events.map { $0["type"] })")
            let preservation = try #require(events.first { $0["type"] as? String == "preservation.requested" }, "\(events.map { $0["type"] })")
            #expect((preservation["body"] as? [String: Any])?["cameras"] as? [String] == [Self.estateCamera.id])

            // The landlord lists who watches its cameras (nobody yet) with its own key.
            let views = try await vigil("view", "list", "--agency", "marseille-landlord", "--data", data.path, "--json")
            #expect(views.status == 0, "\(views.stderr)")
        }
    }
}
