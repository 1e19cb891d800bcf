import Foundation

/// A camera chosen by a selection, with its distance and why it was picked.
public struct CameraMatch: Sendable, Hashable, Codable {
    public var camera: Camera
    /// Planar distance in the deployment's metric CRS, in metres, rounded to the centimetre.
    public var distanceMeters: Double
    /// Why it was picked, for example `within_radius`.
    public var reason: String
}

/// The spatial index of a camera registry in one metric CRS: a GEOS STRtree over the
/// projected camera positions.
///
/// - Important: Safe to share between threads: GEOS work runs under an internal lock,
///   because the tree is built lazily on first query and GEOS contexts are single-threaded.
public final class CameraIndex: @unchecked Sendable {  // @unchecked: GEOS state is only touched under `lock`.
    /// Largest radius accepted by ``within(radiusMeters:of:)``, so a typo cannot select a whole country.
    public static let maximumRadiusMeters = 50_000.0

    public let projection: Projection
    public let cameras: [Camera]
    private let positions: [MetricPoint]
    private let lock = NSLock()
    private let context: GEOSContext
    private let tree: STRtree

    /// Projects every camera and builds the index.
    ///
    /// - Throws: ``GeoError`` `coordinate_outside_crs` naming the first camera outside the CRS.
    public init(cameras: [Camera], projection: Projection) throws(GeoError) {
        self.projection = projection
        self.cameras = cameras
        var positions: [MetricPoint] = []
        positions.reserveCapacity(cameras.count)
        for camera in cameras {
            positions.append(try projection.metric(camera.position, field: "cameras[\(camera.id)].position"))
        }
        self.positions = positions
        context = GEOSContext()
        do {
            tree = try STRtree(context: context)
            for position in positions {
                tree.insert(try Geometry.point(x: position.x, y: position.y, context: context))
            }
        } catch {
            throw GeoError(code: "geos_failure", message: error.description)
        }
    }

    /// The cameras within `radiusMeters` of `center`, nearest first (ties by id).
    ///
    /// - Throws: ``GeoError`` `radius_invalid` for a radius that is not in (0, 50 km],
    ///   `coordinate_outside_crs` for a centre outside the deployment's CRS.
    public func within(radiusMeters: Double, of center: GeoPoint) throws(GeoError) -> [CameraMatch] {
        guard radiusMeters.isFinite, radiusMeters > 0, radiusMeters <= Self.maximumRadiusMeters else {
            throw GeoError(
                code: "radius_invalid",
                message: "radius must be a number of metres in (0, \(Int(Self.maximumRadiusMeters))]", field: "radius")
        }
        let origin = try projection.metric(center, field: "at")
        let candidates: [Int]
        do {
            candidates = try withLock {
                try tree.query(
                    minX: origin.x - radiusMeters, minY: origin.y - radiusMeters,
                    maxX: origin.x + radiusMeters, maxY: origin.y + radiusMeters)
            }
        } catch {
            throw GeoError(code: "geos_failure", message: "\(error)")
        }
        return candidates.compactMap { index -> CameraMatch? in
            let distance = positions[index].distance(to: origin)
            guard distance <= radiusMeters else { return nil }
            return CameraMatch(camera: cameras[index], distanceMeters: (distance * 100).rounded() / 100, reason: "within_radius")
        }
        .sorted { ($0.distanceMeters, $0.camera.id) < ($1.distanceMeters, $1.camera.id) }
    }

    private func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
