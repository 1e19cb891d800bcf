import Foundation

/// What a commander asks to preserve: cameras × a footage time range, for an incident, under a legal reference.
public struct HoldRequest: Sendable, Codable, Equatable {
    public static let maximumCameras = 1000

    public var incident: Int64
    public var cameras: [String]
    public var footageFrom: Date
    public var footageTo: Date
    /// The legal basis of the hold (a prosecutor's or judge's reference, a police report number).
    public var legalReference: String
    /// When the hold ends by itself; nil: until released.
    public var expiresAt: Date?

    public init(incident: Int64, cameras: [String], footageFrom: Date, footageTo: Date, legalReference: String, expiresAt: Date? = nil) {
        self.incident = incident
        self.cameras = cameras
        self.footageFrom = footageFrom
        self.footageTo = footageTo
        self.legalReference = legalReference
        self.expiresAt = expiresAt
    }
}

/// A request to one owner to preserve footage before its recorder overwrites it, published on
/// the owner's channel with a per-owner sequence number.
public struct PreservationRequest: Sendable, Codable, Equatable {
    public var owner: String
    public var sequence: Int64
    public var hold: Int64
    public var incident: Int64
    public var cameras: [String]
    public var footageFrom: Date
    public var footageTo: Date
    /// When the oldest footage asked for would be overwritten under the owner's retention.
    public var deadline: Date
    /// The deadline had already passed when the hold was made: some footage may be gone.
    public var footageMayBeLost: Bool
    public var legalReference: String
    public var requestedBy: String
}

/// An evidence hold: it overrides retention for its cameras and time range until released or expired.
public struct EvidenceHold: Sendable, Codable, Equatable {
    public var id: Int64
    public var incident: Int64
    public var cameras: [String]
    public var footageFrom: Date
    public var footageTo: Date
    public var legalReference: String
    public var requestedBy: String
    public var requestedUser: String?
    public var createdAt: Date
    public var expiresAt: Date?
    public var releasedAt: Date?
    public var preservationRequests: [PreservationRequest]
}

/// Evidence holds and the preservation requests they send (brief requirement 9).
public final class EvidenceHolds: Sendable {
    private let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Places a hold and sends one preservation request per owner concerned, each with that
    /// owner's deadline; everything is audited in the same transaction.
    ///
    /// - Throws: ``IncidentError`` `hold_invalid`, `camera_unknown`, `incident_not_found`,
    ///   `not_incident_agency` (only the lead and participating agencies place holds).
    public func create(_ hold: HoldRequest, agency: String, user: String?, at now: Date = Date()) async throws -> EvidenceHold {
        let cameras = Array(Set(hold.cameras)).sorted()
        guard (1...HoldRequest.maximumCameras).contains(cameras.count) else {
            throw IncidentError(.holdInvalid, message: "a hold names 1 to \(HoldRequest.maximumCameras) cameras", field: "cameras")
        }
        guard hold.footageFrom < hold.footageTo, hold.footageFrom <= now else {
            throw IncidentError(.holdInvalid, message: "footage_from must be before footage_to and not in the future", field: "footage_from")
        }
        guard !hold.legalReference.trimmingCharacters(in: .whitespaces).isEmpty, hold.legalReference.count <= 200 else {
            throw IncidentError(.holdInvalid, message: "a hold needs a legal reference of at most 200 characters", field: "legal_reference")
        }
        if let expiry = hold.expiresAt, expiry <= now {
            throw IncidentError(.holdInvalid, message: "expires_at must be in the future", field: "expires_at")
        }
        return try await database.run { db in
            let incident = try IncidentService.incident(hold.incident, in: db)
            guard incident.leadAgency == agency || incident.details.participants.contains(agency) else {
                throw IncidentError(.notIncidentAgency, message: "\(agency) does not take part in incident \(incident.id)", field: "incident")
            }
            var byOwner: [String: [String]] = [:]
            for camera in cameras {
                guard let owner = try db.query("SELECT owner FROM cameras WHERE id = ?", [.text(camera)]).first?.text(0) else {
                    throw IncidentError(.cameraUnknown, message: "no camera \(camera)", field: "cameras")
                }
                byOwner[owner, default: []].append(camera)
            }
            return try db.transaction {
                try db.query(
                    """
                    INSERT INTO evidence_holds (incident_id, footage_from, footage_to, legal_reference, requested_by, requested_user, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.integer(hold.incident), .text(IncidentService.timestamp(hold.footageFrom)), .text(IncidentService.timestamp(hold.footageTo)),
                     .text(hold.legalReference), .text(agency), user.map(SQLValue.text) ?? .null, .text(IncidentService.timestamp(now)),
                     hold.expiresAt.map { .text(IncidentService.timestamp($0)) } ?? .null])
                let id = try db.query("SELECT last_insert_rowid()").first!.integer(0)!
                for camera in cameras {
                    try db.query("INSERT INTO hold_cameras (hold_id, camera_id) VALUES (?, ?)", [.integer(id), .text(camera)])
                }
                try AuditLog.append(AuditRecord(
                    action: "hold.created", at: now, agency: agency, user: user, cameras: cameras,
                    footageFrom: AuditLog.timestamp(hold.footageFrom), footageTo: AuditLog.timestamp(hold.footageTo),
                    reason: hold.legalReference, incident: hold.incident, details: ["hold": "\(id)"]), in: db)
                for (owner, ownerCameras) in byOwner.sorted(by: { $0.key < $1.key }) {
                    let row = try db.query("SELECT regime, retention_days FROM owners WHERE id = ?", [.text(owner)]).first!
                    let retention = RetentionPolicy(regime: try row.text("regime"), declaredDays: Int(try row.integer("retention_days")))
                    let overwrite = retention.deletion(of: hold.footageFrom)
                    let sequence = try OwnerChannel.nextSequence(for: owner, in: db)
                    try db.query(
                        "INSERT INTO preservation_requests (owner, sequence, hold_id, cameras, deadline, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        [.text(owner), .integer(sequence), .integer(id), .text(String(decoding: try JSONEncoder().encode(ownerCameras), as: UTF8.self)),
                         .text(IncidentService.timestamp(max(overwrite, now))), .text(IncidentService.timestamp(now))])
                    try AuditLog.append(AuditRecord(
                        action: "preservation.requested", at: now, agency: agency, user: user, cameras: ownerCameras,
                        footageFrom: AuditLog.timestamp(hold.footageFrom), footageTo: AuditLog.timestamp(hold.footageTo),
                        reason: hold.legalReference, recipient: owner, incident: hold.incident,
                        details: ["hold": "\(id)", "deadline": IncidentService.timestamp(max(overwrite, now))]), in: db)
                }
                return try Self.hold(id, in: db)
            }
        }
    }

    /// How many holds are in force now (neither released nor expired).
    public func activeCount(at now: Date = Date()) async throws -> Int {
        try await database.read { db in
            Int(try db.query(
                "SELECT COUNT(*) FROM evidence_holds WHERE released_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                [.text(IncidentService.timestamp(now))]
            ).first?.integer(0) ?? 0)
        }
    }

    /// The hold `id`.
    ///
    /// - Throws: ``IncidentError`` `hold_not_found`.
    public func hold(_ id: Int64) async throws -> EvidenceHold {
        try await database.read { db in try Self.hold(id, in: db) }
    }

    /// The holds of an incident (every incident's when nil) that `agency` placed, or that cover its cameras.
    public func holds(for agency: String, incident: Int64? = nil) async throws -> [EvidenceHold] {
        try await database.run { db in
            try db.query(
                """
                SELECT DISTINCT h.id FROM evidence_holds h
                LEFT JOIN hold_cameras hc ON hc.hold_id = h.id LEFT JOIN cameras c ON c.id = hc.camera_id
                WHERE (h.requested_by = ?1 OR c.owner = ?1) AND (?2 IS NULL OR h.incident_id = ?2)
                ORDER BY h.id
                """, [.text(agency), incident.map(SQLValue.integer) ?? .null]
            ).map { try Self.hold($0.integer(0)!, in: db) }
        }
    }

    /// Releases a hold (from then on retention applies again) and audits it; only the agency that placed it may.
    public func release(_ id: Int64, agency: String, user: String?, reason: String) async throws -> EvidenceHold {
        try await database.run { db in
            guard let row = try db.query("SELECT requested_by, released_at, incident_id FROM evidence_holds WHERE id = ?", [.integer(id)]).first else {
                throw IncidentError(.holdNotFound, message: "there is no hold \(id)", field: "hold")
            }
            guard try row.optionalText("requested_by") == agency else {
                throw IncidentError(.notHoldAgency, message: "only \(try row.optionalText("requested_by") ?? "its agency") may release hold \(id)", field: "hold")
            }
            guard try row.optionalText("released_at") == nil else { throw IncidentError(.holdReleased, message: "hold \(id) is already released", field: "hold") }
            let now = Date()
            return try db.transaction {
                try db.query("UPDATE evidence_holds SET released_at = ?, released_by = ? WHERE id = ?",
                             [.text(IncidentService.timestamp(now)), .text(user ?? agency), .integer(id)])
                try AuditLog.append(AuditRecord(
                    action: "hold.released", at: now, agency: agency, user: user, reason: reason, incident: try row.optionalInteger("incident_id"),
                    details: ["hold": "\(id)"]), in: db)
                return try Self.hold(id, in: db)
            }
        }
    }

    /// Records in the audit log each hold that has expired by `now` (from then on retention applies
    /// again) and was not recorded yet; returns their ids.
    public func auditExpiries(at now: Date = Date()) async throws -> [Int64] {
        try await database.run { db in
            try db.transaction {
                let expired = try db.query(
                    """
                    SELECT id, requested_by, incident_id, expires_at FROM evidence_holds
                    WHERE released_at IS NULL AND expiry_audited_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id
                    """, [.text(IncidentService.timestamp(now))])
                for row in expired {
                    try db.query("UPDATE evidence_holds SET expiry_audited_at = ? WHERE id = ?", [.text(IncidentService.timestamp(now)), .integer(try row.integer("id"))])
                    try AuditLog.append(AuditRecord(
                        action: "hold.expired", at: now, agency: try row.optionalText("requested_by"), incident: try row.optionalInteger("incident_id"),
                        details: ["hold": "\(try row.integer("id"))", "expires_at": try row.text("expires_at")]), in: db)
                }
                return try expired.map { try $0.integer("id") }
            }
        }
    }

    /// Whether an active hold (not released, not expired at `now`) covers `camera`'s footage at `footage`.
    static func isHeld(camera: String, at footage: Date, now: Date, in db: SQLiteConnection) throws -> Bool {
        let time = IncidentService.timestamp(footage)
        return try !db.query(
            """
            SELECT 1 FROM hold_cameras hc JOIN evidence_holds h ON h.id = hc.hold_id
            WHERE hc.camera_id = ? AND h.released_at IS NULL AND (h.expires_at IS NULL OR h.expires_at > ?)
              AND h.footage_from <= ? AND h.footage_to >= ?
            LIMIT 1
            """, [.text(camera), .text(IncidentService.timestamp(now)), .text(time), .text(time)]
        ).isEmpty
    }

    static func hold(_ id: Int64, in db: SQLiteConnection) throws -> EvidenceHold {
        let found = try db.query(
            """
            SELECT id, incident_id, footage_from, footage_to, legal_reference, requested_by, requested_user, created_at, expires_at, released_at
            FROM evidence_holds WHERE id = ?
            """, [.integer(id)]
        ).first
        guard let row = found else { throw IncidentError(.holdNotFound, message: "there is no hold \(id)", field: "hold") }
        let date = IncidentService.date
        let (from, to, reference, requester) = (date(try row.text("footage_from")), date(try row.text("footage_to")), try row.text("legal_reference"), try row.text("requested_by"))
        let createdAt = date(try row.text("created_at"))
        let requests = try db.query(
            "SELECT owner, sequence, cameras, deadline FROM preservation_requests WHERE hold_id = ? ORDER BY owner", [.integer(id)]
        ).map { request in
            let deadline = date(try request.text("deadline"))
            return PreservationRequest(
                owner: try request.text("owner"), sequence: try request.integer("sequence"), hold: id, incident: try row.integer("incident_id"),
                cameras: try JSONDecoder().decode([String].self, from: Data(try request.text("cameras").utf8)), footageFrom: from, footageTo: to,
                deadline: deadline, footageMayBeLost: deadline <= createdAt, legalReference: reference, requestedBy: requester)
        }
        return EvidenceHold(
            id: id, incident: try row.integer("incident_id"),
            cameras: try db.query("SELECT camera_id FROM hold_cameras WHERE hold_id = ? ORDER BY camera_id", [.integer(id)]).map { $0.text(0)! },
            footageFrom: from, footageTo: to, legalReference: reference, requestedBy: requester, requestedUser: try row.optionalText("requested_user"),
            createdAt: createdAt, expiresAt: try row.optionalText("expires_at").map(date), releasedAt: try row.optionalText("released_at").map(date),
            preservationRequests: requests)
    }
}
