import Foundation

/// A polygonal area in WGS84 (a police zone, a commune, a perimeter), answering
/// point-in-area questions with a prepared GEOS geometry.
///
/// - Important: Safe to share between threads; GEOS work runs under an internal lock.
public final class Area: @unchecked Sendable {  // @unchecked: GEOS state is only touched under `lock`.
    public let name: String
    private let lock = NSLock()
    private let context = GEOSContext()
    private let geometry: Geometry
    public let bounds: (minLon: Double, minLat: Double, maxLon: Double, maxLat: Double)

    /// - Parameter geoJSONGeometry: an RFC 7946 `Polygon` or `MultiPolygon` object as JSON text.
    /// - Throws: ``GeoError`` `area_invalid` when GEOS cannot read it, it is not polygonal,
    ///   or it is not valid (unclosed or self-intersecting rings).
    public init(name: String, geoJSONGeometry: String) throws(GeoError) {
        self.name = name
        do {
            geometry = try Geometry.fromGeoJSON(geoJSONGeometry, context: context)
            guard try geometry.isValid() else {
                throw GeoError(.areaInvalid, message: "area \(name) is not a valid polygon", field: "geometry")
            }
            let box = try geometry.bounds()
            bounds = (box.minX, box.minY, box.maxX, box.maxY)
        } catch let error as GEOSError {
            throw GeoError(.areaInvalid, message: "area \(name): \(error.description)", field: "geometry")
        } catch let error as GeoError {
            throw error
        } catch {
            throw GeoError(.areaInvalid, message: "area \(name): \(error)", field: "geometry")
        }
    }

    /// Whether `point` lies strictly inside the area.
    public func contains(_ point: GeoPoint) -> Bool {
        guard point.lon >= bounds.minLon, point.lon <= bounds.maxLon,
              point.lat >= bounds.minLat, point.lat <= bounds.maxLat else { return false }
        lock.lock()
        defer { lock.unlock() }
        // A valid polygon and a finite point cannot make GEOS fail; treat a failure as outside.
        return (try? geometry.contains(x: point.lon, y: point.lat)) ?? false
    }
}
