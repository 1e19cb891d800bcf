import Foundation
import Geo
import Logging
import Synchronization

/// Stores grants and answers access requests with ``AccessControl/decide(_:facts:areaContains:)``,
/// gathering the facts (camera, grants, incident, selection, user) from the database.
public final class AccessService: Sendable {
    let database: Database
    /// Polygons of grant scopes by grant id, prepared once (a police zone has thousands of vertices).
    private let areas = Mutex<[String: Area]>([:])

    public init(database: Database) {
        self.database = database
    }

    /// Decides a request without recording it (a dry run: `access.check`). Consultations go
    /// through ``start(_:)``, which also checks the justification and audits the decision.
    public func decide(_ request: AccessRequest) async throws -> AccessDecision {
        try await database.run { [self] db in try decide(request, in: db) }
    }

    func decide(_ request: AccessRequest, in db: SQLiteConnection) throws -> AccessDecision {
        AccessControl.decide(request, facts: try Self.facts(for: request, in: db)) { [self] grant, point in area(of: grant)?.contains(point) ?? false }
    }

    /// Which of `cameras` (ids) `agency` may watch live for `incident` now: what its copy of the
    /// incident's channel lists. One read gathers the facts; the decisions are the decision function's.
    public func visibleCameras(_ cameras: [String], agency: String, incident: Int64, at now: Date = Date()) async throws -> Set<String> {
        Set(try await visibility(of: cameras, agency: agency, incident: incident, at: now).allowed.keys)
    }

    /// What `agency` may watch live of `cameras` for `incident`, and under which grant.
    public func visibility(of cameras: [String], agency: String, incident: Int64, at now: Date = Date()) async throws -> CameraVisibility {
        try await visibility(of: cameras, agencies: [agency], incident: incident, at: now)[agency] ?? CameraVisibility()
    }

    /// What each of `agencies` may do in `mode` (watch live, unless said) with `cameras` for
    /// `incident`, in one read on the read-only connection (it sees every committed change, and
    /// never waits for the writer).
    public func visibility(
        of cameras: [String], agencies: [String], incident: Int64, mode: AccessMode = .live, at now: Date = Date()
    ) async throws -> [String: CameraVisibility] {
        try await database.read { [self] db in
            let selected = Set(try db.query("SELECT camera_id FROM incident_cameras WHERE incident_id = ?", [.integer(incident)]).map { $0.text(0)! })
            let registered = try RegistryStore.cameras(cameras, in: db)
            var visibilities: [String: CameraVisibility] = [:]
            for agency in Set(agencies) {
                visibilities[agency] = try visibility(of: registered, agency: agency, incident: incident, selected: selected, mode: mode, at: now, in: db)
            }
            return visibilities
        }
    }

    /// Which of `cameras` (ids) `agency` may watch live now without an incident: its own, and
    /// those of grants that hold at any time (`always`). What a selection outside any incident shows it.
    public func visibleWithoutIncident(_ cameras: [String], agency: String, at now: Date = Date()) async throws -> Set<String> {
        try await database.read { [self] db in
            Set(try visibility(of: try RegistryStore.cameras(cameras, in: db), agency: agency, incident: nil, selected: [], at: now, in: db).allowed.keys)
        }
    }

    private func visibility(
        of cameras: [Camera], agency: String, incident: Int64?, selected: Set<String>, mode: AccessMode = .live, at now: Date, in db: SQLiteConnection
    ) throws -> CameraVisibility {
        let grants = try db.query("SELECT definition, revoked_at FROM grants WHERE agency = ? ORDER BY id", [.text(agency)]).map { try Self.grant(from: $0) }
        let context = try incident.map { try Self.incidentFacts($0, agency: agency, in: db) }
            ?? AccessFacts(camera: nil, grants: [], incident: nil, cameraInIncidentSelection: false)
        var visibility = CameraVisibility()
        for camera in cameras {
            var facts = context
            facts.camera = camera
            facts.grants = grants.filter { $0.owner == camera.owner }
            facts.cameraInIncidentSelection = selected.contains(camera.id)
            let request = AccessRequest(agency: agency, camera: camera.id, mode: mode, incident: incident, at: now)
            switch AccessControl.decide(request, facts: facts, areaContains: { grant, point in area(of: grant)?.contains(point) ?? false }) {
            case .allow(let grant):
                visibility.allowed[camera.id] = grant
                if let bound = facts.grants.first(where: { $0.id == grant }), bound.condition.isIncidentBound {
                    visibility.underIncidentGrants[grant, default: IncidentGrantUse(grant: grant, owner: camera.owner)].cameras.append(camera.id)
                }
            case .deny(let code, let message) where IncidentLimits.refusalCodes.contains(code):
                visibility.limitRefusals[camera.owner] = (code, message)
            case .deny:
                break
            }
        }
        return visibility
    }

    /// The facts of a request under `incident` that do not depend on the camera.
    static func incidentFacts(_ id: Int64, agency: String, in db: SQLiteConnection) throws -> AccessFacts {
        guard let incident = try? IncidentService.incident(id, in: db),
              let row = try db.query("SELECT extent_radius_m, extent_area_m2, opened_by_user FROM incidents WHERE id = ?", [.integer(id)]).first
        else {
            return AccessFacts(camera: nil, grants: [], incident: nil, cameraInIncidentSelection: false)
        }
        // Incidents opened before the extent was stored: their radius.
        let radius = try row.optionalReal("extent_radius_m") ?? incident.radiusMeters
        let extent = IncidentExtent(radiusMeters: radius, areaSquareMeters: try row.optionalReal("extent_area_m2") ?? Double.pi * radius * radius)
        let open = try db.query(
            """
            SELECT id FROM incidents
            WHERE status = 'open' AND exercise = 0
              AND (lead_agency = ?1 OR EXISTS (SELECT 1 FROM json_each(incidents.details, '$.participants') WHERE value = ?1))
            ORDER BY id
            """, [.text(agency)]).map { $0.integer(0)! }
        let openerRoles = try row.optionalText("opened_by_user").flatMap { user in
            try db.query("SELECT roles FROM users WHERE id = ?", [.text(user)]).first
                .map { try JSONDecoder().decode([String].self, from: Data(($0.text(0) ?? "[]").utf8)) }
        }
        return AccessFacts(
            camera: nil, grants: [], incident: incident, cameraInIncidentSelection: false, incidentExtent: extent,
            agencyOpenIncidents: open, incidentOpenerRoles: openerRoles)
    }

    /// Which of `cameras` (ids) belong to `agency` or to an owner that has ever granted it
    /// anything (revoked and expired grants included): the cameras it may have received.
    public func camerasSharedWith(_ agency: String, among cameras: [String]) async throws -> Set<String> {
        try await camerasSharedWith([agency], among: cameras)[agency] ?? []
    }

    /// ``camerasSharedWith(_:among:)`` for each of `agencies`, in one read.
    public func camerasSharedWith(_ agencies: [String], among cameras: [String]) async throws -> [String: Set<String>] {
        try await database.read { db in
            let registered = try RegistryStore.cameras(cameras, in: db)
            var shared: [String: Set<String>] = [:]
            for agency in Set(agencies) {
                let owners = Set(try db.query("SELECT DISTINCT owner FROM grants WHERE agency = ?", [.text(agency)]).map { $0.text(0)! }).union([agency])
                shared[agency] = Set(registered.filter { owners.contains($0.owner) }.map(\.id))
            }
            return shared
        }
    }

    /// What the decision function needs, read from the database.
    static func facts(for request: AccessRequest, in db: SQLiteConnection) throws -> AccessFacts {
        let camera = try RegistryStore.camera(request.camera, in: db)
        let grants = try camera.map { camera in
            try db.query(
                "SELECT definition, revoked_at FROM grants WHERE owner = ? AND agency = ? ORDER BY id",
                [.text(camera.owner), .text(request.agency)]
            ).map { try Self.grant(from: $0) }
        } ?? []
        var context = AccessFacts(camera: nil, grants: [], incident: nil, cameraInIncidentSelection: false)
        var selected = false
        if let id = request.incident {
            context = try incidentFacts(id, agency: request.agency, in: db)
            selected = try db.query(
                "SELECT 1 FROM incident_cameras WHERE incident_id = ? AND camera_id = ?", [.integer(id), .text(request.camera)]
            ).isEmpty == false
        }
        var roles: [String]?
        var userAgency: String?
        var expiry: Date?
        var status: UserStatus?
        if let user = request.user,
            let row = try db.query("SELECT agency, roles, clearance_expires, status FROM users WHERE id = ?", [.text(user)]).first
        {
            userAgency = try row.optionalText("agency")
            roles = try JSONDecoder().decode([String].self, from: Data((try row.optionalText("roles") ?? "[]").utf8))
            expiry = try row.optionalText("clearance_expires").map(IncidentService.date)
            status = try row.optionalText("status").flatMap(UserStatus.init(rawValue:)) ?? .suspended
        }
        let retention = try camera.flatMap { camera in
            try db.query("SELECT regime, retention_days FROM owners WHERE id = ?", [.text(camera.owner)]).first
                .map { RetentionPolicy(regime: try $0.text("regime"), declaredDays: Int(try $0.integer("retention_days"))) }
        }
        let held = try request.footageTime.map { try EvidenceHolds.isHeld(camera: request.camera, at: $0, now: request.at, in: db) } ?? false
        return AccessFacts(
            camera: camera, grants: grants, incident: context.incident, cameraInIncidentSelection: selected,
            userRoles: roles, userAgency: userAgency, userClearanceExpiry: expiry, userStatus: status, retention: retention, footageHeld: held,
            incidentExtent: context.incidentExtent, agencyOpenIncidents: context.agencyOpenIncidents, incidentOpenerRoles: context.incidentOpenerRoles)
    }

    /// The owner of a camera of the registry, if there is such a camera.
    public func owner(ofCamera camera: String) async throws -> String? {
        try await database.read { db in try RegistryStore.camera(camera, in: db)?.owner }
    }

    /// Stores a grant and audits its creation, in one transaction.
    ///
    /// - Throws: ``IncidentError`` `grant_invalid` (no mode, a bad scope polygon, an empty window),
    ///   `grant_exists`, `owner_unknown`, `agency_unknown`.
    /// - Parameter user: the owner's named user who made it (nil: the owner's own key).
    public func create(_ grant: Grant, by actor: String, user: String? = nil) async throws {
        guard !grant.id.isEmpty, !grant.modes.isEmpty else {
            throw IncidentError(.grantInvalid, message: "a grant needs an id and at least one mode", field: "modes")
        }
        if case .whileIncidentOpen(_, false) = grant.condition {
            throw IncidentError(
                .grantInvalid, message: "a grant that holds while incidents are open covers the cameras they select: camera_in_selection is true",
                field: "condition.while_incident_open.camera_in_selection")
        }
        if let limits = grant.limits {
            guard grant.condition.isIncidentBound else {
                throw IncidentError(.grantInvalid, message: "limits apply to grants that hold under incidents", field: "limits")
            }
            for (value, field) in [(limits.maxRadiusMeters, "max_radius_meters"), (limits.maxAreaSquareMeters, "max_area_square_meters")] {
                if let value, !(value.isFinite && value > 0) {
                    throw IncidentError(.grantInvalid, message: "\(field) is a positive number", field: "limits.\(field)")
                }
            }
            if let most = limits.maxOpenIncidents, most < 1 {
                throw IncidentError(.grantInvalid, message: "max_open_incidents is 1 or more", field: "limits.max_open_incidents")
            }
            if let roles = limits.openerRoles, roles.isEmpty || roles.contains(where: { UserRole(rawValue: $0) == nil }) {
                throw IncidentError(
                    .grantInvalid, message: "opener_roles lists roles: \(UserRole.allCases.map(\.rawValue).joined(separator: ", "))",
                    field: "limits.opener_roles")
            }
        }
        if let until = grant.validUntil, until <= grant.validFrom {
            throw IncidentError(.grantInvalid, message: "valid_until must be after valid_from", field: "valid_until")
        }
        if let polygon = grant.scope.area {
            do {
                _ = try Area(name: grant.id, geoJSONGeometry: String(decoding: try Self.encoder.encode(polygon), as: UTF8.self))
            } catch {
                throw IncidentError(.grantInvalid, message: "the scope area is not a valid polygon: \(error)", field: "scope.area")
            }
        }
        try await database.run { db in
            guard try db.query("SELECT 1 FROM grants WHERE id = ?", [.text(grant.id)]).isEmpty else {
                throw IncidentError(.grantExists, message: "there is already a grant \(grant.id)", field: "id")
            }
            guard try !db.query("SELECT 1 FROM owners WHERE id = ?", [.text(grant.owner)]).isEmpty else {
                throw IncidentError(.ownerUnknown, message: "no owner \(grant.owner)", field: "owner")
            }
            guard try !db.query("SELECT 1 FROM agencies WHERE id = ?", [.text(grant.agency)]).isEmpty else {
                throw IncidentError(.agencyUnknown, message: "no agency \(grant.agency)", field: "agency")
            }
            try db.transaction {
                try Self.insert(grant, createdBy: actor, in: db)
                try AuditLog.append(AuditRecord(
                    action: "grant.created", agency: actor, user: user, reason: grant.purpose, recipient: grant.agency, grant: grant.id,
                    details: ["owner": grant.owner, "modes": grant.modes.map(\.rawValue).joined(separator: ","), "legal_basis": grant.legalBasis]), in: db)
            }
        }
    }

    /// Revokes a grant from now on and audits it; only the grant's owner may revoke it.
    /// Returns the grant as revoked.
    @discardableResult
    public func revoke(_ id: String, by actor: String, user: String? = nil, reason: String) async throws(IncidentError) -> Grant {
        do {
            return try await database.run { db in
                try db.transaction {
                    guard let row = try db.query("SELECT definition, revoked_at, owner FROM grants WHERE id = ?", [.text(id)]).first else {
                        throw IncidentError(.grantNotFound, message: "there is no grant \(id)", field: "grant")
                    }
                    guard try row.optionalText("owner") == actor else {
                        throw IncidentError(.notOwner, message: "only \(try row.optionalText("owner") ?? "its owner") may revoke grant \(id)", field: "grant")
                    }
                    guard try row.optionalText("revoked_at") == nil else { throw IncidentError(.grantRevoked, message: "grant \(id) is already revoked", field: "grant") }
                    let now = Date()
                    try db.query("UPDATE grants SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                                 [.text(IncidentService.timestamp(now)), .text(actor), .text(id)])
                    var grant = try Self.grant(from: row)
                    grant.revokedAt = now
                    try AuditLog.append(AuditRecord(action: "grant.revoked", agency: actor, user: user, reason: reason, recipient: grant.agency, grant: id), in: db)
                    return grant
                }
            }
        } catch let error as IncidentError {
            throw error
        } catch {
            throw IncidentError(.storageFailure, message: "\(error)")
        }
    }

    /// Records in the audit log each grant that has expired by `now` and was not recorded yet;
    /// returns them. (Expiry itself needs no action: the decision function checks the window.)
    public func auditExpiries(at now: Date = Date()) async throws -> [Grant] {
        try await database.run { db in
            try db.transaction {
                let expired = try db.query("SELECT definition, revoked_at FROM grants WHERE revoked_at IS NULL AND expiry_audited_at IS NULL ORDER BY id")
                    .map { try Self.grant(from: $0) }.filter { ($0.validUntil ?? .distantFuture) <= now }
                for grant in expired {
                    try db.query("UPDATE grants SET expiry_audited_at = ? WHERE id = ?", [.text(IncidentService.timestamp(now)), .text(grant.id)])
                    try AuditLog.append(AuditRecord(
                        action: "grant.expired", at: now, agency: grant.owner, recipient: grant.agency, grant: grant.id,
                        details: ["valid_until": AuditLog.timestamp(grant.validUntil!)]), in: db)
                }
                return expired
            }
        }
    }

    /// Every grant, ordered by id, with its revocation time.
    public func grants() async throws -> [Grant] {
        try await database.run { db in try db.query("SELECT definition, revoked_at FROM grants ORDER BY id").map { try Self.grant(from: $0) } }
    }

    /// Loads the fixture agreements into a database that has no grant yet; returns how many.
    /// `grants` is evaluated only then (reading the fixtures is not free).
    public func loadIfEmpty(_ grants: @autoclosure () throws -> [Grant]) throws -> Int {
        try database.runSync { db in
            guard try db.query("SELECT COUNT(*) FROM grants").first?.integer(0) == 0 else { return 0 }
            let grants = try grants()
            try db.transaction {
                for grant in grants { try Self.insert(grant, createdBy: "fixture", in: db) }
            }
            return grants.count
        }
    }

    /// The prepared polygon of a grant's scope (grants are immutable, so the id is a safe key).
    private static func insert(_ grant: Grant, createdBy actor: String, in db: SQLiteConnection) throws {
        try db.query(
            "INSERT INTO grants (id, owner, agency, definition, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(grant.id), .text(grant.owner), .text(grant.agency), .text(String(decoding: try encoder.encode(grant), as: UTF8.self)),
             .text(IncidentService.timestamp(Date())), .text(actor)])
    }

    private func area(of grant: Grant) -> Area? {
        guard let polygon = grant.scope.area else { return nil }
        if let known = areas.withLock({ $0[grant.id] }) { return known }
        // An unreadable scope polygon covers nothing (nil), so the grant allows nothing.
        let made = try? Area(name: grant.id, geoJSONGeometry: String(decoding: (try? Self.encoder.encode(polygon)) ?? Data(), as: UTF8.self))
        if let made { areas.withLock { $0[grant.id] = made } }
        return made
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// A grant from a row of `definition` and `revoked_at`.
    static func grant(from row: Row) throws -> Grant {
        var grant = try decodedGrants.grant(try row.text("definition"))
        grant.revokedAt = try row.optionalText("revoked_at").map(IncidentService.date)
        return grant
    }

    /// Grants as decoded from their stored definitions, which never change once written (a
    /// revocation is a column of its own). Every visibility read and decision reads an owner's
    /// grants, and decoding their GeoJSON scopes each time was 8 % of a relay serving 200 viewers.
    static let decodedGrants = DecodedGrants()
}

/// What an agency may watch of some cameras under an incident.
public struct CameraVisibility: Sendable {
    /// The cameras it may watch, with the grant that allows each (`owner` for its own).
    public var allowed: [String: String] = [:]
    /// Of those, the ones an incident-bound grant allows, by grant.
    public var underIncidentGrants: [String: IncidentGrantUse] = [:]
    /// Owners whose incident-bound grant would apply but for its limits, with the refusal.
    public var limitRefusals: [String: (code: String, message: String)] = [:]

    /// Nothing visible.
    public init() {}
}

/// The cameras an incident makes available under one owner's incident-bound grant.
public struct IncidentGrantUse: Sendable, Equatable {
    public var grant: String
    public var owner: String
    public var cameras: [String] = []
}

/// Stored grant definitions and what they decode to, up to `limit` of them (then forgotten at once:
/// a deployment has tens or hundreds of grants, and the definitions are their own keys).
final class DecodedGrants: Sendable {
    private let grants = Mutex<[String: Grant]>([:])
    private let limit = 4_096

    func grant(_ definition: String) throws -> Grant {
        if let known = grants.withLock({ $0[definition] }) { return known }
        let grant = try AccessService.decoder.decode(Grant.self, from: Data(definition.utf8))
        grants.withLock { grants in
            if grants.count >= limit { grants.removeAll() }
            grants[definition] = grant
        }
        return grant
    }
}
