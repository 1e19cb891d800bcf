import Bus
import Foundation
import Incidents

/// A view a relay serves: allowed and recorded by its authority.
struct AllowedView: Sendable {
    let view: String
    let grant: String
    let incident: Int64
}

/// Who allows, re-checks and records a relay's views. In `vigil serve` it is the server's own
/// decision function and audit log (``LocalViewAuthority``); on a relay node it is the
/// coordinator, through signed tickets and load reports (``RelayNodeAuthority``).
protocol ViewAuthority: Sendable {
    /// Allows and records a view of `body.camera` for `identity`, or throws the refusal (already recorded).
    func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView
    /// Why a running view must end now, or nil.
    func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String?
    /// Records the end of a view.
    func end(_ view: String, identity: BusIdentity) async
}

/// The server's own decision function: a view is a consultation (named user, justification,
/// decision and audit in one transaction), re-decided once a second.
struct LocalViewAuthority: ViewAuthority {
    let access: AccessService
    let incidents: IncidentService

    func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView {
        let consultation = Consultation(
            request: AccessRequest(agency: identity.agency, user: identity.user, camera: body.camera, mode: .live, incident: body.justification?.incident),
            justification: try body.justification.map { try $0.justification() }, source: "media")
        let ticket = try await access.start(consultation)
        return AllowedView(view: ticket.view, grant: ticket.grant, incident: ticket.incident)
    }

    func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String? {
        if let incident = try? await incidents.incident(view.incident), !incident.status.holdsSelection {
            return "incident \(view.incident) is \(incident.status.rawValue)"
        }
        let request = AccessRequest(agency: identity.agency, user: identity.user, camera: camera, mode: .live, incident: view.incident)
        switch (try? await access.decide(request)) ?? .deny(code: "storage_failure", message: "the decision could not be read") {
        case .deny(let code, let message): return "\(code): \(message)"
        default: return nil
        }
    }

    func end(_ view: String, identity: BusIdentity) async {
        try? await access.stop(view: view, agency: identity.agency, user: identity.user)
    }
}
