import Foundation
import Geo

/// What is stored of a march (the `incidents.march` column): its route, window settings and position.
struct StoredMarch: Codable {
    var route: GeoJSONGeometry
    var configuration: MarchConfiguration
    var status: MarchStatus
}

/// What a commander asks for when opening a march: the declared route, where the head and tail are.
public struct OpenMarchRequest: Sendable {
    public var kind: IncidentKind
    public var route: GeoJSONGeometry
    public var head: MarchPosition
    public var tail: MarchPosition
    public var configuration: MarchConfiguration
    public var title: String?
    public var exercise: Bool?
    public var details = IncidentDetails()
    /// Open it as a draft (see ``OpenIncidentRequest/draft``).
    public var draft = false

    public init(
        kind: IncidentKind, route: GeoJSONGeometry, head: MarchPosition, tail: MarchPosition,
        configuration: MarchConfiguration = MarchConfiguration(), title: String? = nil, exercise: Bool? = nil
    ) {
        self.kind = kind
        self.route = route
        self.head = head
        self.tail = tail
        self.configuration = configuration
        self.title = title
        self.exercise = exercise
    }
}

extension IncidentService {
    /// Opens an incident that follows a march along its route: the cameras of the march window.
    public func openMarch(_ request: OpenMarchRequest, by agency: String, user: String? = nil) async throws(IncidentError) -> IncidentChange {
        try Self.checkTitle(request.title)
        var tracker: MarchTracker
        let update: MarchUpdate
        let extent: (radiusMeters: Double, lengthMeters: Double)
        let now = Date()
        do throws(GeoError) {
            tracker = try MarchTracker(index: engine.index, route: request.route, roads: roads, configuration: request.configuration)
            update = try tracker.update(head: request.head, tail: request.tail, at: now)
            extent = try PerimeterExtent.ofRoute(request.route, projection: engine.index.projection)
        } catch {
            throw IncidentError(error)
        }
        let stored = StoredMarch(route: request.route, configuration: request.configuration, status: Self.status(update))
        let rows = update.cameras.map(SelectionRow.init)
        let marchJSON = String(decoding: try Self.encode(stored), as: UTF8.self)
        let change = try await write { db in
            let head = update.headPosition.roundedToCentimetre()
            let id = try Self.insertIncident(
                kind: request.kind, title: request.title, exercise: request.exercise == true, draft: request.draft, details: request.details,
                geometry: [.real(head.lat), .real(head.lon), .real(request.configuration.fallbackRadiusMeters), .null,
                           // What a march may select from: its route's corridor.
                           .real(extent.radiusMeters), .real(extent.lengthMeters * request.configuration.corridorWidthMeters)],
                march: marchJSON, lead: agency, openedBy: user, at: now, in: db)
            try Self.replaceSelection(of: id, with: rows, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: 1, at: now, actor: agency, change: .opened, incident: try Self.incident(id, in: db),
                added: rows.map(\.selected), removed: [], events: update.events)
            try Self.journal(change, in: db)
            return change
        }
        trackers.withLock { $0[change.incidentId] = tracker }
        logger.info("march opened", metadata: [
            "incident.id": "\(change.incidentId)", "incident.cameras": "\(rows.count)", "agency": "\(agency)",
        ])
        return change
    }

    /// Moves a march's head and tail; the change carries only the cameras added, removed and relabelled.
    public func move(_ id: Int64, head: MarchPosition, tail: MarchPosition, by agency: String) async throws(IncidentError) -> IncidentChange {
        try await move(id, head: head, tail: tail, by: agency, recomputing: nil)
    }

    func move(_ id: Int64, head: MarchPosition, tail: MarchPosition, by agency: String, recomputing: Int64?) async throws(IncidentError) -> IncidentChange {
        let (incident, stored, _) = try await read { db in try Self.stored(id, in: db) }
        try Self.checkChangeable(incident, by: agency)
        guard let stored else {
            throw IncidentError(.incidentNotMarch, message: "incident \(id) has no route to move along", field: "incident")
        }
        let now = Date()
        var tracker: MarchTracker
        let update: MarchUpdate
        do throws(GeoError) {
            // After a restart the tracker is rebuilt from the stored route; its hysteresis timers start afresh.
            if let known = trackers.withLock({ $0[id] }) {
                tracker = known
            } else {
                tracker = try MarchTracker(index: engine.index, route: stored.route, roads: roads, configuration: stored.configuration)
            }
            update = try tracker.update(head: head, tail: tail, at: now)
        } catch {
            throw IncidentError(error)
        }
        var moved = stored
        moved.status = Self.status(update)
        let marchJSON = String(decoding: try Self.encode(moved), as: UTF8.self)
        let change = try await reselect(id, by: agency, change: .moved, rows: update.cameras.map(SelectionRow.init), events: update.events,
            recomputing: recomputing
        ) { db, _ in
            try db.query(
                "UPDATE incidents SET lat = ?, lon = ?, march = ? WHERE id = ?",
                [.real(update.headPosition.roundedToCentimetre().lat), .real(update.headPosition.roundedToCentimetre().lon), .text(marchJSON), .integer(id)])
        }
        trackers.withLock { $0[id] = tracker }
        return change
    }

    private static func status(_ update: MarchUpdate) -> MarchStatus {
        MarchStatus(
            headMeters: (update.headMeters * 10).rounded() / 10, tailMeters: (update.tailMeters * 10).rounded() / 10,
            routeLengthMeters: (update.routeLengthMeters * 10).rounded() / 10, onRoute: update.onRoute,
            headOffsetMeters: update.headOffsetMeters)
    }

    private static func encode(_ march: StoredMarch) throws(IncidentError) -> Data {
        do {
            return try JSONEncoder().encode(march)
        } catch {
            throw IncidentError(.marchInvalid, message: "the march cannot be stored: \(error)")
        }
    }
}

/// When a march's head passed a camera of its window: for replaying the cameras behind the
/// tail at the moment the head went by (brief, "Following a demonstration").
public struct HeadPassage: Sendable, Codable, Equatable {
    public var camera: String
    public var section: String
    /// The camera's (or its junction's) distance along the route.
    public var alongMeters: Double
    /// When the head reached that distance, interpolated between the journal's positions; nil
    /// while it has not reached it.
    public var at: Date?
    /// The head was already past the camera when the march was opened: `at` is the opening,
    /// the latest moment it can have passed.
    public var beforeOpening: Bool
}

extension IncidentService {
    /// The march's selected cameras (of `section`, or all) with the moment its head passed each,
    /// computed from the head positions its journal recorded.
    ///
    /// - Throws: ``IncidentError`` `incident_not_found`, `incident_not_march`.
    public func headPassages(_ id: Int64, section: String? = nil) async throws(IncidentError) -> [HeadPassage] {
        try await read { db in
            let (incident, stored, _) = try Self.stored(id, in: db)
            guard stored != nil else { throw IncidentError(.incidentNotMarch, message: "incident \(incident.id) is not a march", field: "incident") }
            // The head's distance along the route after each change, in order.
            let positions = try db.query("SELECT change FROM incident_journal WHERE incident_id = ? ORDER BY sequence", [.integer(id)]).compactMap { row in
                let change = try JSONDecoder().decode(IncidentChange.self, from: Data(try row.text("change").utf8))
                return change.incident.march.map { (at: change.at, head: $0.headMeters) }
            }
            let cameras = try db.query(
                "SELECT camera_id, section, along_m FROM incident_cameras WHERE incident_id = ? AND along_m IS NOT NULL ORDER BY along_m DESC, camera_id",
                [.integer(id)])
            return try cameras.compactMap { row -> HeadPassage? in
                let cameraSection = try row.optionalText("section") ?? ""
                if let section, cameraSection != section { return nil }
                let along = try row.real("along_m")
                var passage = HeadPassage(camera: try row.text("camera_id"), section: cameraSection, alongMeters: along, at: nil, beforeOpening: false)
                guard let reached = positions.firstIndex(where: { $0.head >= along }) else { return passage }
                if reached == 0 {
                    (passage.at, passage.beforeOpening) = (positions[0].at, true)
                } else {
                    let (before, after) = (positions[reached - 1], positions[reached])
                    let fraction = after.head > before.head ? (along - before.head) / (after.head - before.head) : 1
                    passage.at = before.at.addingTimeInterval(fraction * after.at.timeIntervalSince(before.at))
                }
                return passage
            }
        }
    }
}
