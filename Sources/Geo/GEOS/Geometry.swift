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

    /// A polygon from closed rings: the shell first, then holes.
    static func polygon(_ rings: [[MetricPoint]], context: GEOSContext) throws(GEOSError) -> Geometry {
        var made: [OpaquePointer] = []
        for ring in rings {
            let sequence = try coordinateSequence(ring, context: context)
            // Takes ownership of the sequence, also on failure.
            guard let linearRing = GEOSGeom_createLinearRing_r(context.handle, sequence) else {
                made.forEach { GEOSGeom_destroy_r(context.handle, $0) }
                throw context.error("GEOSGeom_createLinearRing_r")
            }
            made.append(linearRing)
        }
        guard let shell = made.first else { throw GEOSError(operation: "polygon", messages: ["no rings"]) }
        var holes: [OpaquePointer?] = made.dropFirst().map { $0 }
        // Takes ownership of the shell and holes.
        let polygon = holes.withUnsafeMutableBufferPointer { buffer in
            GEOSGeom_createPolygon_r(context.handle, shell, buffer.baseAddress, UInt32(buffer.count))
        }
        guard let polygon else { throw context.error("GEOSGeom_createPolygon_r") }
        return Geometry(context: context, taking: polygon)
    }

    /// A multi-polygon taking ownership of the handles of `polygons`' geometries.
    static func multiPolygon(_ parts: [[[MetricPoint]]], context: GEOSContext) throws(GEOSError) -> Geometry {
        var handles: [OpaquePointer?] = []
        for rings in parts {
            let polygon = try Geometry.polygon(rings, context: context)
            // The collection takes the polygon: clone it so that `polygon` keeps owning its own handle.
            guard let clone = GEOSGeom_clone_r(context.handle, polygon.handle) else { throw context.error("GEOSGeom_clone_r") }
            handles.append(clone)
        }
        let collection = handles.withUnsafeMutableBufferPointer { buffer in
            GEOSGeom_createCollection_r(context.handle, Int32(GEOS_MULTIPOLYGON.rawValue), buffer.baseAddress, UInt32(buffer.count))
        }
        guard let collection else { throw context.error("GEOSGeom_createCollection_r") }
        return Geometry(context: context, taking: collection)
    }

    private static func coordinateSequence(_ points: [MetricPoint], context: GEOSContext) throws(GEOSError) -> OpaquePointer {
        let flat = points.flatMap { [$0.x, $0.y] }
        guard let sequence = GEOSCoordSeq_copyFromBuffer_r(context.handle, flat, UInt32(points.count), 0, 0) else {
            throw context.error("GEOSCoordSeq_copyFromBuffer_r")
        }
        return sequence
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
        let point = try Geometry.point(x: x, y: y, context: context)
        // Returns 2 on exception, 1 for true, 0 for false.
        let result = GEOSPreparedContains_r(context.handle, try preparedHandle(), point.handle)
        guard result != 2 else { throw context.error("GEOSPreparedContains_r") }
        return result == 1
    }

    private func preparedHandle() throws(GEOSError) -> OpaquePointer {
        if let prepared { return prepared }
        guard let made = GEOSPrepare_r(context.handle, handle) else { throw context.error("GEOSPrepare_r") }
        prepared = made
        return made
    }

    /// Whether this geometry and `other` share any point, through the prepared form.
    func intersects(_ other: Geometry) throws(GEOSError) -> Bool {
        // Returns 2 on exception, 1 for true, 0 for false.
        let result = GEOSPreparedIntersects_r(context.handle, try preparedHandle(), other.handle)
        guard result != 2 else { throw context.error("GEOSPreparedIntersects_r") }
        return result == 1
    }

    /// The planar distance to `other`, through the prepared form.
    func distance(to other: Geometry) throws(GEOSError) -> Double {
        var distance = 0.0
        // Returns 1 on success, 0 on exception.
        guard GEOSPreparedDistance_r(context.handle, try preparedHandle(), other.handle, &distance) == 1 else {
            throw context.error("GEOSPreparedDistance_r")
        }
        return distance
    }

    /// Whether GEOS considers the geometry valid (closed rings, no self-intersection).
    func isValid() throws(GEOSError) -> Bool {
        // Returns 2 on exception.
        let result = GEOSisValid_r(context.handle, handle)
        guard result != 2 else { throw context.error("GEOSisValid_r") }
        return result == 1
    }
}
