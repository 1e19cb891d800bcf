/// Turns a caller's GeoJSON area or route into checked metric coordinates.
enum PlanarShape {
    /// The most vertices an area may have (all rings of all parts).
    static let maximumAreaVertices = 20_000
    /// The most vertices a route may have.
    static let maximumRouteVertices = 5_000

    /// The parts (each a shell and its holes) of a Polygon or MultiPolygon.
    static func polygons(_ geometry: GeoJSONGeometry, projection: Projection, field: String) throws(GeoError) -> [[[MetricPoint]]] {
        let parts: [GeoJSONGeometry.Coordinates]
        switch (geometry.type, geometry.coordinates) {
        case ("Polygon", let coordinates): parts = [coordinates]
        case ("MultiPolygon", .list(let items)): parts = items
        default:
            throw GeoError(.areaInvalid, message: "an area is a GeoJSON Polygon or MultiPolygon, not \(geometry.type)", field: "\(field).type")
        }
        guard !parts.isEmpty else { throw GeoError(.areaEmpty, message: "the area has no polygon", field: "\(field).coordinates") }
        var vertices = 0
        var result: [[[MetricPoint]]] = []
        for (partIndex, part) in parts.enumerated() {
            guard case .list(let rings) = part, !rings.isEmpty else {
                throw GeoError(.areaEmpty, message: "a polygon has no ring", field: "\(field).coordinates[\(partIndex)]")
            }
            var metricRings: [[MetricPoint]] = []
            for (ringIndex, ring) in rings.enumerated() {
                let ringField = "\(field).coordinates[\(partIndex)][\(ringIndex)]"
                let points = try positions(ring, projection: projection, field: ringField)
                vertices += points.count
                guard vertices <= maximumAreaVertices else {
                    throw GeoError(.areaTooLarge, message: "an area has at most \(maximumAreaVertices) vertices", field: "\(field).coordinates")
                }
                guard points.count >= 4 else {
                    throw GeoError(.areaInvalid, message: "a ring needs at least 4 positions", field: ringField)
                }
                guard points.first == points.last else {
                    throw GeoError(.areaUnclosed, message: "a ring must end at its first position", field: ringField)
                }
                metricRings.append(points)
            }
            result.append(metricRings)
        }
        return result
    }

    /// The vertices of a LineString route.
    static func line(_ geometry: GeoJSONGeometry, projection: Projection, field: String) throws(GeoError) -> [MetricPoint] {
        guard geometry.type == "LineString" else {
            throw GeoError(
                .routeInvalid, message: "a route is one ordered GeoJSON LineString, not \(geometry.type)", field: "\(field).type")
        }
        let points = try positions(geometry.coordinates, projection: projection, field: "\(field).coordinates")
        guard points.count <= maximumRouteVertices else {
            throw GeoError(.routeTooLong, message: "a route has at most \(maximumRouteVertices) vertices", field: "\(field).coordinates")
        }
        guard points.count >= 2, zip(points, points.dropFirst()).contains(where: { $0.distance(to: $1) > 0 }) else {
            throw GeoError(.routeZeroLength, message: "a route needs two distinct positions", field: "\(field).coordinates")
        }
        return points
    }

    private static func positions(_ coordinates: GeoJSONGeometry.Coordinates, projection: Projection, field: String) throws(GeoError) -> [MetricPoint] {
        guard case .list(let items) = coordinates else {
            throw GeoError(.geometryInvalid, message: "expected a list of [lon, lat] positions", field: field)
        }
        var points: [GeoPoint] = []
        points.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .position(let numbers) = item, numbers.count >= 2 else {
                throw GeoError(.geometryInvalid, message: "a position is [lon, lat]", field: "\(field)[\(index)]")
            }
            points.append(try GeoPoint(lat: numbers[1], lon: numbers[0], field: "\(field)[\(index)]"))
        }
        return try projection.metric(points) { "\(field)[\($0)]" }
    }
}
