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

    /// The planar area of a Polygon or MultiPolygon, holes taken out, in square metres.
    public static func area(of polygon: GeoJSONGeometry, projection: Projection) throws(GeoError) -> Double {
        func shoelace(_ ring: [MetricPoint]) -> Double {
            abs(zip(ring, ring.dropFirst() + ring.prefix(1)).reduce(0) { $0 + $1.0.x * $1.1.y - $1.1.x * $1.0.y }) / 2
        }
        return try PlanarShape.polygons(polygon, projection: projection, field: "area").reduce(0) { total, rings in
            total + shoelace(rings[0]) - rings.dropFirst().map(shoelace).reduce(0, +)
        }
    }

    /// The circle around a route (a LineString) and the route's length, in metres.
    public static func ofRoute(_ route: GeoJSONGeometry, projection: Projection) throws(GeoError) -> (radiusMeters: Double, lengthMeters: Double) {
        let vertices = try PlanarShape.line(route, projection: projection, field: "route")
        let xs = vertices.map(\.x), ys = vertices.map(\.y)
        let centre = MetricPoint(x: (xs.min()! + xs.max()!) / 2, y: (ys.min()! + ys.max()!) / 2)
        let length = zip(vertices, vertices.dropFirst()).reduce(0) { $0 + $1.0.distance(to: $1.1) }
        return (vertices.map { $0.distance(to: centre) }.max()!, length)
    }
}
