internal import CGEOS

/// A GEOS geometry, owned by exactly this object and destroyed with it.
///
/// - Important: Confined to the thread that uses its ``GEOSContext``.
final class Geometry {
    let context: GEOSContext
    let handle: OpaquePointer
    private var prepared: OpaquePointer?

    init(context: GEOSContext, taking handle: OpaquePointer) {
        self.context = context
        self.handle = handle
    }

    deinit {
        if let prepared { GEOSPreparedGeom_destroy_r(context.handle, prepared) }
        GEOSGeom_destroy_r(context.handle, handle)
    }

    /// Reads an RFC 7946 geometry object (the `geometry` member of a feature, as JSON text).
    static func fromGeoJSON(_ json: String, context: GEOSContext) throws(GEOSError) -> Geometry {
        guard let reader = GEOSGeoJSONReader_create_r(context.handle) else {
            throw context.error("GEOSGeoJSONReader_create_r")
        }
        defer { GEOSGeoJSONReader_destroy_r(context.handle, reader) }
        guard let geometry = GEOSGeoJSONReader_readGeometry_r(context.handle, reader, json) else {
            throw context.error("GEOSGeoJSONReader_readGeometry_r")
        }
        return Geometry(context: context, taking: geometry)
    }

    static func point(x: Double, y: Double, context: GEOSContext) throws(GEOSError) -> Geometry {
        guard let point = GEOSGeom_createPointFromXY_r(context.handle, x, y) else {
            throw context.error("GEOSGeom_createPointFromXY_r")
        }
        return Geometry(context: context, taking: point)
    }

    static func rectangle(minX: Double, minY: Double, maxX: Double, maxY: Double, context: GEOSContext) throws(GEOSError) -> Geometry {
        guard let rectangle = GEOSGeom_createRectangle_r(context.handle, minX, minY, maxX, maxY) else {
            throw context.error("GEOSGeom_createRectangle_r")
        }
        return Geometry(context: context, taking: rectangle)
    }

    /// The bounding box (minX, minY, maxX, maxY).
    func bounds() throws(GEOSError) -> (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        var minX = 0.0, minY = 0.0, maxX = 0.0, maxY = 0.0
        // Returns 0 on exception, 1 otherwise.
        guard GEOSGeom_getXMin_r(context.handle, handle, &minX) == 1,
              GEOSGeom_getYMin_r(context.handle, handle, &minY) == 1,
              GEOSGeom_getXMax_r(context.handle, handle, &maxX) == 1,
              GEOSGeom_getYMax_r(context.handle, handle, &maxY) == 1
        else { throw context.error("GEOSGeom_getXMin_r") }
        return (minX, minY, maxX, maxY)
    }

    /// Whether `point` lies inside this geometry (boundary excluded), through a prepared
    /// geometry built on first use.
    func contains(x: Double, y: Double) throws(GEOSError) -> Bool {
        if prepared == nil {
            guard let made = GEOSPrepare_r(context.handle, handle) else { throw context.error("GEOSPrepare_r") }
            prepared = made
        }
        let point = try Geometry.point(x: x, y: y, context: context)
        // Returns 2 on exception, 1 for true, 0 for false.
        let result = GEOSPreparedContains_r(context.handle, prepared, point.handle)
        guard result != 2 else { throw context.error("GEOSPreparedContains_r") }
        return result == 1
    }

    /// Whether GEOS considers the geometry valid (closed rings, no self-intersection).
    func isValid() throws(GEOSError) -> Bool {
        // Returns 2 on exception.
        let result = GEOSisValid_r(context.handle, handle)
        guard result != 2 else { throw context.error("GEOSisValid_r") }
        return result == 1
    }
}
