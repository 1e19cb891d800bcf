/// What a camera must be for a server to use it, checked the same way by `vigil cameras
/// import|update` (which refuse the file) and by `vigil serve` (which leaves the camera out and
/// says so, rather than not starting): a position inside the area of use of the region's metric
/// CRS, and privacy masks that are simple polygons (a self-intersecting mask has no inside to
/// black out).
public enum CameraAdmission {
    /// Why `camera` cannot be used in `projection`'s region, if it cannot; `field` names the
    /// camera in the error (`features[3]`, `line 7`).
    public static func problem(of camera: Camera, projection: Projection, field: String) -> GeoError? {
        do {
            _ = try projection.metric(camera.position, field: "\(field).position")
        } catch {
            return error
        }
        for (number, mask) in camera.privacyMasks.enumerated() where !isSimplePolygon(mask) {
            return GeoError(
                .maskInvalid, message: "privacy mask \(number) is not a simple polygon (its edges cross, or it has no area)",
                field: "\(field).privacy_masks[\(number)]")
        }
        return nil
    }

    /// The cameras a server can use, and why each of the others cannot.
    public static func split(_ cameras: [Camera], projection: Projection) -> (admitted: [Camera], refused: [CameraRefusal]) {
        var admitted: [Camera] = []
        var refused: [CameraRefusal] = []
        admitted.reserveCapacity(cameras.count)
        for camera in cameras {
            if let problem = problem(of: camera, projection: projection, field: "cameras[\(camera.id)]") {
                refused.append(CameraRefusal(camera: camera.id, problem: problem))
            } else {
                admitted.append(camera)
            }
        }
        return (admitted, refused)
    }

    /// Whether a mask's points (picture fractions) make a valid polygon, GEOS's way.
    static func isSimplePolygon(_ mask: PrivacyMask) -> Bool {
        var ring = mask.map { MetricPoint(x: $0[0], y: $0[1]) }
        if let first = ring.first, ring.last != first { ring.append(first) }
        guard ring.count >= 4 else { return false }
        let context = GEOSContext()
        guard let polygon = try? Geometry.polygon([ring], context: context), let valid = try? polygon.isValid() else { return false }
        return valid
    }
}

/// A camera of the registry that a server leaves out, and why.
public struct CameraRefusal: Sendable, Equatable {
    public let camera: String
    public let problem: GeoError
}
