import Foundation
import Incidents
import Geo

/// The body of `camera.update`: a GeoJSON FeatureCollection in the registry format (see
/// `CameraRegistryFile`), each feature a new version of one of the owner's cameras.
public enum CameraUpdate {
    /// The most cameras one request may change.
    public static let maximumCameras = 1_000

    /// The cameras of a `camera.update` body, checked as `vigil cameras import` checks a file:
    /// every field, and what a server of `projection`'s region needs (``CameraAdmission``).
    ///
    /// - Throws: ``GeoError`` `registry_invalid`, `coordinate_outside_crs`, `mask_invalid`
    ///   (the first problem, its field under `body`), `registry_too_large`.
    public static func cameras(fromFeatureCollection body: Data, projection: Projection) throws(GeoError) -> [Camera] {
        let (cameras, problems) = try CameraRegistryFile.validate(body)
        if let problem = problems.first {
            throw problem.at(field: problem.field.map { "body.\($0)" })
        }
        guard (1...maximumCameras).contains(cameras.count) else {
            throw GeoError(.registryTooLarge, message: "an update changes 1 to \(maximumCameras) cameras", field: "body.features")
        }
        for (index, camera) in cameras.enumerated() {
            if let problem = CameraAdmission.problem(of: camera, projection: projection, field: "body.features[\(index)]") { throw problem }
        }
        return cameras
    }
}

/// The body of `camera.retire`: the owner's cameras that leave the registry, and why (audited).
public struct CameraRetireBody: Sendable, Codable {
    public var cameras: [String]
    public var reason: String

    public init(cameras: [String], reason: String) {
        self.cameras = cameras
        self.reason = reason
    }

    /// - Throws: ``IncidentError`` `reason_required`, `cameras_invalid` (none, or more than 1,000).
    public func validated() throws -> CameraRetireBody {
        try UserStatusBody.validate(reason: reason)
        guard (1...CameraUpdate.maximumCameras).contains(cameras.count) else {
            throw IncidentError(.camerasInvalid, message: "retire 1 to \(CameraUpdate.maximumCameras) cameras", field: "body.cameras")
        }
        return self
    }
}

/// The reply to `cameras.select`: the cameras the asking agency may see, ranked as the query ranks them.
public struct CameraSelectionResult: Sendable, Codable {
    public var cameras: [SelectedCamera]

    public init(cameras: [SelectedCamera]) {
        self.cameras = cameras
    }
}
