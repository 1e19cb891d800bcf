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
        case .camerasSelect:
            let query = try BusProtocol.decodeBody(SelectionQuery.self, from: request.payload)
            return BusProtocol.successReply(id: header.id, result: CameraSelectionResult(cameras: try await selection(query, for: request.agency)))
        default:
            throw Self.unknownOperation(header)
        }
    }

    /// A selection as an agency may see it, outside any incident: only the cameras it may watch
    /// live now without one (its own, and `always` grants), confidential ones without their
    /// position and with their distance rounded up to 500 m (and ranked by their 500 m square, as
    /// the server's index does); nothing counts the others. The limit applies to what it may see,
    /// so that a short answer says nothing of hidden cameras; k nearest widens its search until it
    /// has k it may see or has looked at 1,000.
    func selection(_ query: SelectionQuery, for agency: String) async throws -> [SelectedCamera] {
        try query.filter?.validate()
        let limit = query.filter?.limit
        var unlimited = query
        unlimited.filter?.limit = nil
        while true {
            let matches = try engine.index.select(unlimited)
            let visible = try await access.visibleWithoutIncident(matches.map(\.camera.id), agency: agency)
            let seen = matches.filter { visible.contains($0.camera.id) }.map(SelectedCamera.init(seen:))
            let wanted = limit ?? (query.type == .nearest ? query.count : nil)
            if query.type == .nearest, let count = unlimited.count, let wanted, seen.count < wanted, matches.count == count, count < 1_000 {
                unlimited.count = min(1_000, count * 4)
                continue
            }
            return wanted.map { Array(seen.prefix($0)) } ?? seen
        }
    }
}
