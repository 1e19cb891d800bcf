import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// Relay nodes registering, reporting and deregistering.
    func performRelays(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .relayRegister:
            let body = try BusProtocol.decodeBody(RelayRegisterBody.self, from: request.payload)
            _ = try await namedUser(request, role: .relay, action: "relay.register")
            guard let relay = publisher.relay else { throw BusProtocol.ErrorBody(.notCoordinator, message: "this server runs no relay", field: "op") }
            let result = try relay.nodeRegistered(body, identity: request.identity)
            try await audit.append(AuditRecord(
                action: "relay.registered", agency: request.agency, user: request.user,
                details: ["media": body.media, "max_streams": "\(body.maximumStreams)", "max_mbps": "\(body.maximumMbps)"]))
            return BusProtocol.successReply(id: header.id, result: result)
        case .relayReport:
            let body = try BusProtocol.decodeBody(RelayReportBody.self, from: request.payload)
            // Once a second per node: the role is checked in memory (registering checked it against the directory).
            guard clientKeys.holds(.relay, request.identity), let relay = publisher.relay else {
                throw BusProtocol.ErrorBody(.roleRequired, message: "only a relay node's key reports load", field: "op")
            }
            return BusProtocol.successReply(id: header.id, result: try await relay.nodeReported(body, identity: request.identity))
        case .relayDeregister:
            guard clientKeys.holds(.relay, request.identity), let relay = publisher.relay else {
                throw BusProtocol.ErrorBody(.roleRequired, message: "only a relay node's key deregisters it", field: "op")
            }
            let name = try relay.nodeDeregistered(identity: request.identity)
            try await audit.append(AuditRecord(action: "relay.deregistered", agency: request.agency, user: request.user, details: ["relay": name]))
            return BusProtocol.successReply(id: header.id, result: ["relay": name])
        default:
            throw Self.unknownOperation(header)
        }
    }
}
