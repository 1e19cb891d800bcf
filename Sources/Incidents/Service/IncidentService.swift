import Foundation
import Geo
import Logging
import Synchronization

/// Where an incident is: a point and a radius, or a perimeter.
public enum IncidentArea: Sendable, Equatable {
    case circle(center: GeoPoint, radiusMeters: Double)
    /// A GeoJSON Polygon or MultiPolygon: the cameras inside it, and those whose view reaches into it.
    case perimeter(GeoJSONGeometry)
    /// The cameras whose field of view holds the point (a fire seen from across the square). It
    /// is stored as a GeoJSON Point in the incident's `area`, which snapshots carry.
    case seeing(GeoPoint)

    /// The area of an incident as stored: its `area` geometry (a Point for `seeing`), else its circle.
    public static func stored(area: GeoJSONGeometry?, center: GeoPoint, radiusMeters: Double) -> IncidentArea {
        guard let area else { return .circle(center: center, radiusMeters: radiusMeters) }
        return area.type == "Point" ? .seeing(center) : .perimeter(area)
    }
}

/// What an operator asks for when opening an incident.
public struct OpenIncidentRequest: Sendable {
    public var kind: IncidentKind
    public var area: IncidentArea
    public var title: String?
    public var exercise: Bool?
    public var details = IncidentDetails()
    /// Open it as a draft: its selection is prepared, but event-bound grants do not apply yet.
    public var draft = false

    public init(kind: IncidentKind, area: IncidentArea, title: String? = nil, exercise: Bool? = nil) {
        self.kind = kind
        self.area = area
        self.title = title
        self.exercise = exercise
    }

    public init(kind: IncidentKind, at: GeoPoint, radiusMeters: Double, title: String? = nil, exercise: Bool? = nil) {
        self.init(kind: kind, area: .circle(center: at, radiusMeters: radiusMeters), title: title, exercise: exercise)
    }
}

/// Opens, closes and reads incidents: validates, selects cameras with the geo engine, and
/// commits the incident, its selection and a journal entry in one transaction before it
/// returns the change to publish.
public final class IncidentService: Sendable {
    public static let maximumTitleLength = 200

    let database: Database
    let engine: CameraEngine
    let roads: RoadNetwork?
    let logger: Logger
    /// The march trackers of open march incidents, made on first use (also after a restart).
    let trackers = Mutex<[Int64: MarchTracker]>([:])

    /// - Parameter roads: the road network for the side streets of marches (nil: none).
    public init(database: Database, engine: CameraEngine, roads: RoadNetwork? = nil, logger: Logger) {
        self.database = database
        self.engine = engine
        self.roads = roads
        self.logger = logger
    }

    /// Opens an incident led by `agency`, selecting the cameras of its area.
    /// - Parameter user: the named user who opens it, if any (a grant's limits may ask for their role).
    public func open(_ request: OpenIncidentRequest, by agency: String, user: String? = nil) async throws(IncidentError) -> IncidentChange {
        try Self.checkTitle(request.title)
        let (rows, geometry) = try select(request.area)
        let now = Date()
        let change = try await write { db in
            let id = try Self.insertIncident(
                kind: request.kind, title: request.title, exercise: request.exercise == true, draft: request.draft, details: request.details,
                geometry: geometry, march: nil, lead: agency, openedBy: user, at: now, in: db)
            try Self.replaceSelection(of: id, with: rows, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: 1, at: now, actor: agency, change: .opened, incident: try Self.incident(id, in: db),
                added: rows.map(\.selected), removed: [])
            try Self.journal(change, in: db)
            return change
        }
        let selection = change.added
        logger.info("incident opened", metadata: [
            "incident.id": "\(change.incidentId)", "incident.kind": "\(request.kind.rawValue)",
            "incident.cameras": "\(selection.count)", "agency": "\(agency)",
        ])
        return change
    }

    /// Reloads the camera registry from the database and swaps in a new index; marches rebuild
    /// their windows on their next move. Queries are not blocked while the index builds.
    public func reloadRegistry() async throws -> Int {
        let cameras = try await database.run { db in try RegistryStore.cameras(in: db) }
        let index = try engine.replace(with: cameras)
        trackers.withLock { $0.removeAll() }
        Self.logRefusals(index.refused, logger: logger)
        logger.info("registry reloaded", metadata: ["registry.cameras": "\(index.cameras.count)"])
        return index.cameras.count
    }

    /// Says which cameras of the registry the index leaves out, and why (see ``CameraAdmission``).
    public static func logRefusals(_ refused: [CameraRefusal], logger: Logger) {
        for refusal in refused {
            logger.warning("camera left out of the index", metadata: [
                "camera": "\(refusal.camera)", "error.code": "\(refusal.problem.code)", "error": "\(refusal.problem.message)",
            ])
        }
    }

    static func checkTitle(_ title: String?) throws(IncidentError) {
        if let title, title.count > maximumTitleLength {
            throw IncidentError(.titleTooLong, message: "a title has at most \(maximumTitleLength) characters", field: "title")
        }
    }

    /// Inserts a new incident (sequence 1) after checking its details; returns its id.
    ///
    /// - Parameter geometry: the `lat, lon, radius_m, area, extent_radius_m, extent_area_m2` column values.
    static func insertIncident(
        kind: IncidentKind, title: String?, exercise: Bool, draft: Bool, details: IncidentDetails, geometry: [SQLValue], march: String?,
        lead: String, openedBy user: String?, at now: Date, in db: SQLiteConnection
    ) throws -> Int64 {
        try checkDetails(details, lead: lead, incident: nil, in: db)
        try db.query(
            """
            INSERT INTO incidents (kind, status, title, exercise, lat, lon, radius_m, area, extent_radius_m, extent_area_m2, march, lead_agency,
                                   opened_at, sequence, details, parent_id, opened_by_user)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
            """,
            [.text(kind.rawValue), .text((draft ? IncidentStatus.draft : .open).rawValue), title.map(SQLValue.text) ?? .null,
             .integer(exercise ? 1 : 0)] + geometry
                + [march.map(SQLValue.text) ?? .null, .text(lead), .text(timestamp(now)), .text(try encodeDetails(details)),
                   details.parent.map(SQLValue.integer) ?? .null, user.map(SQLValue.text) ?? .null])
        return try db.query("SELECT last_insert_rowid()").first!.integer(0)!
    }

    /// Redraws a point or perimeter incident (a new centre and radius, or a new perimeter); the
    /// change carries only the cameras added and removed.
    public func redraw(_ id: Int64, to area: IncidentArea, by agency: String) async throws(IncidentError) -> IncidentChange {
        try await redraw(id, to: area, by: agency, recomputing: nil)
    }

    func redraw(_ id: Int64, to area: IncidentArea, by agency: String, recomputing: Int64?) async throws(IncidentError) -> IncidentChange {
        let (rows, geometry) = try select(area)
        return try await reselect(id, by: agency, change: .redrawn, rows: rows, events: [], recomputing: recomputing) { db, incident in
            guard incident.march == nil else {
                throw IncidentError(.incidentIsMarch, message: "incident \(id) follows a route: move its head and tail instead", field: "incident")
            }
            try db.query(
                "UPDATE incidents SET lat = ?, lon = ?, radius_m = ?, area = ?, extent_radius_m = ?, extent_area_m2 = ? WHERE id = ?",
                geometry + [.integer(id)])
        }
    }

    /// The selection for an area, and the `lat, lon, radius_m, area, extent_radius_m, extent_area_m2`
    /// column values that store it.
    private func select(_ area: IncidentArea) throws(IncidentError) -> (rows: [SelectionRow], columns: [SQLValue]) {
        do throws(GeoError) {
            switch area {
            case .circle(let center, let radius):
                let rows = try engine.index.within(radiusMeters: radius, of: center).map(SelectionRow.init)
                return (rows, [.real(center.lat), .real(center.lon), .real(radius), .null, .real(radius), .real(Double.pi * radius * radius)])
            case .seeing(let point):
                let rows = try engine.index.seeing(point).map(SelectionRow.init)
                // Its extent, for owners' limits: the farthest camera that sees the point (at least 1 m).
                let radius = max(1, rows.map(\.selected.distanceMeters).max() ?? 1)
                let text = String(decoding: (try? JSONEncoder().encode(GeoJSONGeometry(type: "Point", coordinates: .position([point.lon, point.lat])))) ?? Data(), as: UTF8.self)
                return (rows, [.real(point.lat), .real(point.lon), .real(radius), .text(text), .real(radius), .real(Double.pi * radius * radius)])
            case .perimeter(let polygon):
                let rows = try engine.index.inArea(polygon).map(SelectionRow.init)
                let (center, radius) = try PerimeterExtent.of(polygon, projection: engine.index.projection)
                let surface = try PerimeterExtent.area(of: polygon, projection: engine.index.projection)
                let text = String(decoding: (try? JSONEncoder().encode(polygon)) ?? Data(), as: UTF8.self)
                return (rows, [.real(center.lat), .real(center.lon), .real(radius), .text(text), .real(radius), .real(surface)])
            }
        } catch {
            throw IncidentError(error)
        }
    }

    /// Replaces an open incident's selection, bumps its sequence and journals the difference from
    /// what was stored before (so the delta is right whatever happened in between, restarts included).
    ///
    /// - Parameter recomputing: for a recomputation of the incident as it stood at this sequence
    ///   (the registry changed): refuse (`nothing_changed`, nothing written) when the selection
    ///   stays the same, or when the incident has changed since, since that change was computed
    ///   against the current registry and its shape may differ from the one recomputed here.
    func reselect(
        _ id: Int64, by agency: String, change kind: IncidentChange.Kind, rows: [SelectionRow], events: [String], recomputing: Int64? = nil,
        update: @escaping @Sendable (SQLiteConnection, Incident) throws -> Void
    ) async throws(IncidentError) -> IncidentChange {
        let now = Date()
        return try await write { db in
            let incident = try Self.incident(id, in: db)
            try Self.checkChangeable(incident, by: agency)
            if let recomputing, incident.sequence != recomputing {
                throw IncidentError(.nothingChanged, message: "incident \(id) changed meanwhile, against the current registry")
            }
            try update(db, incident)
            let before = Dictionary(uniqueKeysWithValues: try db.query(
                "SELECT camera_id, section FROM incident_cameras WHERE incident_id = ?", [.integer(id)]
            ).map { (try $0.text("camera_id"), try $0.optionalText("section")) })
            try Self.replaceSelection(of: id, with: rows, in: db)
            try db.query("UPDATE incidents SET sequence = sequence + 1 WHERE id = ?", [.integer(id)])
            let after = rows.map(\.selected)
            let current = Set(after.map(\.id))
            let change = IncidentChange(
                incidentId: id, sequence: incident.sequence + 1, at: now, actor: agency, change: kind, incident: try Self.incident(id, in: db),
                added: after.filter { before[$0.id] == nil },
                removed: before.keys.filter { !current.contains($0) }.sorted(),
                relabelled: after.filter { camera in before[camera.id].map { $0 != camera.section } ?? false },
                events: events)
            if recomputing != nil && change.added.isEmpty && change.removed.isEmpty && change.relabelled.isEmpty {
                throw IncidentError(.nothingChanged, message: "incident \(id) keeps its selection")
            }
            try Self.journal(change, in: db)
            return change
        }
    }

    static func replaceSelection(of id: Int64, with rows: [SelectionRow], in db: SQLiteConnection) throws {
        try db.query("DELETE FROM incident_cameras WHERE incident_id = ?", [.integer(id)])
        for row in rows {
            try db.query(
                "INSERT INTO incident_cameras (incident_id, camera_id, distance_m, reason, section, along_m) VALUES (?, ?, ?, ?, ?, ?)",
                [.integer(id), .text(row.camera.id), .real(row.distanceMeters), .text(row.reason),
                 row.section.map(SQLValue.text) ?? .null, row.alongMeters.map(SQLValue.real) ?? .null])
        }
    }

    /// Closes an open or held incident; its selection is released (the change lists every camera as removed).
    public func close(_ id: Int64, by agency: String) async throws(IncidentError) -> IncidentChange {
        try await update(id, IncidentUpdate(status: .closed), by: agency)
    }

    /// The incident's current state and selection, ranked as selected (nearest first).
    public func snapshot(_ id: Int64) async throws(IncidentError) -> IncidentSnapshot {
        try await read { db in
            let (incident, march, area) = try Self.stored(id, in: db)
            let cameras = try db.query(
                """
                SELECT c.id, c.owner, c.kind, c.place_type, c.lat, c.lon, c.confidentiality, s.distance_m, s.reason, s.section, s.along_m
                FROM incident_cameras s JOIN cameras c ON c.id = s.camera_id
                WHERE s.incident_id = ?
                """, [.integer(id)]
            ).map { row in
                SelectedCamera(
                    id: try row.text("id"), owner: try row.text("owner"), kind: CameraKind(rawValue: try row.text("kind")) ?? .street, placeType: try row.text("place_type"),
                    position: try GeoPoint(lat: try row.real("lat"), lon: try row.real("lon")),
                    confidentiality: LocationConfidentiality(rawValue: try row.text("confidentiality")) ?? .confidential,
                    distanceMeters: try row.real("distance_m"), reason: try row.text("reason"), section: try row.optionalText("section"), alongMeters: try row.optionalReal("along_m"))
            }
            let children = try db.query("SELECT id FROM incidents WHERE parent_id = ? ORDER BY id", [.integer(id)]).map { $0.integer(0)! }
            return IncidentSnapshot(incident: incident, cameras: Self.ranked(cameras), route: march?.route, area: area, children: children)
        }
    }

    /// An incident as stored, without its selection.
    public func incident(_ id: Int64) async throws(IncidentError) -> Incident {
        try await read { db in try Self.incident(id, in: db) }
    }

    /// The incidents that hold a selection (draft, open, on hold).
    public func liveIncidents() async throws(IncidentError) -> [Incident] {
        try await read { db in
            try db.query("SELECT id FROM incidents WHERE status IN ('draft', 'open', 'on-hold') ORDER BY id").map { try Self.incident($0.integer(0)!, in: db) }
        }
    }

    /// Selection order: march cameras by section, in the tracker's order within it (ahead nearest
    /// the head first, then from the head back); others nearest first; ties by id.
    static func ranked(_ cameras: [SelectedCamera]) -> [SelectedCamera] {
        func key(_ camera: SelectedCamera) -> (Int, Double) {
            guard let name = camera.section, let section = MarchSection(rawValue: name) else { return (0, camera.distanceMeters) }
            let order = MarchSection.allCases.firstIndex(of: section)!
            switch section {
            case .ahead: return (order, camera.alongMeters ?? 0)
            case .occupied, .behind, .sideStreet: return (order, -(camera.alongMeters ?? 0))
            case .arrival, .fallback: return (order, camera.distanceMeters)
            }
        }
        return cameras.sorted { a, b in
            let keyA = key(a), keyB = key(b)
            return keyA != keyB ? keyA < keyB : a.id < b.id
        }
    }

    // MARK: Storage helpers

    func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws(IncidentError) -> T {
        try await read { db in try db.transaction { try body(db) } }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws(IncidentError) -> T {
        do {
            return try await database.run(body)
        } catch let error as IncidentError {
            throw error
        } catch let error as GeoError {
            throw IncidentError(error)
        } catch {
            logger.error("storage failure", metadata: ["error": "\(error)"])
            throw IncidentError(.storageFailure, message: "the change could not be stored: \(error)")
        }
    }

    static func incident(_ id: Int64, in db: SQLiteConnection) throws -> Incident {
        try stored(id, in: db).incident
    }

    /// An incident's row, read once: the incident, its march (route, settings, position) and its perimeter.
    static func stored(_ id: Int64, in db: SQLiteConnection) throws -> (incident: Incident, march: StoredMarch?, area: GeoJSONGeometry?) {
        guard let row = try db.query(
            """
            SELECT id, kind, status, title, exercise, lat, lon, radius_m, lead_agency, opened_at, closed_at, sequence, march, area, details
            FROM incidents WHERE id = ?
            """, [.integer(id)]
        ).first else { throw IncidentError.notFound(id) }
        let march = try try row.optionalText("march").map { try JSONDecoder().decode(StoredMarch.self, from: Data($0.utf8)) }
        let area = try try row.optionalText("area").map { try JSONDecoder().decode(GeoJSONGeometry.self, from: Data($0.utf8)) }
        let details = try JSONDecoder().decode(IncidentDetails.self, from: Data((try row.optionalText("details") ?? "{}").utf8))
        let incident = Incident(
            id: try row.integer("id"), kind: IncidentKind(rawValue: try row.text("kind")) ?? .other,
            status: IncidentStatus(rawValue: try row.text("status")) ?? .closed, title: try row.optionalText("title"), exercise: try row.optionalInteger("exercise") == 1,
            center: try GeoPoint(lat: try row.real("lat"), lon: try row.real("lon")), radiusMeters: try row.real("radius_m"), leadAgency: try row.text("lead_agency"),
            details: details, openedAt: date(try row.text("opened_at")), closedAt: try row.optionalText("closed_at").map(date), sequence: try row.integer("sequence"),
            march: march.map { stored in
                var status = stored.status
                status.settings = stored.configuration
                return status
            })
        return (incident, march, area)
    }

    /// Journals a change and audits it, in the caller's transaction: both or neither are stored.
    static func journal(_ change: IncidentChange, in db: SQLiteConnection) throws {
        let encoded = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try db.query(
            "INSERT INTO incident_journal (incident_id, sequence, at, actor, change) VALUES (?, ?, ?, ?, ?)",
            [.integer(change.incidentId), .integer(change.sequence), .text(timestamp(change.at)), .text(change.actor), .text(encoded)])
        var details = ["sequence": "\(change.sequence)", "added": "\(change.added.count)", "removed": "\(change.removed.count)"]
        if !change.events.isEmpty { details["events"] = change.events.joined(separator: ",") }
        if !change.fields.isEmpty {
            details["fields"] = change.fields.joined(separator: ",")
            details["status"] = change.incident.status.rawValue
        }
        try AuditLog.append(
            AuditRecord(
                action: "incident.\(change.change.rawValue)", at: change.at, agency: change.actor,
                cameras: (change.added.map(\.id) + change.removed).sorted(), incident: change.incidentId, details: details),
            in: db)
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func date(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
            ?? Date(timeIntervalSince1970: 0)
    }
}
