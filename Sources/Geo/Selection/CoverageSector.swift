import Foundation

/// What a camera covers in the metric plane: a circular sector from its position, `range`
/// metres deep, `fieldOfView` degrees wide around `heading`; a full disc for an
/// omnidirectional camera. Headings are grid bearings (clockwise from the CRS's grid north).
struct CoverageSector: Sendable {
    let apex: MetricPoint
    /// Grid bearing of the optical axis in degrees, nil for omnidirectional.
    let heading: Double?
    /// Full opening angle in degrees, nil (or ≥ 360) for omnidirectional.
    let fieldOfView: Double?
    let range: Double

    var isOmnidirectional: Bool { heading == nil || (fieldOfView ?? 360) >= 360 }

    /// Whether `point` lies in the sector (boundary included).
    func contains(_ point: MetricPoint) -> Bool {
        let distance = apex.distance(to: point)
        guard distance <= range else { return false }
        guard !isOmnidirectional, distance > 0, let heading, let fieldOfView else { return true }
        return Self.angularDifference(apex.bearing(to: point), heading) <= fieldOfView / 2
    }

    /// The sector's bounding box: the apex, the two edge ends and the axis-aligned extremes of the arc.
    var bounds: (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        guard !isOmnidirectional, let heading, let fieldOfView else {
            return (apex.x - range, apex.y - range, apex.x + range, apex.y + range)
        }
        var bearings = [heading - fieldOfView / 2, heading + fieldOfView / 2]
        for cardinal in stride(from: 0.0, to: 360, by: 90) where Self.angularDifference(cardinal, heading) <= fieldOfView / 2 {
            bearings.append(cardinal)
        }
        let points = [apex] + bearings.map(point(at:))
        return (points.map(\.x).min()!, points.map(\.y).min()!, points.map(\.x).max()!, points.map(\.y).max()!)
    }

    /// The sector as a closed ring, its arc drawn with one vertex every 5 degrees at most.
    var ring: [MetricPoint] {
        guard !isOmnidirectional, let heading, let fieldOfView else {
            let arc = (0..<72).map { point(at: Double($0) * 5) }
            return arc + [arc[0]]
        }
        let steps = max(2, Int((fieldOfView / 5).rounded(.up)))
        let arc = (0...steps).map { point(at: heading - fieldOfView / 2 + fieldOfView * Double($0) / Double(steps)) }
        return [apex] + arc + [apex]
    }

    private func point(at bearing: Double) -> MetricPoint {
        let radians = bearing * .pi / 180
        return MetricPoint(x: apex.x + range * sin(radians), y: apex.y + range * cos(radians))
    }

    /// The smallest angle between two bearings, in [0, 180].
    static func angularDifference(_ a: Double, _ b: Double) -> Double {
        let difference = abs((a - b).truncatingRemainder(dividingBy: 360))
        return difference > 180 ? 360 - difference : difference
    }
}
