import Foundation

/// Follows a march along its declared route: from each head and tail position, the cameras
/// ahead of the head, along the occupied stretch, behind the tail, in the side streets at
/// junctions inside that window, and at the arrival area as the head nears it, with hysteresis.
///
/// Everything that depends only on the route is computed once at creation (the corridor
/// cameras with their measure along the route, the junctions and their cameras, the arrival
/// cameras), so an update is a filter over those lists.
///
/// - Important: A tracker keeps state between updates (hysteresis, head speed); use one per
///   march, from one task at a time.
public struct MarchTracker: Sendable {
    public let configuration: MarchConfiguration
    public let routeLengthMeters: Double

    private let index: CameraIndex
    private let path: RoutePath
    private let end: GeoPoint
    private let corridor: [MarchCamera]
    private let junctions: [(measure: Double, cameras: [MarchCamera])]
    private let arrival: [MarchCamera]

    private struct Shown {
        var section: MarchSection
        /// When the camera was last inside the window's entering edge.
        var lastInside: Date
    }

    private var shown: [String: Shown] = [:]
    private var lastHead: (measure: Double, at: Date)?
    private var speed: Double?
    private var wasOnRoute = true
    private var arrivalAnnounced = false

    /// - Parameters:
    ///   - route: the declared route, a GeoJSON LineString.
    ///   - roads: the road network, for the side streets (none: no side-street section).
    /// - Throws: ``GeoError`` for a bad route or configuration.
    public init(index: CameraIndex, route: GeoJSONGeometry, roads: RoadNetwork?, configuration: MarchConfiguration) throws(GeoError) {
        try configuration.validate()
        self.index = index
        self.configuration = configuration
        let vertices = try PlanarShape.line(route, projection: index.projection, field: "route")
        path = RoutePath(vertices)
        routeLengthMeters = path.length
        end = try index.projection.geographic(vertices[vertices.count - 1])
        corridor = try index.alongRoute(route, widthMeters: configuration.corridorWidthMeters).map {
            MarchCamera(camera: $0.camera, section: .occupied, alongMeters: $0.alongMeters, distanceMeters: $0.distanceMeters)
        }
        let onCorridor = Set(corridor.map(\.camera.id))
        var junctions: [(measure: Double, cameras: [MarchCamera])] = []
        if let roads, configuration.sideStreetRadiusMeters > 0 {
            let crossings: [(measure: Double, point: MetricPoint)]
            do {
                crossings = try roads.crossings(of: path)
            } catch {
                throw GeoError(.geosFailure, message: "\(error)")
            }
            for crossing in crossings {
                let centre = try index.projection.geographic(crossing.point)
                let cameras = try index.within(radiusMeters: configuration.sideStreetRadiusMeters, of: centre)
                    .filter { !onCorridor.contains($0.camera.id) }
                    .map { MarchCamera(camera: $0.camera, section: .sideStreet, alongMeters: crossing.measure, distanceMeters: $0.distanceMeters) }
                if !cameras.isEmpty { junctions.append((crossing.measure, cameras)) }
            }
        }
        self.junctions = junctions
        arrival = configuration.arrivalRadiusMeters > 0
            ? try index.within(radiusMeters: configuration.arrivalRadiusMeters, of: end).map {
                MarchCamera(camera: $0.camera, section: .arrival, alongMeters: nil, distanceMeters: $0.distanceMeters)
            }
            : []
    }

    /// The number of junctions with side-street cameras found along the route.
    public var junctionCount: Int { junctions.count }

    /// Moves the march to `head` and `tail` (points are snapped onto the route) at time `at`.
    ///
    /// - Throws: ``GeoError`` `march_invalid` when the tail is ahead of the head or a measure is off the route.
    public mutating func update(head: MarchPosition, tail: MarchPosition, at now: Date) throws(GeoError) -> MarchUpdate {
        let headFix = try snap(head, field: "head")
        let tailFix = try snap(tail, field: "tail")
        let onRoute = headFix.offset <= configuration.offRouteToleranceMeters
        guard !onRoute || tailFix.measure <= headFix.measure + 1e-6 else {
            throw GeoError(.marchInvalid, message: "the tail (\(Int(tailFix.measure)) m) is ahead of the head (\(Int(headFix.measure)) m)", field: "tail")
        }
        var events: [String] = []
        if onRoute != wasOnRoute { events.append(onRoute ? "head_back_on_route" : "head_left_route") }
        wasOnRoute = onRoute
        if onRoute {
            if let last = lastHead, now > last.at {
                let observed = max(0, (headFix.measure - last.measure) / now.timeIntervalSince(last.at))
                speed = speed.map { 0.5 * $0 + 0.5 * observed } ?? observed
            }
            lastHead = (headFix.measure, now)
        }

        let entering: [String: MarchCamera]
        let staying: [String: MarchCamera]
        if onRoute {
            let arrivalNear = routeLengthMeters - headFix.measure <= configuration.arrivalTriggerMeters
            if arrivalNear && !arrivalAnnounced { events.append("arrival_near") }
            arrivalAnnounced = arrivalNear
            entering = window(head: headFix.measure, tail: tailFix.measure, widening: 0)
            staying = window(head: headFix.measure, tail: tailFix.measure, widening: configuration.marginMeters)
        } else {
            entering = try fallback(around: headFix.position, radius: configuration.fallbackRadiusMeters)
            staying = try fallback(around: headFix.position, radius: configuration.fallbackRadiusMeters + configuration.marginMeters)
        }

        // Hysteresis: enter inside the edge; leave beyond edge + margin, or after the dwell time between the two.
        var next: [String: MarchCamera] = [:]
        for (id, camera) in staying {
            if entering[id] != nil {
                next[id] = camera
            } else if let previous = shown[id], now.timeIntervalSince(previous.lastInside) < configuration.dwellSeconds {
                next[id] = camera
            }
        }
        var ranked = next.values.sorted(by: Self.ranking())
        if let limit = configuration.limit { ranked = Array(ranked.prefix(limit)) }

        var added: [MarchCamera] = []
        var relabelled: [MarchCamera] = []
        var nextShown: [String: Shown] = [:]
        for camera in ranked {
            let id = camera.camera.id
            let lastInside = entering[id] != nil ? now : shown[id]?.lastInside ?? now
            if let previous = shown[id] {
                if previous.section != camera.section { relabelled.append(camera) }
            } else {
                added.append(camera)
            }
            nextShown[id] = Shown(section: camera.section, lastInside: lastInside)
        }
        let removed = shown.keys.filter { nextShown[$0] == nil }.sorted()
        shown = nextShown
        return MarchUpdate(
            headMeters: headFix.measure, tailMeters: tailFix.measure, headPosition: headFix.position,
            routeLengthMeters: routeLengthMeters, headSpeed: speed,
            headOffsetMeters: (headFix.offset * 100).rounded() / 100, onRoute: onRoute, cameras: ranked, added: added, removed: removed,
            relabelled: relabelled, events: events)
    }

    // MARK: The window

    /// The cameras of the window drawn with its outer edges pushed out by `widening` metres.
    private func window(head: Double, tail: Double, widening: Double) -> [String: MarchCamera] {
        var ahead = configuration.aheadMeters
        if let seconds = configuration.aheadSeconds, let speed { ahead = max(ahead, seconds * speed) }
        let front = head + ahead + widening
        let back = tail - configuration.behindMeters - widening
        var cameras: [String: MarchCamera] = [:]
        func offer(_ camera: MarchCamera, as section: MarchSection) {
            if let existing = cameras[camera.camera.id], existing.section <= section { return }
            var labelled = camera
            labelled.section = section
            cameras[camera.camera.id] = labelled
        }
        for camera in corridor {
            guard let along = camera.alongMeters, along >= back, along <= front else { continue }
            offer(camera, as: along > head ? .ahead : along >= tail ? .occupied : .behind)
        }
        for junction in junctions where junction.measure >= back && junction.measure <= front {
            for camera in junction.cameras { offer(camera, as: .sideStreet) }
        }
        if routeLengthMeters - head <= configuration.arrivalTriggerMeters + widening {
            for camera in arrival { offer(camera, as: .arrival) }
        }
        return cameras
    }

    private func fallback(around position: GeoPoint, radius: Double) throws(GeoError) -> [String: MarchCamera] {
        var cameras: [String: MarchCamera] = [:]
        for match in try index.within(radiusMeters: radius, of: position) {
            cameras[match.camera.id] = MarchCamera(camera: match.camera, section: .fallback, alongMeters: nil, distanceMeters: match.distanceMeters)
        }
        return cameras
    }

    private static func ranking() -> (MarchCamera, MarchCamera) -> Bool {
        func key(_ camera: MarchCamera) -> Double {
            switch camera.section {
            case .ahead: camera.alongMeters ?? 0  // nearest the head first
            case .occupied, .behind, .sideStreet: -(camera.alongMeters ?? 0)  // from the head back
            case .arrival, .fallback: camera.distanceMeters
            }
        }
        return { (a: MarchCamera, b: MarchCamera) -> Bool in
            if a.section != b.section { return a.section < b.section }
            let keyA = key(a), keyB = key(b)
            return keyA != keyB ? keyA < keyB : a.camera.id < b.camera.id
        }
    }

    // MARK: Snapping

    private func snap(_ position: MarchPosition, field: String) throws(GeoError) -> (measure: Double, offset: Double, position: GeoPoint) {
        switch position {
        case .measure(let measure):
            guard measure.isFinite, measure >= 0, measure <= routeLengthMeters else {
                throw GeoError(.marchInvalid, message: "\(field) must be 0 to \(Int(routeLengthMeters)) metres along the route", field: field)
            }
            return (measure, 0, try index.projection.geographic(path.point(at: measure)))
        case .point(let point):
            let metric = try index.projection.metric(point, field: field)
            let nearest = path.nearestPoint(to: metric, segments: 0..<(path.vertices.count - 1))
            return (nearest.along, nearest.distance, point)
        }
    }
}
