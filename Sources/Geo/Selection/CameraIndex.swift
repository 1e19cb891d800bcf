import Foundation

/// A camera chosen by a selection, with its distance and why it was picked.
public struct CameraMatch: Sendable, Hashable, Codable {
    public var camera: Camera
    /// Planar distance in the deployment's metric CRS, in metres, rounded to the centimetre:
    /// to the query point, to the route line, or to the area (0 inside).
    public var distanceMeters: Double
    /// Why it was picked: `within_radius`, `nearest`, `sees_point`, `inside_area`, `covers_area`, `along_route`.
    public var reason: String

    /// The reasons a selection gives, as an enum so that ranking moves no strings around.
    enum Reason: String {
        case withinRadius = "within_radius", nearest, seesPoint = "sees_point", insideArea = "inside_area"
        case coversArea = "covers_area", alongRoute = "along_route"
    }
    /// For a route: the distance along the route to the camera's nearest point on it.
    public var alongMeters: Double?
}

/// The spatial index of a camera registry in one metric CRS: two GEOS STRtrees, one over the
/// projected camera positions and one over their coverage sectors.
///
/// Under a ``LocationDisclosure`` with cells, a confidential camera is indexed at the centre of
/// its grid square and reaches `reach` metres beyond it (the square's half-diagonal): every
/// distance a query measures to it is the distance to that disc, so answers depend on the
/// square alone. Its coverage is then the disc of its range around the same centre.
///
/// Ranking (every answer is deterministic): by distance, then by camera id; for a route, by
/// the distance along the route, then by id. A filter's `limit` keeps the first cameras of
/// that order.
///
/// - Important: Safe to share between threads: GEOS work runs under an internal lock,
///   because GEOS builds a tree lazily on its first query and a GEOS context is single-threaded.
public final class CameraIndex: @unchecked Sendable {  // @unchecked: GEOS state is only touched under `lock`.
    /// Largest radius (and `max_meters`, and corridor width) accepted, so a typo cannot select a whole country.
    public static let maximumRadiusMeters = 50_000.0
    /// Most cameras a `nearest` query may ask for.
    public static let maximumNearestCount = 1_000

    public let projection: Projection
    public let cameras: [Camera]
    public let disclosure: LocationDisclosure
    /// The cameras left out by ``init(admitting:projection:disclosure:)``, and why.
    public private(set) var refused: [CameraRefusal] = []
    /// Where each camera counts for selections (its own position, or its disclosure cell's centre).
    private let positions: [MetricPoint]
    /// How far beyond `positions[i]` camera `i` may be (0, or a disclosure cell's half-diagonal).
    private let reaches: [Double]
    private let maximumReach: Double
    private let sectors: [CoverageSector]
    private let lock = NSLock()
    private let context: GEOSContext
    private let positionTree: STRtree
    private let sectorTree: STRtree
    /// The widest sector range, by which a point query's box is widened on the sector tree.
    private let maximumRange: Double

    /// An index of the cameras ``CameraAdmission`` lets in; the others are listed in ``refused``.
    /// A server builds its index this way, so that one bad registry row cannot stop it.
    public convenience init(admitting cameras: [Camera], projection: Projection, disclosure: LocationDisclosure = .exact) throws(GeoError) {
        let (admitted, refused) = CameraAdmission.split(cameras, projection: projection)
        try self.init(cameras: admitted, projection: projection, disclosure: disclosure)
        self.refused = refused
    }

    /// Projects every camera, computes its coverage sector, and builds both trees.
    ///
    /// - Throws: ``GeoError`` `coordinate_outside_crs` naming the first camera outside the CRS.
    public init(cameras: [Camera], projection: Projection, disclosure: LocationDisclosure = .exact) throws(GeoError) {
        self.projection = projection
        self.cameras = cameras
        self.disclosure = disclosure
        // Two bulk projections: the positions, and a point 1e-4 degree north of each (to turn
        // true-north headings into grid bearings: the meridian convergence varies across a CRS).
        let exactPositions = try projection.metric(cameras.map(\.position)) { "cameras[\(cameras[$0].id)].position" }
        let indexed = zip(cameras, exactPositions).map { disclosure.indexedPosition(of: $0, at: $1) }
        let positions = indexed.map(\.position)
        let reaches = indexed.map(\.reach)
        var northward: [GeoPoint] = []
        northward.reserveCapacity(cameras.count)
        for camera in cameras { northward.append(try GeoPoint(lat: min(90, camera.position.lat + 1e-4), lon: camera.position.lon)) }
        let norths = try projection.metric(northward) { "cameras[\(cameras[$0].id)].position" }
        var sectors: [CoverageSector] = []
        sectors.reserveCapacity(cameras.count)
        for (index, camera) in cameras.enumerated() {
            if reaches[index] > 0 {
                // A generalised camera covers every direction from anywhere in its square.
                sectors.append(CoverageSector(apex: positions[index], heading: nil, fieldOfView: nil, range: camera.rangeMeters + reaches[index]))
                continue
            }
            let gridHeading = camera.headingDegrees.map { $0 + positions[index].bearing(to: norths[index]) }
            sectors.append(CoverageSector(
                apex: positions[index], heading: gridHeading, fieldOfView: camera.fieldOfViewDegrees, range: camera.rangeMeters))
        }
        self.positions = positions
        self.reaches = reaches
        maximumReach = reaches.max() ?? 0
        self.sectors = sectors
        maximumRange = sectors.map(\.range).max() ?? 0
        context = GEOSContext()
        do {
            positionTree = try STRtree(context: context)
            sectorTree = try STRtree(context: context)
            for (position, sector) in zip(positions, sectors) {
                try positionTree.insert(minX: position.x, minY: position.y, maxX: position.x, maxY: position.y)
                let box = sector.bounds
                try sectorTree.insert(minX: box.minX, minY: box.minY, maxX: box.maxX, maxY: box.maxY)
            }
        } catch {
            throw GeoError(.geosFailure, message: error.description)
        }
    }

    // MARK: Queries

    /// Runs a query given in its wire form.
    public func select(_ query: SelectionQuery) throws(GeoError) -> [CameraMatch] {
        let filter = query.filter ?? SelectionFilter()
        try filter.validate()
        switch query.type {
        case .radius:
            return try within(radiusMeters: required(query.meters, "meters"), of: required(query.at, "at"), filter: filter)
        case .nearest:
            return try nearest(
                try required(query.count, "count"), to: try required(query.at, "at"),
                maximumMeters: query.maxMeters ?? Self.maximumRadiusMeters, filter: filter)
        case .sees:
            return try seeing(try required(query.at, "at"), filter: filter)
        case .area:
            return try inArea(try required(query.geometry, "geometry"), filter: filter)
        case .route:
            return try alongRoute(try required(query.geometry, "geometry"), widthMeters: try required(query.widthMeters, "width_meters"), filter: filter)
        }
    }

    /// The cameras within `radiusMeters` of `center`.
    ///
    /// - Throws: ``GeoError`` `radius_invalid` for a radius not in (0, 50 km],
    ///   `coordinate_outside_crs` for a centre outside the deployment's CRS.
    public func within(radiusMeters: Double, of center: GeoPoint, filter: SelectionFilter = SelectionFilter()) throws(GeoError) -> [CameraMatch] {
        try Self.checkDistance(radiusMeters, field: "radius")
        let origin = try projection.metric(center, field: "at")
        let candidates = try query(positionTree, around: origin, by: radiusMeters + maximumReach)
        return ranked(candidates.compactMap { index in
            let distance = self.distance(from: index, to: origin)
            return distance <= radiusMeters ? (index, distance, .withinRadius, nil) : nil
        }, filter: filter)
    }

    /// The `count` cameras nearest `center`, none farther than `maximumMeters` (for example
    /// the four closest to a dispatch call).
    public func nearest(_ count: Int, to center: GeoPoint, maximumMeters: Double, filter: SelectionFilter = SelectionFilter()) throws(GeoError) -> [CameraMatch] {
        guard (1...Self.maximumNearestCount).contains(count) else {
            throw GeoError(.countInvalid, message: "count must be 1 to \(Self.maximumNearestCount)", field: "count")
        }
        try Self.checkDistance(maximumMeters, field: "max_meters")
        let origin = try projection.metric(center, field: "at")
        // Widen a square search until it holds `count` admitted cameras within its inscribed
        // circle: nothing outside that circle can be nearer than what is inside.
        var radius = min(maximumMeters, 100)
        while true {
            let found = try query(positionTree, around: origin, by: radius + maximumReach).compactMap { index -> Candidate? in
                let distance = self.distance(from: index, to: origin)
                return distance <= radius && filter.admits(cameras[index]) ? (index, distance, .nearest, nil) : nil
            }
            if found.count >= count || radius >= maximumMeters {
                var capped = filter
                capped.limit = min(count, filter.limit ?? count)
                return ranked(found, filter: capped)
            }
            radius = min(maximumMeters, radius * 2)
        }
    }

    /// The cameras that see `point`: it lies within their range and field of view.
    public func seeing(_ point: GeoPoint, filter: SelectionFilter = SelectionFilter()) throws(GeoError) -> [CameraMatch] {
        let target = try projection.metric(point, field: "at")
        let candidates = try query(sectorTree, around: target, by: 0)
        return ranked(candidates.compactMap { index in
            sectors[index].contains(target) ? (index, self.distance(from: index, to: target), .seesPoint, nil) : nil
        }, filter: filter)
    }

    /// The cameras inside an area (`inside_area`, distance 0) or whose coverage reaches into it
    /// (`covers_area`, with the distance from the camera to the area).
    public func inArea(_ area: GeoJSONGeometry, filter: SelectionFilter = SelectionFilter()) throws(GeoError) -> [CameraMatch] {
        let parts = try PlanarShape.polygons(area, projection: projection, field: "geometry")
        return try withGEOS { () throws -> [CameraMatch] in
            let polygon = parts.count == 1
                ? try Geometry.polygon(parts[0], context: context)
                : try Geometry.multiPolygon(parts, context: context)
            guard try polygon.isValid() else {
                throw GeoError(.areaInvalid, message: "the area is not a valid polygon (self-intersecting rings?)", field: "geometry")
            }
            let box = try polygon.bounds()
            var matches: [Candidate] = []
            var inside = Set<Int>()
            let reach = maximumReach
            for index in try positionTree.query(minX: box.minX - reach, minY: box.minY - reach, maxX: box.maxX + reach, maxY: box.maxY + reach) {
                let isInside = reaches[index] > 0
                    // A generalised camera is inside when the area comes within its reach of the cell's centre.
                    ? try polygon.distance(to: try Geometry.point(x: positions[index].x, y: positions[index].y, context: context)) <= reaches[index]
                    : try polygon.contains(x: positions[index].x, y: positions[index].y)
                guard isInside else { continue }
                inside.insert(index)
                matches.append((index, 0, .insideArea, nil))
            }
            for index in try sectorTree.query(minX: box.minX, minY: box.minY, maxX: box.maxX, maxY: box.maxY) where !inside.contains(index) {
                let sector = try Geometry.polygon([sectors[index].ring], context: context)
                guard try polygon.intersects(sector) else { continue }
                let apex = try Geometry.point(x: positions[index].x, y: positions[index].y, context: context)
                matches.append((index, max(0, try polygon.distance(to: apex) - reaches[index]), .coversArea, nil))
            }
            return ranked(matches, filter: filter)
        }
    }

    /// The cameras whose position lies within `widthMeters / 2` of the route line (a corridor
    /// `widthMeters` wide), ordered by the distance along the route of their nearest point on it.
    ///
    /// The route is cut into chunks of about 200 m; each chunk's box, widened by half the width,
    /// is one STRtree query, and each candidate's distance to the chunk's segments is exact
    /// planar arithmetic. No buffer polygon is built: the corridor is defined by distance.
    public func alongRoute(_ route: GeoJSONGeometry, widthMeters: Double, filter: SelectionFilter = SelectionFilter()) throws(GeoError) -> [CameraMatch] {
        try Self.checkDistance(widthMeters, field: "width_meters")
        let path = RoutePath(try PlanarShape.line(route, projection: projection, field: "geometry"))
        let halfWidth = widthMeters / 2
        var found: [Candidate] = []
        // Chunks overlap at their ends: each camera is kept once, at its nearest point of the route.
        var position: [Int: Int] = [:]
        for chunk in path.chunks(ofLength: 200) {
            let box = path.bounds(of: chunk)
            let candidates = try withGEOS { () throws(GEOSError) -> [Int] in
                let reach = halfWidth + maximumReach
                return try positionTree.query(minX: box.minX - reach, minY: box.minY - reach, maxX: box.maxX + reach, maxY: box.maxY + reach)
            }
            for index in candidates {
                let (centreDistance, along) = path.nearestPoint(to: positions[index], segments: chunk)
                let distance = max(0, centreDistance - reaches[index])
                guard distance <= halfWidth else { continue }
                if let known = position[index] {
                    if distance < found[known].distance { found[known] = (index, distance, .alongRoute, along) }
                } else {
                    position[index] = found.count
                    found.append((index, distance, .alongRoute, along))
                }
            }
        }
        return ranked(found, filter: filter)
    }

    // MARK: Helpers

    /// The distance from camera `index` to `point`: from its position, or from the edge of its
    /// disclosure disc (0 inside it).
    private func distance(from index: Int, to point: MetricPoint) -> Double {
        max(0, positions[index].distance(to: point) - reaches[index])
    }

    private func required<T>(_ value: T?, _ field: String) throws(GeoError) -> T {
        guard let value else { throw GeoError(.queryIncomplete, message: "this query needs '\(field)'", field: field) }
        return value
    }

    private static func checkDistance(_ meters: Double, field: String) throws(GeoError) {
        guard meters.isFinite, meters > 0, meters <= maximumRadiusMeters else {
            throw GeoError(.radiusInvalid, message: "\(field) must be a number of metres in (0, \(Int(maximumRadiusMeters))]", field: field)
        }
    }

    /// Item positions in `tree` whose boxes meet the square of half-side `reach` around `center`
    /// (for the sector tree, a point query needs no widening: sector boxes already hold their reach).
    private func query(_ tree: STRtree, around center: MetricPoint, by reach: Double) throws(GeoError) -> [Int] {
        try withGEOS { () throws(GEOSError) -> [Int] in
            try tree.query(minX: center.x - reach, minY: center.y - reach, maxX: center.x + reach, maxY: center.y + reach)
        }
    }

    private func withGEOS<T>(_ body: () throws -> T) throws(GeoError) -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            return try body()
        } catch let error as GeoError {
            throw error
        } catch {
            throw GeoError(.geosFailure, message: "\(error)")
        }
    }

    /// A camera found by a query, before ranking.
    private typealias Candidate = (index: Int, distance: Double, reason: CameraMatch.Reason, along: Double?)

    private func ranked(_ found: [Candidate], filter: SelectionFilter) -> [CameraMatch] {
        var sorted = found.filter { filter.admits(cameras[$0.index]) }
        sorted.sort { a, b in
            let keyA = a.along ?? a.distance, keyB = b.along ?? b.distance
            return keyA != keyB ? keyA < keyB : cameras[a.index].id < cameras[b.index].id
        }
        return sorted.prefix(filter.limit ?? Int.max).map { entry in
            CameraMatch(
                camera: cameras[entry.index], distanceMeters: (entry.distance * 100).rounded() / 100, reason: entry.reason.rawValue,
                alongMeters: entry.along.map { ($0 * 100).rounded() / 100 })
        }
    }
}
