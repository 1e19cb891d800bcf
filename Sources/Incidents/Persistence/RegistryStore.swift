import Foundation
import Geo

/// Reads and loads the camera registry, owners and agencies.
public struct RegistryStore: Sendable {
    public let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Whether the database has no camera yet (retired ones count: it has been loaded).
    public func isEmpty() throws -> Bool {
        try database.runSync { db in try db.query("SELECT COUNT(*) FROM cameras").first?.integer(0) == 0 }
    }

    /// Loads the registry into an empty database, in one transaction; a database that
    /// already has cameras is left untouched. Returns whether it loaded.
    public func loadIfEmpty(cameras: [Camera], fixture: RegistryFixture) throws -> Bool {
        try database.runSync { db in
            guard try db.query("SELECT COUNT(*) FROM cameras").first?.integer(0) == 0 else { return false }
            try db.transaction {
                for owner in fixture.owners {
                    try db.query(
                        "INSERT INTO owners (id, name, country, regime, retention_days) VALUES (?, ?, ?, ?, ?)",
                        [.text(owner.id), .text(owner.name), .text(owner.country), .text(owner.regime), .integer(Int64(owner.retentionDays))])
                }
                for agency in fixture.agencies {
                    try db.query(
                        "INSERT INTO agencies (id, name, kind, region) VALUES (?, ?, ?, ?)",
                        [.text(agency.id), .text(agency.name), .text(agency.kind), .text(agency.region)])
                }
                for camera in cameras { try Self.insert(camera, into: db) }
            }
            return true
        }
    }

    /// Adds cameras to the registry, all or nothing: when any camera's id already exists or its
    /// owner is unknown, nothing is stored and every such problem is returned, with `field(index)`.
    public func importCameras(_ cameras: [Camera], field: @escaping @Sendable (Int) -> String) throws -> [GeoError] {
        try database.runSync { db in
            let owners = Set(try db.query("SELECT id FROM owners").compactMap { $0.text(0) })
            let existing = Set(try db.query("SELECT id FROM cameras").compactMap { $0.text(0) })
            var problems: [GeoError] = []
            for (index, camera) in cameras.enumerated() {
                if existing.contains(camera.id) {
                    problems.append(GeoError(.cameraExists, message: "camera \(camera.id) is already registered", field: field(index)))
                }
                if !owners.contains(camera.owner) {
                    problems.append(GeoError(.ownerUnknown, message: "no owner '\(camera.owner)'", field: field(index)))
                }
            }
            guard problems.isEmpty else { return problems }
            try db.transaction {
                for camera in cameras { try Self.insert(camera, into: db) }
            }
            return []
        }
    }

    /// Replaces cameras of `owner` with new versions (same ids), all or nothing, and audits one
    /// `camera.updated` per camera naming the fields that changed. The owner of a camera cannot
    /// change: a camera that changes hands is retired by one owner and imported by the other.
    ///
    /// - Throws: ``IncidentError`` `camera_unknown` (no such camera, or retired), `not_owner`
    ///   (the camera is another owner's, or would become another's).
    public func update(_ cameras: [Camera], owner: String, by actor: String, user: String?) async throws {
        try await database.run { db in
            var changes: [(Camera, [String])] = []
            for (index, camera) in cameras.enumerated() {
                guard let current = try Self.camera(camera.id, in: db) else {
                    throw IncidentError(.cameraUnknown, message: "no camera \(camera.id) in the registry", field: "body.features[\(index)]")
                }
                guard current.owner == owner, camera.owner == owner else {
                    throw IncidentError(.notOwner, message: "\(owner) edits its own cameras only", field: "body.features[\(index)].owner")
                }
                changes.append((camera, Self.changedFields(from: current, to: camera)))
            }
            try db.transaction {
                for (camera, fields) in changes where !fields.isEmpty {
                    try Self.insert(camera, into: db, replacing: true)
                    try AuditLog.append(AuditRecord(
                        action: "camera.updated", agency: actor, user: user, cameras: [camera.id], details: ["fields": fields.joined(separator: ",")]), in: db)
                }
            }
        }
    }

    /// Retires cameras of `owner`: they leave every selection and decision at once, their rows
    /// stay (the audit log and past incidents name them), and their ids cannot be imported again.
    /// Audited `camera.retired` with `reason`.
    ///
    /// - Throws: ``IncidentError`` `camera_unknown`, `not_owner`.
    public func retire(_ ids: [String], owner: String, reason: String, by actor: String, user: String?, at now: Date = Date()) async throws {
        try await database.run { db in
            for (index, id) in ids.enumerated() {
                guard let current = try Self.camera(id, in: db) else {
                    throw IncidentError(.cameraUnknown, message: "no camera \(id) in the registry", field: "body.cameras[\(index)]")
                }
                guard current.owner == owner else {
                    throw IncidentError(.notOwner, message: "\(owner) retires its own cameras only", field: "body.cameras[\(index)]")
                }
            }
            try db.transaction {
                for id in ids {
                    try db.query("UPDATE cameras SET retired_at = ? WHERE id = ?", [.text(IncidentService.timestamp(now)), .text(id)])
                }
                try AuditLog.append(AuditRecord(action: "camera.retired", agency: actor, user: user, cameras: ids, reason: reason), in: db)
            }
        }
    }

    /// The registry fields that differ between two versions of a camera.
    static func changedFields(from old: Camera, to new: Camera) -> [String] {
        var fields: [String] = []
        if old.kind != new.kind { fields.append("kind") }
        if old.placeType != new.placeType { fields.append("place_type") }
        if old.position != new.position { fields.append("position") }
        if old.headingDegrees != new.headingDegrees { fields.append("heading_deg") }
        if old.fieldOfViewDegrees != new.fieldOfViewDegrees { fields.append("fov_deg") }
        if old.rangeMeters != new.rangeMeters { fields.append("range_m") }
        if old.stream != new.stream { fields.append("stream") }
        if old.confidentiality != new.confidentiality { fields.append("confidentiality") }
        if old.tags != new.tags { fields.append("tags") }
        if old.privacyMasks != new.privacyMasks { fields.append("privacy_masks") }
        return fields
    }

    /// Stores a new camera, or with `replacing`, every field of an existing one (an update in
    /// place: the rows that refer to the camera stay valid).
    private static func insert(_ camera: Camera, into db: SQLiteConnection, replacing: Bool = false) throws {
        let tags = String(decoding: try JSONEncoder().encode(camera.tags), as: UTF8.self)
        let masks = String(decoding: try JSONEncoder().encode(camera.privacyMasks), as: UTF8.self)
        try db.query(
            """
            INSERT INTO cameras (id, owner, kind, place_type, lat, lon, heading_deg, fov_deg, range_m,
                                 stream, confidentiality, tags, privacy_masks)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            \(replacing ? """
                ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, place_type = excluded.place_type, lat = excluded.lat,
                lon = excluded.lon, heading_deg = excluded.heading_deg, fov_deg = excluded.fov_deg, range_m = excluded.range_m,
                stream = excluded.stream, confidentiality = excluded.confidentiality, tags = excluded.tags,
                privacy_masks = excluded.privacy_masks
                """ : "")
            """,
            [.text(camera.id), .text(camera.owner), .text(camera.kind.rawValue), .text(camera.placeType),
             .real(camera.position.lat), .real(camera.position.lon),
             camera.headingDegrees.map(SQLValue.real) ?? .null, camera.fieldOfViewDegrees.map(SQLValue.real) ?? .null,
             .real(camera.rangeMeters), .text(camera.stream), .text(camera.confidentiality.rawValue), .text(tags), .text(masks)])
    }

    /// Every camera of the registry (retired ones are kept as rows, for the audit log and the
    /// incidents that named them, but are not cameras any more), ordered by id.
    public func cameras() throws -> [Camera] {
        try database.runSync { db in try Self.cameras(in: db) }
    }

    static func cameras(in db: SQLiteConnection) throws -> [Camera] {
        try cameras(in: db, where: "1", [])
    }

    /// The cameras with these ids (those that exist), in one query.
    static func cameras(_ ids: [String], in db: SQLiteConnection) throws -> [Camera] {
        guard !ids.isEmpty else { return [] }
        return try cameras(in: db, where: "id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))", ids.map(SQLValue.text))
    }

    /// One camera by id (a primary-key lookup), or nil.
    static func camera(_ id: String, in db: SQLiteConnection) throws -> Camera? {
        try cameras(in: db, where: "id = ?", [.text(id)]).first
    }

    private static func cameras(in db: SQLiteConnection, where condition: String, _ arguments: [SQLValue]) throws -> [Camera] {
        try db.query(
            """
            SELECT id, owner, kind, place_type, lat, lon, heading_deg, fov_deg, range_m, stream, confidentiality, tags, privacy_masks
            FROM cameras WHERE retired_at IS NULL AND (\(condition)) ORDER BY id
            """, arguments
        ).map { row in
            let tags = try JSONDecoder().decode([String].self, from: Data((try row.optionalText("tags") ?? "[]").utf8))
            return Camera(
                id: try row.text("id"), owner: try row.text("owner"), kind: CameraKind(rawValue: try row.text("kind")) ?? .street,
                placeType: try row.text("place_type"), position: try GeoPoint(lat: try row.real("lat"), lon: try row.real("lon")),
                headingDegrees: try row.optionalReal("heading_deg"), fieldOfViewDegrees: try row.optionalReal("fov_deg"), rangeMeters: try row.real("range_m"),
                stream: try row.text("stream"), confidentiality: LocationConfidentiality(rawValue: try row.text("confidentiality")) ?? .confidential,
                tags: tags, privacyMasks: try JSONDecoder().decode([PrivacyMask].self, from: Data((try row.optionalText("privacy_masks") ?? "[]").utf8)))
        }
    }

    /// The ids of every camera owner, ordered.
    public func ownerIDs() throws -> [String] {
        try database.runSync { db in try db.query("SELECT id FROM owners ORDER BY id").compactMap { $0.text(0) } }
    }

    /// Every agency, ordered by id.
    public func agencies() throws -> [Agency] {
        try database.runSync { db in
            try db.query("SELECT id, name, kind, region FROM agencies ORDER BY id").map { row in
                Agency(id: try row.text("id"), name: try row.text("name"), kind: try row.text("kind"), region: try row.text("region"))
            }
        }
    }
}
