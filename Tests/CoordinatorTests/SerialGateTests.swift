import Bus
import Foundation
import Testing
import TestSupport

/// Changes pass the serial gate one at a time; reads answer beside it.
@Suite("The serial gate in process", .serialized, .timeLimit(.minutes(1)))
struct ServingBesideTheGateTests {
    /// A client used by one thread at a time, handed from one to the next.
    private final class OneAtATime: @unchecked Sendable {
        let client: BusClient
        init(_ client: BusClient) { self.client = client }
    }

    @Test func readsAreAnsweredWhileAChangeHoldsTheGate() async throws {
        try await InProcessCoordinator.with(agencies: ["siamu"]) { coordinator in
            let held = OneAtATime(try coordinator.client("siamu"))
            defer { held.client.close() }
            try await coordinator.server.holdingChanges {
                let (identity, grants, unanswered) = try await offThePool { () -> (Data, Data, Bool) in
                    let identity = try held.client.requestJSON("session.identity", [:])
                    let grants = try held.client.requestJSON("grant.list", [:])
                    // A change waits for the gate: no answer while it is held.
                    _ = try held.client.send("incident.open", body: OpenBody())
                    return (identity, grants, try held.client.receiveMessage(timeout: .milliseconds(500)) == nil)
                }
                #expect((try JSONSerialization.jsonObject(with: identity) as? [String: Any])?["agency"] as? String == "siamu")
                #expect((try JSONSerialization.jsonObject(with: grants) as? [Any])?.isEmpty == false)
                #expect(unanswered, "a change was answered while the gate was held")
            }
            // Released, the change goes through.
            let answered = try await offThePool { try held.client.receiveMessage(timeout: .seconds(10))?.last }
            let reply = try JSONSerialization.jsonObject(with: try #require(answered)) as? [String: Any]
            #expect(reply?["ok"] as? Bool == true, "\(String(describing: reply))")
        }
    }
}

private struct OpenBody: Encodable {
    var kind = "fire"
    var at = ["lat": 50.8467, "lon": 4.3525]
    var radiusMeters = 50.0
}
