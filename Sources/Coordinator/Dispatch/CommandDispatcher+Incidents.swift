import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// Incidents: opening, changing and closing them, and their snapshots.
    func performIncidents(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .incidentOpen:
            let body = try BusProtocol.decodeBody(OpenIncidentBody.self, from: request.payload)
            let change: IncidentChange
            switch try body.request() {
            case .area(let open): change = try await incidents.open(open, by: request.agency, user: request.user)
            case .march(let open): change = try await incidents.openMarch(open, by: request.agency, user: request.user)
            }
            await publisher.publish(change)
            return BusProtocol.successReply(
                id: header.id,
                result: try await publisher.copy(
                    of: IncidentSnapshot(incident: change.incident, cameras: change.added, route: body.route, area: body.area), for: request.agency))
        case .incidentRedraw:
            let body = try BusProtocol.decodeBody(RedrawIncidentBody.self, from: request.payload)
            let change = try await incidents.redraw(body.incident, to: try body.incidentArea(), by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case .incidentMove:
            let body = try BusProtocol.decodeBody(MoveIncidentBody.self, from: request.payload)
            let change = try await incidents.move(
                body.incident, head: try body.head.position(field: "body.head"), tail: try body.tail.position(field: "body.tail"),
                by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case .incidentUpdate:
            let body = try BusProtocol.decodeBody(UpdateIncidentBody.self, from: request.payload)
            let change = try await incidents.update(body.incident, try body.update(), by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case .incidentHandover:
            let body = try BusProtocol.decodeBody(HandOverIncidentBody.self, from: request.payload)
            let change = try await incidents.handOver(body.incident, to: body.leadAgency, commander: body.commander, by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case .incidentClose:
            let body = try BusProtocol.decodeBody(IncidentReference.self, from: request.payload)
            let change = try await incidents.close(body.incident, by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case .incidentHeadPassed:
            return try await headPassages(header, request)
        case .incidentList:
            // The live incidents the asking agency leads or takes part in: what it may follow.
            let listed = try await incidents.liveIncidents().filter { ChannelMembers.agencies(of: $0).contains(request.agency) }
            return BusProtocol.successReply(id: header.id, result: IncidentListResult(incidents: listed.sorted { $0.id < $1.id }))
        case .incidentSnapshot:
            let body = try BusProtocol.decodeBody(SnapshotRequest.self, from: request.payload)
            ServerMetrics.snapshots.increment()
            let snapshot = try await incidents.snapshot(body.incident)
            try await requireParticipant(snapshot.incident, request, refusal: "snapshot.refused")
            if let after = body.resyncAfter {
                // What the follower's subscription lost (or missed while it reconnected), per agency.
                let missed = max(0, snapshot.incident.sequence - after)
                ServerMetrics.resynchronised(agency: request.agency, missed: missed)
                logger.info("follower resynchronised", metadata: [
                    "agency": "\(request.agency)", "user": "\(request.user ?? "")", "incident.id": "\(body.incident)", "events.missed": "\(missed)",
                ])
            }
            return BusProtocol.successReply(id: header.id, result: try await publisher.copy(of: snapshot, for: request.agency))
        default:
            throw Self.unknownOperation(header)
        }
    }
}
