/// The circle around a perimeter: what an incident defined by a polygon reports as its centre and radius.
public enum PerimeterExtent {
    /// The centre of the polygon's bounding box and the distance from it to the farthest vertex.
    public static func of(_ polygon: GeoJSONGeometry, projection: Projection) throws(GeoError) -> (center: GeoPoint, radiusMeters: Double) {
        let vertices = try PlanarShape.polygons(polygon, projection: projection, field: "area").flatMap { $0.flatMap { $0 } }
        let xs = vertices.map(\.x), ys = vertices.map(\.y)
        let centre = MetricPoint(x: (xs.min()! + xs.max()!) / 2, y: (ys.min()! + ys.max()!) / 2)
        let radius = vertices.map { $0.distance(to: centre) }.max()!
        return (try projection.geographic(centre), (radius * 10).rounded() / 10)
    }
}
