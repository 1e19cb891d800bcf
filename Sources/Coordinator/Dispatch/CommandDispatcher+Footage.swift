import Bus
import Foundation
import Incidents
import VigilProtocol

extension CommandDispatcher {
    /// Evidence exports of recorded footage.
    func performFootage(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .footageExport:
            let body = try BusProtocol.decodeBody(FootageExportBody.self, from: request.payload)
            guard let footage else {
                throw BusProtocol.ErrorBody(.footageUnavailable, message: "this server records no footage (--no-recording)", field: "op")
            }
            return BusProtocol.successReply(id: header.id, result: try await footage.export(body, agency: request.agency, user: request.user))
        case .footagePackage:
            let body = try BusProtocol.decodeBody(FootagePackageBody.self, from: request.payload)
            guard let footage else {
                throw BusProtocol.ErrorBody(.footageUnavailable, message: "this server records no footage (--no-recording)", field: "op")
            }
            return BusProtocol.successReply(id: header.id, result: try await footage.package(body, agency: request.agency, user: request.user))
        default:
            throw Self.unknownOperation(header)
        }
    }

    /// A march's cameras with the moment its head passed each (only those the asking agency may see).
    func headPassages(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        let body = try BusProtocol.decodeBody(HeadPassedBody.self, from: request.payload)
        try await requireParticipant(try await incidents.incident(body.incident), request, refusal: "head-passed.refused")
        let passages = try await incidents.headPassages(body.incident, section: body.section)
        let visible = try await access.visibleCameras(passages.map(\.camera), agency: request.agency, incident: body.incident)
        return BusProtocol.successReply(id: header.id, result: HeadPassedResult(incident: body.incident, cameras: passages.filter { visible.contains($0.camera) }))
    }
}
