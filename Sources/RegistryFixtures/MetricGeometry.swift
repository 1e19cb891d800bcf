import Foundation
import Geo

/// Small planar helpers for placing fixture cameras in a metric CRS.
struct MetricGeometry {
    let projection: Projection

    /// A point `distance` metres from `origin` towards `bearing` (degrees from grid north).
    func offset(_ origin: GeoPoint, distance: Double, bearing: Double) throws -> GeoPoint {
        let m = try projection.metric(origin)
        let radians = bearing * .pi / 180
        return try projection.geographic(MetricPoint(x: m.x + distance * sin(radians), y: m.y + distance * cos(radians)))
    }

    func distance(_ a: GeoPoint, _ b: GeoPoint) throws -> Double {
        try projection.metric(a).distance(to: projection.metric(b))
    }

    /// Points along a polyline: the first at `start` metres, then each next one `spacing()` further.
    /// Each comes with the line's bearing there.
    func samples(along line: [GeoPoint], start: Double, spacing: () -> Double) throws -> [(point: GeoPoint, bearing: Double)] {
        let metric = try line.map { try projection.metric($0) }
        var result: [(GeoPoint, Double)] = []
        var next = start
        var travelled = 0.0
        for (a, b) in zip(metric, metric.dropFirst()) {
            let length = a.distance(to: b)
            guard length > 0 else { continue }
            while next <= travelled + length {
                let t = (next - travelled) / length
                let point = MetricPoint(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y))
                result.append((try projection.geographic(point), a.bearing(to: b)))
                next += spacing()
            }
            travelled += length
        }
        return result
    }

    static func normalized(_ degrees: Double) -> Double {
        let value = degrees.truncatingRemainder(dividingBy: 360)
        return value < 0 ? value + 360 : value
    }

}
