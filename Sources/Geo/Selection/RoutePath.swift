/// A route as a metric polyline with the distance along it to each vertex (linear referencing).
struct RoutePath {
    let vertices: [MetricPoint]
    /// `measures[i]` is the distance along the route from its start to `vertices[i]`.
    let measures: [Double]

    init(_ vertices: [MetricPoint]) {
        self.vertices = vertices
        var measures = [0.0]
        for (a, b) in zip(vertices, vertices.dropFirst()) { measures.append(measures.last! + a.distance(to: b)) }
        self.measures = measures
    }

    var length: Double { measures.last ?? 0 }

    /// The point `measure` metres along the route (clamped to its ends).
    func point(at measure: Double) -> MetricPoint {
        guard measure > 0 else { return vertices[0] }
        for segment in 0..<(vertices.count - 1) where measures[segment + 1] >= measure {
            let length = measures[segment + 1] - measures[segment]
            let t = length == 0 ? 0 : (measure - measures[segment]) / length
            let a = vertices[segment], b = vertices[segment + 1]
            return MetricPoint(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y))
        }
        return vertices[vertices.count - 1]
    }

    /// Consecutive segment index ranges (segment i joins vertex i and i + 1), each about `length` metres long.
    func chunks(ofLength length: Double) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var start = 0
        for segment in 0..<(vertices.count - 1) where measures[segment + 1] - measures[start] >= length || segment == vertices.count - 2 {
            chunks.append(start..<(segment + 1))
            start = segment + 1
        }
        return chunks
    }

    func bounds(of segments: Range<Int>) -> (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        let points = vertices[segments.lowerBound...segments.upperBound]
        return (points.map(\.x).min()!, points.map(\.y).min()!, points.map(\.x).max()!, points.map(\.y).max()!)
    }

    /// The distance from `point` to the nearest of `segments`, and the measure along the route of that nearest point.
    func nearestPoint(to point: MetricPoint, segments: Range<Int>) -> (distance: Double, along: Double) {
        var best = (distance: Double.infinity, along: 0.0)
        for segment in segments {
            let a = vertices[segment], b = vertices[segment + 1]
            let dx = b.x - a.x, dy = b.y - a.y
            let lengthSquared = dx * dx + dy * dy
            let t = lengthSquared == 0 ? 0 : max(0, min(1, ((point.x - a.x) * dx + (point.y - a.y) * dy) / lengthSquared))
            let distance = point.distance(to: MetricPoint(x: a.x + t * dx, y: a.y + t * dy))
            if distance < best.distance { best = (distance, measures[segment] + t * lengthSquared.squareRoot()) }
        }
        return best
    }
}
