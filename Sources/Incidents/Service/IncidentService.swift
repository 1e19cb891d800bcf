import Foundation
import Geo
import Logging
import Synchronization

/// What an operator asks for when opening an incident.
public struct OpenIncidentRequest: Sendable, Codable {
    public var kind: IncidentKind
    public var at: GeoPoint
    public var radiusMeters: Double
    public var title: String?
    public var exercise: Bool?

    public init(kind: IncidentKind, at: GeoPoint, radiusMeters: Double, title: String? = nil, exercise: Bool? = nil) {
        self.kind = kind
        self.at = at
        self.radiusMeters = radiusMeters
        self.title = title
        self.exercise = exercise
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

    /// Opens an incident led by `agency`, selecting the cameras within its radius.
    public func open(_ request: OpenIncidentRequest, by agency: String) async throws(IncidentError) -> IncidentChange {
        try Self.checkTitle(request.title)
        let matches: [CameraMatch]
        do {
            matches = try engine.index.within(radiusMeters: request.radiusMeters, of: request.at)
        } catch {
            throw IncidentError(error)
        }
        let selection = matches.map(SelectedCamera.init)
        let now = Date()
        let change = try await write { db in
            try db.query(
                """
                INSERT INTO incidents (kind, status, title, exercise, lat, lon, radius_m, lead_agency, opened_at, sequence)
                VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, 1)
                """,
                [.text(request.kind.rawValue), request.title.map(SQLValue.text) ?? .null, .integer(request.exercise == true ? 1 : 0),
                 .real(request.at.lat), .real(request.at.lon), .real(request.radiusMeters), .text(agency), .text(Self.timestamp(now))])
            let id = try db.query("SELECT last_insert_rowid()").first!.integer(0)!
            for match in matches {
                try db.query(
                    "INSERT INTO incident_cameras (incident_id, camera_id, distance_m, reason) VALUES (?, ?, ?, ?)",
                    [.integer(id), .text(match.camera.id), .real(match.distanceMeters), .text(match.reason)])
            }
            let incident = try Self.incident(id, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: 1, at: now, actor: agency, change: .opened, incident: incident, added: selection, removed: [])
            try Self.journal(change, in: db)
            return change
        }
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
        try engine.replace(with: cameras)
        trackers.withLock { $0.removeAll() }
        logger.info("registry reloaded", metadata: ["registry.cameras": "\(cameras.count)"])
        return cameras.count
    }

    static func checkTitle(_ title: String?) throws(IncidentError) {
        if let title, title.count > maximumTitleLength {
            throw IncidentError(code: "title_too_long", message: "a title has at most \(maximumTitleLength) characters", field: "title")
        }
    }

    /// Closes an open incident; its selection is released (the change lists every camera as removed).
    public func close(_ id: Int64, by agency: String) async throws(IncidentError) -> IncidentChange {
        let now = Date()
        let change = try await write { db in
            let incident = try Self.incident(id, in: db)
            guard incident.status == .open else {
                throw IncidentError(code: "incident_closed", message: "incident \(id) is already closed", field: "incident")
            }
            let removed = try db.query("SELECT camera_id FROM incident_cameras WHERE incident_id = ? ORDER BY camera_id", [.integer(id)])
                .map { $0.text(0)! }
            try db.query("DELETE FROM incident_cameras WHERE incident_id = ?", [.integer(id)])
            try db.query(
                "UPDATE incidents SET status = 'closed', closed_at = ?, sequence = sequence + 1 WHERE id = ?",
                [.text(Self.timestamp(now)), .integer(id)])
            let closed = try Self.incident(id, in: db)
            let change = IncidentChange(
                incidentId: id, sequence: closed.sequence, at: now, actor: agency, change: .closed, incident: closed,
                added: [], removed: removed)
            try Self.journal(change, in: db)
            return change
        }
        trackers.withLock { $0[id] = nil }
        logger.info("incident closed", metadata: ["incident.id": "\(id)", "agency": "\(agency)"])
        return change
    }

    /// The incident's current state and selection, ranked as selected (nearest first).
    public func snapshot(_ id: Int64) async throws(IncidentError) -> IncidentSnapshot {
        try await read { db in
            let incident = try Self.incident(id, in: db)
            let cameras = try db.query(
                """
                SELECT c.id, c.owner, c.kind, c.place_type, c.lat, c.lon, c.confidentiality, s.distance_m, s.reason, s.section, s.along_m
                FROM incident_cameras s JOIN cameras c ON c.id = s.camera_id
                WHERE s.incident_id = ?
                """, [.integer(id)]
            ).map { row in
                SelectedCamera(
                    id: row.text(0)!, owner: row.text(1)!, kind: CameraKind(rawValue: row.text(2)!) ?? .street, placeType: row.text(3)!,
                    position: try GeoPoint(lat: row.real(4)!, lon: row.real(5)!),
                    confidentiality: LocationConfidentiality(rawValue: row.text(6)!) ?? .confidential,
                    distanceMeters: row.real(7)!, reason: row.text(8)!, section: row.text(9), alongMeters: row.real(10))
            }
            let march = try Self.storedMarch(id, in: db)
            return IncidentSnapshot(incident: incident, cameras: Self.ranked(cameras), route: march?.route)
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
            throw IncidentError(code: "storage_failure", message: "the change could not be stored: \(error)")
        }
    }

    static func incident(_ id: Int64, in db: SQLiteConnection) throws -> Incident {
        guard let row = try db.query(
            """
            SELECT id, kind, status, title, exercise, lat, lon, radius_m, lead_agency, opened_at, closed_at, sequence
            FROM incidents WHERE id = ?
            """, [.integer(id)]
        ).first else { throw IncidentError.notFound(id) }
        let march = try storedMarch(id, in: db)
        return Incident(
            id: row.integer(0)!, kind: IncidentKind(rawValue: row.text(1)!) ?? .other,
            status: IncidentStatus(rawValue: row.text(2)!) ?? .closed, title: row.text(3), exercise: row.integer(4) == 1,
            center: try GeoPoint(lat: row.real(5)!, lon: row.real(6)!), radiusMeters: row.real(7)!, leadAgency: row.text(8)!,
            openedAt: date(row.text(9)!), closedAt: row.text(10).map(date), sequence: row.integer(11)!, march: march?.status)
    }

    static func storedMarch(_ id: Int64, in db: SQLiteConnection) throws -> StoredMarch? {
        guard let text = try db.query("SELECT march FROM incidents WHERE id = ?", [.integer(id)]).first?.text(0) else { return nil }
        return try JSONDecoder().decode(StoredMarch.self, from: Data(text.utf8))
    }

    static func journal(_ change: IncidentChange, in db: SQLiteConnection) throws {
        let encoded = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        try db.query(
            "INSERT INTO incident_journal (incident_id, sequence, at, actor, change) VALUES (?, ?, ?, ?, ?)",
            [.integer(change.incidentId), .integer(change.sequence), .text(timestamp(change.at)), .text(change.actor), .text(encoded)])
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func date(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
            ?? Date(timeIntervalSince1970: 0)
    }
}
