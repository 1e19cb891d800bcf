import Foundation

/// The road lines of a deployment in its metric CRS, for finding the side streets that cross a route.
///
/// - Important: Immutable after loading; safe to share. Its GEOS index is used under a lock.
public final class RoadNetwork: @unchecked Sendable {  // @unchecked: the GEOS tree is only touched under `lock`.
    /// A road segment: two metric end points and the road it belongs to.
    struct Segment {
        let a: MetricPoint
        let b: MetricPoint
        let road: Int
    }

    let segments: [Segment]
    private let lock = NSLock()
    private let context = GEOSContext()
    private let tree: STRtree

    /// Reads the LineString features of a GeoJSON file (for example `brussels_roads_major_osm2013.geojson`).
    public init(contentsOf url: URL, projection: Projection) throws {
        struct Collection: Decodable {
            struct Feature: Decodable {
                var geometry: GeoJSONGeometry?
            }
            var features: [Feature]
        }
        let collection = try JSONDecoder().decode(Collection.self, from: Data(contentsOf: url))
        var roads = 0
        var segments: [Segment] = []
        for feature in collection.features {
            guard let geometry = feature.geometry, geometry.type == "LineString", case .list(let items) = geometry.coordinates else { continue }
            let points = items.compactMap { item -> GeoPoint? in
                guard case .position(let numbers) = item, numbers.count >= 2 else { return nil }
                return try? GeoPoint(lat: numbers[1], lon: numbers[0])
            }
            guard let metric = try? projection.metric(points, field: { _ in "roads" }), metric.count >= 2 else { continue }
            let road = roads
            roads += 1
            for (a, b) in zip(metric, metric.dropFirst()) where a != b { segments.append(Segment(a: a, b: b, road: road)) }
        }
        self.segments = segments
        tree = try STRtree(context: context)
        for segment in segments {
            try tree.insert(
                minX: min(segment.a.x, segment.b.x), minY: min(segment.a.y, segment.b.y),
                maxX: max(segment.a.x, segment.b.x), maxY: max(segment.a.y, segment.b.y))
        }
    }

    /// Where roads cross `path` at more than `minimumAngle` degrees: each crossing's measure along
    /// the path and its position, nearest the start first, one per road and route segment.
    func crossings(of path: RoutePath, minimumAngle: Double = 30) throws -> [(measure: Double, point: MetricPoint)] {
        var found: [(measure: Double, point: MetricPoint)] = []
        for index in 0..<(path.vertices.count - 1) {
            let a = path.vertices[index], b = path.vertices[index + 1]
            let candidates = try lock.withLock {
                try tree.query(minX: min(a.x, b.x), minY: min(a.y, b.y), maxX: max(a.x, b.x), maxY: max(a.y, b.y))
            }
            var roadsSeen = Set<Int>()
            for candidate in candidates.sorted() {
                let segment = segments[candidate]
                guard !roadsSeen.contains(segment.road),
                      let t = Self.intersection(a, b, segment.a, segment.b),
                      Self.angleBetween(a, b, segment.a, segment.b) >= minimumAngle
                else { continue }
                roadsSeen.insert(segment.road)
                let point = MetricPoint(x: a.x + t * (b.x - a.x), y: a.y + t * (b.y - a.y))
                found.append((path.measures[index] + t * a.distance(to: b), point))
            }
        }
        return found.sorted { $0.measure < $1.measure }
    }

    /// The parameter along a–b where it crosses c–d, if the two segments cross.
    static func intersection(_ a: MetricPoint, _ b: MetricPoint, _ c: MetricPoint, _ d: MetricPoint) -> Double? {
        let r = (x: b.x - a.x, y: b.y - a.y), s = (x: d.x - c.x, y: d.y - c.y)
        let denominator = r.x * s.y - r.y * s.x
        guard abs(denominator) > 1e-9 else { return nil }  // parallel
        let t = ((c.x - a.x) * s.y - (c.y - a.y) * s.x) / denominator
        let u = ((c.x - a.x) * r.y - (c.y - a.y) * r.x) / denominator
        return (0...1).contains(t) && (0...1).contains(u) ? t : nil
    }

    /// The acute angle between two segments' directions, in degrees (0 to 90).
    static func angleBetween(_ a: MetricPoint, _ b: MetricPoint, _ c: MetricPoint, _ d: MetricPoint) -> Double {
        let first = atan2(b.y - a.y, b.x - a.x), second = atan2(d.y - c.y, d.x - c.x)
        var angle = abs(first - second).truncatingRemainder(dividingBy: .pi) * 180 / .pi
        if angle > 90 { angle = 180 - angle }
        return angle
    }
}
