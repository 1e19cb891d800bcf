import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// Grants, access checks, consultations (views), evidence holds and thumbnail consents.
    func performAccess(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .grantCreate:
            let grant = try BusProtocol.decodeBody(Grant.self, from: request.payload)
            guard grant.owner == request.agency else {
                throw BusProtocol.ErrorBody(.notOwner, message: "only \(grant.owner) may share its cameras", field: "body.owner")
            }
            // Sharing an owner's cameras is the owner's administration, as its cameras and users are.
            try await requireOwnerAdmin(request, action: header.op)
            try await access.create(grant, by: request.agency, user: request.user)
            await publisher.accessChanged(for: grant.agency, by: request.agency, reason: "grant_created:\(grant.id)")
            return BusProtocol.successReply(id: header.id, result: grant)
        case .grantRevoke:
            let body = try BusProtocol.decodeBody(RevokeGrantBody.self, from: request.payload)
            try await requireOwnerAdmin(request, action: header.op)
            let revoked = try await access.revoke(body.grant, by: request.agency, user: request.user, reason: body.reason)
            // Each agency's channels lose the cameras at once (the relays stop their feeds the same way).
            await publisher.accessChanged(for: revoked.agency, by: request.agency, reason: "grant_revoked:\(body.grant)")
            return BusProtocol.successReply(id: header.id, result: ["grant": body.grant])
        case .grantList:
            // An agency sees the grants it gives and the grants it receives.
            let grants = try await access.grants().filter { $0.owner == request.agency || $0.agency == request.agency }
            return BusProtocol.successReply(id: header.id, result: grants)
        case .accessCheck:
            let body = try BusProtocol.decodeBody(AccessCheckBody.self, from: request.payload)
            let decision = try await access.decide(AccessRequest(
                agency: request.agency, user: body.user ?? request.user, camera: body.camera, mode: body.mode, incident: body.incident,
                footageTime: body.footageTime, prosecutorReference: body.prosecutorReference))
            return BusProtocol.successReply(id: header.id, result: AccessCheckResult(decision))
        case .viewStart:
            let body = try BusProtocol.decodeBody(ViewStartBody.self, from: request.payload)
            let ticket = try await access.start(try body.consultation(agency: request.agency, user: request.user, source: request.origin ?? "bus"))
            return BusProtocol.successReply(id: header.id, result: ticket)
        case .viewStop:
            let body = try BusProtocol.decodeBody(ViewStopBody.self, from: request.payload)
            try await access.stop(view: body.view, agency: request.agency, user: request.user)
            return BusProtocol.successReply(id: header.id, result: ["view": body.view])
        case .viewList:
            // Who is watching what: under an incident, for the agencies coordinating it (only the
            // cameras each may see, and its own views); without one, the views of the asking owner's cameras.
            let body = try BusProtocol.decodeBody(IncidentFilter.self, from: request.payload)
            var views: [OpenView]
            if let id = body.incident {
                try await requireParticipant(try await incidents.incident(id), request, refusal: "view.list.refused")
                views = try await access.openViews(incident: id)
                let shown = try await access.viewsShown(under: id, to: request.agency, of: views.map { ($0.camera, $0.agency) })
                views = zip(views, shown).filter(\.1).map(\.0)
            } else {
                views = try await access.openViews(owner: request.agency)
            }
            // Who watches is personal data of the viewers: reading it is recorded like any disclosure.
            try await audit.append(AuditRecord(
                action: "view.listed", agency: request.agency, user: request.user, incident: body.incident, details: ["views": "\(views.count)"]))
            return BusProtocol.successReply(id: header.id, result: ["views": views])
        case .holdCreate:
            let body = try BusProtocol.decodeBody(HoldRequest.self, from: request.payload)
            let hold = try await holds.create(body, agency: request.agency, user: request.user)
            for preservation in hold.preservationRequests {
                bus.publish(
                    on: .owner(preservation.owner), seq: preservation.sequence, type: "preservation.requested", at: hold.createdAt, body: preservation)
            }
            return BusProtocol.successReply(id: header.id, result: hold)
        case .holdList:
            let body = try BusProtocol.decodeBody(IncidentFilter.self, from: request.payload)
            return BusProtocol.successReply(id: header.id, result: try await holds.holds(for: request.agency, incident: body.incident))
        case .holdRelease:
            let body = try BusProtocol.decodeBody(ReleaseHoldBody.self, from: request.payload)
            return BusProtocol.successReply(
                id: header.id, result: try await holds.release(body.hold, agency: request.agency, user: request.user, reason: body.reason))
        case .thumbnailsStart:
            let body = try BusProtocol.decodeBody(ThumbnailsStartBody.self, from: request.payload)
            let justification = try body.justification.justification()
            try await access.startThumbnails(agency: request.agency, user: request.user, justification: justification, source: request.origin ?? "bus")
            publisher.thumbnailConsents.start(incident: justification.incident, agency: request.agency)
            return BusProtocol.successReply(id: header.id, result: ["incident": justification.incident])
        case .thumbnailsStop:
            let body = try BusProtocol.decodeBody(ThumbnailsStopBody.self, from: request.payload)
            if publisher.thumbnailConsents.stop(incident: body.incident, agency: request.agency) {
                try await access.stopThumbnails(incident: body.incident, agency: request.agency, user: request.user)
            }
            return BusProtocol.successReply(id: header.id, result: ["incident": body.incident])
        default:
            throw Self.unknownOperation(header)
        }
    }
}
