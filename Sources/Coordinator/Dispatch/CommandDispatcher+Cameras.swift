import Bus
import Foundation
import Geo
import Incidents
import MediaRelay
import VigilProtocol

extension CommandDispatcher {
    /// Owners' changes to their cameras.
    func performCameras(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch ProtocolOperation(rawValue: header.op) {
        case .cameraUpdate:
            // Text first (as for every body), then the GeoJSON itself, as an import reads a file.
            _ = try BusProtocol.decodeBody(BusProtocol.AnyObjectBody.self, from: request.payload)
            let cameras = try CameraUpdate.cameras(fromFeatureCollection: try BusProtocol.rawBody(of: request.payload), projection: engine.index.projection)
            try await requireOwnerAdmin(request, action: header.op)
            try await registry.update(cameras, owner: request.agency, by: request.agency, user: request.user)
            try await reloadRegistry()
            return BusProtocol.successReply(id: header.id, result: ["cameras": cameras.map(\.id)])
        case .cameraRetire:
            let body = try BusProtocol.decodeBody(CameraRetireBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            try await registry.retire(body.cameras, owner: request.agency, reason: body.reason, by: request.agency, user: request.user)
            try await reloadRegistry()
            return BusProtocol.successReply(id: header.id, result: ["cameras": body.cameras])
        default:
            throw Self.unknownOperation(header)
        }
    }
}
