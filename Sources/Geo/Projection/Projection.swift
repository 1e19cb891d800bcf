internal import CPROJ
import Foundation

/// An error reported by PROJ, keeping its raw error number and the operation that failed.
public struct ProjError: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    public let operation: String
    public let message: String

    public var description: String { "PROJ \(operation) failed (\(code)): \(message)" }
}

/// Converts WGS84 positions to a metric CRS and back, through PROJ.
///
/// - Important: PROJ's `PJ` objects are not thread-safe; every call takes an internal lock,
///   so one `Projection` may be shared between threads.
public final class Projection: @unchecked Sendable {  // @unchecked: all PROJ access is under `lock`.
    public let crs: MetricCRS
    /// The WGS84 bounding box in which `crs` is valid (its EPSG area of use).
    public let areaOfUse: (west: Double, south: Double, east: Double, north: Double)

    private let lock = NSLock()
    private let context: OpaquePointer
    private let transform: OpaquePointer

    /// - Throws: ``ProjError`` when PROJ cannot build the transformation (for example a missing `proj.db`).
    public init(crs: MetricCRS) throws(ProjError) {
        guard let context = proj_context_create() else {
            throw ProjError(code: 0, operation: "proj_context_create", message: "out of memory")
        }
        func failure(_ operation: String) -> ProjError {
            let code = proj_context_errno(context)
            let text = proj_context_errno_string(context, code).map { String(cString: $0) } ?? "unknown error"
            return ProjError(code: code, operation: operation, message: text)
        }
        guard let raw = proj_create_crs_to_crs(context, "EPSG:4326", crs.rawValue, nil) else {
            let error = failure("proj_create_crs_to_crs(EPSG:4326, \(crs.rawValue))")
            proj_context_destroy(context)
            throw error
        }
        // EPSG:4326 is latitude-first; normalising makes the pipeline take (lon, lat) like GeoJSON.
        var normalized = proj_normalize_for_visualization(context, raw)
        proj_destroy(raw)
        // crs_to_crs may wrap several candidate operations and choose one per coordinate by area
        // of use; when the chosen operation has a plain PROJ pipeline, use it directly.
        if let chosen = normalized, let pipeline = proj_as_proj_string(context, chosen, PJ_PROJ_5, nil),
           let direct = proj_create(context, pipeline) {
            proj_destroy(chosen)
            normalized = direct
        }
        guard let normalized else {
            let error = failure("proj_normalize_for_visualization")
            proj_context_destroy(context)
            throw error
        }
        var west = 0.0, south = 0.0, east = 0.0, north = 0.0
        guard let target = proj_create(context, crs.rawValue) else {
            let error = failure("proj_create(\(crs.rawValue))")
            proj_destroy(normalized)
            proj_context_destroy(context)
            throw error
        }
        // Returns 1 on success, 0 when the CRS has no area of use.
        let hasArea = proj_get_area_of_use(context, target, &west, &south, &east, &north, nil)
        proj_destroy(target)
        guard hasArea == 1 else {
            let error = failure("proj_get_area_of_use(\(crs.rawValue))")
            proj_destroy(normalized)
            proj_context_destroy(context)
            throw error
        }
        self.crs = crs
        self.context = context
        self.transform = normalized
        self.areaOfUse = (west, south, east, north)
    }

    deinit {
        proj_destroy(transform)
        proj_context_destroy(context)
    }

    /// Projects a WGS84 point into the metric CRS.
    ///
    /// - Throws: ``GeoError`` `coordinate_outside_crs` when the point is outside the CRS's area of use.
    public func metric(_ point: GeoPoint, field: @autoclosure () -> String = "position") throws(GeoError) -> MetricPoint {
        try checkAreaOfUse(point, field: field())
        let output = run(PJ_FWD, proj_coord(point.lon, point.lat, 0, 0))
        guard output.xy.x.isFinite, output.xy.y.isFinite else {
            throw GeoError(.coordinateOutsideCrs, message: "\(point) cannot be projected to \(crs.rawValue)", field: field())
        }
        return MetricPoint(x: output.xy.x, y: output.xy.y)
    }

    /// Projects many points in one PROJ call; `field(i)` names the input at fault.
    public func metric(_ points: [GeoPoint], field: (Int) -> String) throws(GeoError) -> [MetricPoint] {
        for (index, point) in points.enumerated() { try checkAreaOfUse(point, field: field(index)) }
        var coordinates = points.map { proj_coord($0.lon, $0.lat, 0, 0) }
        lock.lock()
        // Returns 0 on success, else the number of points that failed (their coordinates become HUGE_VAL).
        _ = proj_trans_array(transform, PJ_FWD, coordinates.count, &coordinates)
        lock.unlock()
        var result: [MetricPoint] = []
        result.reserveCapacity(points.count)
        for (index, coordinate) in coordinates.enumerated() {
            guard coordinate.xy.x.isFinite, coordinate.xy.y.isFinite else {
                throw GeoError(.coordinateOutsideCrs, message: "\(points[index]) cannot be projected to \(crs.rawValue)", field: field(index))
            }
            result.append(MetricPoint(x: coordinate.xy.x, y: coordinate.xy.y))
        }
        return result
    }

    private func checkAreaOfUse(_ point: GeoPoint, field: @autoclosure () -> String) throws(GeoError) {
        let area = areaOfUse
        guard point.lon >= area.west, point.lon <= area.east, point.lat >= area.south, point.lat <= area.north else {
            throw GeoError(
                .coordinateOutsideCrs,
                message: "\(point) is outside the area of use of \(crs.rawValue) "
                    + "(lat \(area.south)...\(area.north), lon \(area.west)...\(area.east))",
                field: field())
        }
    }

    /// Converts a metric point back to WGS84.
    public func geographic(_ point: MetricPoint) throws(GeoError) -> GeoPoint {
        let output = run(PJ_INV, proj_coord(point.x, point.y, 0, 0))
        return try GeoPoint(lat: output.lpzt.phi, lon: output.lpzt.lam)
    }

    private func run(_ direction: PJ_DIRECTION, _ input: PJ_COORD) -> PJ_COORD {
        lock.lock()
        defer { lock.unlock() }
        // proj_trans returns HUGE_VAL coordinates on failure; callers check finiteness.
        return proj_trans(transform, direction, input)
    }
}
