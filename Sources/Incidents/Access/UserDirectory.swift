import Foundation

/// What a named user may do (brief requirement 5).
public enum UserRole: String, Sendable, Codable, CaseIterable {
    /// Opens and follows incidents, consults cameras.
    case `operator`
    /// Commands incidents: updates, hand-overs, evidence holds.
    case commander
    /// Manages an owner's cameras and grants, and the agency's users.
    case ownerAdmin = "owner-admin"
    /// Reads the audit log.
    case auditor
    /// Not a person: a relay node's key (`vigil relay`), which registers with the server and reports its load.
    case relay
}

/// Whether a user may act: `active`; `suspended` (may be reinstated); `removed` (for good: the
/// key is forgotten, the row stays for the audit log that names the user).
public enum UserStatus: String, Sendable, Codable, CaseIterable {
    case active, suspended, removed
}

/// A named user: a person of an agency with a badge number, roles and a clearance that expires.
public struct User: Sendable, Codable, Equatable {
    public var id: String
    public var agency: String
    public var name: String
    public var badge: String
    public var roles: [UserRole]
    public var clearanceExpires: Date?
    /// The user's CURVE public key (Z85) when the user authenticates on the bus with a key of their own.
    public var publicKey: String?
    public var status: UserStatus

    public init(
        id: String, agency: String, name: String, badge: String, roles: [UserRole], clearanceExpires: Date? = nil, publicKey: String? = nil,
        status: UserStatus = .active
    ) {
        self.id = id
        self.agency = agency
        self.name = name
        self.badge = badge
        self.roles = roles
        self.clearanceExpires = clearanceExpires
        self.publicKey = publicKey
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case id, agency, name, badge, roles, clearanceExpires, publicKey, status
    }

    /// A user sent to be added has no status yet: it is `active`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(String.self, forKey: .id), agency: try container.decode(String.self, forKey: .agency),
            name: try container.decode(String.self, forKey: .name), badge: try container.decode(String.self, forKey: .badge),
            roles: try container.decode([UserRole].self, forKey: .roles),
            clearanceExpires: try container.decodeIfPresent(Date.self, forKey: .clearanceExpires),
            publicKey: try container.decodeIfPresent(String.self, forKey: .publicKey),
            status: try container.decodeIfPresent(UserStatus.self, forKey: .status) ?? .active)
    }

    /// Whether the user is active and holds `role` with a clearance still valid at `date`.
    public func may(_ role: UserRole, at date: Date = Date()) -> Bool {
        roles.contains(role) && isCleared(at: date)
    }

    /// Whether the user is active with a clearance still valid at `date`, whatever the role.
    public func isCleared(at date: Date = Date()) -> Bool {
        status == .active && (clearanceExpires.map { $0 > date } ?? true)
    }
}

/// The named users of every agency: added (audited), listed, found by id or by public key.
public final class UserDirectory: Sendable {
    /// Whether `id` is 1–64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit (safe as a file name).
    public static func isValidId(_ id: String) -> Bool {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789._-")
        return (1...64).contains(id.count) && id.allSatisfy(allowed.contains) && id.first.map { $0.isLetter || $0.isNumber } == true
    }

    private let database: Database

    public init(database: Database) {
        self.database = database
    }

    /// Adds a user and audits it, in one transaction.
    ///
    /// - Throws: ``IncidentError`` `user_invalid`, `user_exists`, `agency_unknown`, `key_in_use`.
    public func add(_ user: User, by actor: String) async throws {
        guard Self.isValidId(user.id) else {
            throw IncidentError(.userInvalid, message: "a user id is 1–64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", field: "id")
        }
        guard !user.name.trimmingCharacters(in: .whitespaces).isEmpty, !user.badge.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw IncidentError(.userInvalid, message: "a named user has a name and a badge number", field: "badge")
        }
        guard !user.roles.isEmpty else {
            throw IncidentError(.userInvalid, message: "a user has at least one role", field: "roles")
        }
        if let key = user.publicKey, key.utf8.count != 40 {
            throw IncidentError(.userInvalid, message: "a public key is 40 characters of Z85", field: "public_key")
        }
        try await database.run { db in
            guard user.status == .active else {
                throw IncidentError(.userInvalid, message: "a user is added active", field: "status")
            }
            guard try db.query("SELECT 1 FROM users WHERE id = ?", [.text(user.id)]).isEmpty else {
                throw IncidentError(.userExists, message: "there is already a user \(user.id)", field: "id")
            }
            guard try !db.query("SELECT 1 FROM agencies WHERE id = ?", [.text(user.agency)]).isEmpty else {
                throw IncidentError(.agencyUnknown, message: "no agency \(user.agency)", field: "agency")
            }
            if let key = user.publicKey {
                let used = try db.query("SELECT 1 FROM users WHERE public_key = ? UNION SELECT 1 FROM agencies WHERE public_key = ?", [.text(key), .text(key)])
                guard used.isEmpty else { throw IncidentError(.keyInUse, message: "this public key already belongs to someone", field: "public_key") }
            }
            try db.transaction {
                try db.query(
                    "INSERT INTO users (id, agency, name, badge, roles, clearance_expires, public_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [.text(user.id), .text(user.agency), .text(user.name), .text(user.badge),
                     .text(String(decoding: try JSONEncoder().encode(user.roles), as: UTF8.self)),
                     user.clearanceExpires.map { .text(IncidentService.timestamp($0)) } ?? .null, user.publicKey.map(SQLValue.text) ?? .null])
                try AuditLog.append(AuditRecord(
                    action: "user.added", agency: actor, user: user.id,
                    details: ["agency": user.agency, "badge": user.badge, "roles": user.roles.map(\.rawValue).joined(separator: ",")]), in: db)
            }
        }
    }

    /// The users of `agency` (every agency's when nil), ordered by id.
    public func users(of agency: String? = nil) async throws -> [User] {
        try await database.run { db in
            try db.query(
                "SELECT \(Self.columns) FROM users WHERE ?1 IS NULL OR agency = ?1 ORDER BY id", [agency.map(SQLValue.text) ?? .null]
            ).map(Self.user)
        }
    }

    /// The user with this id, if any.
    public func user(_ id: String) async throws -> User? {
        try await database.run { db in try db.query("SELECT \(Self.columns) FROM users WHERE id = ?", [.text(id)]).first.map(Self.user) }
    }

    /// The user holding a CURVE public key, if any.
    public func user(withKey key: String) async throws -> User? {
        try await database.run { db in try db.query("SELECT \(Self.columns) FROM users WHERE public_key = ?", [.text(key)]).first.map(Self.user) }
    }

    /// Suspends, reinstates or removes `id`, a user of `agency`, and audits it with `reason`, in
    /// one transaction. A removed user's key is forgotten (it may be given to someone else) and
    /// the user cannot come back; the row stays, for the audit log that names it.
    ///
    /// - Throws: ``IncidentError`` `user_unknown` (no such user of `agency`), `user_removed`
    ///   (already removed), `user_status_unchanged`.
    @discardableResult
    public func setStatus(_ id: String, of agency: String, to status: UserStatus, reason: String, by actor: String, actingUser: String?) async throws -> User {
        try await database.run { db in
            guard let current = try db.query("SELECT \(Self.columns) FROM users WHERE id = ? AND agency = ?", [.text(id), .text(agency)]).first.map(Self.user)
            else { throw IncidentError(.userUnknown, message: "\(agency) has no user \(id)", field: "user") }
            guard current.status != .removed else {
                throw IncidentError(.userRemoved, message: "\(id) was removed; add a new user instead", field: "user")
            }
            guard current.status != status else {
                throw IncidentError(.userStatusUnchanged, message: "\(id) is \(status.rawValue) already", field: "user")
            }
            let action = switch status {
            case .active: "user.reinstated"
            case .suspended: "user.suspended"
            case .removed: "user.removed"
            }
            try db.transaction {
                try db.query(
                    "UPDATE users SET status = ?, public_key = CASE WHEN ? THEN NULL ELSE public_key END WHERE id = ?",
                    [.text(status.rawValue), .integer(status == .removed ? 1 : 0), .text(id)])
                try AuditLog.append(AuditRecord(
                    action: action, agency: actor, user: actingUser, reason: reason, details: ["subject": id, "subject_agency": agency]), in: db)
            }
            var changed = current
            changed.status = status
            if status == .removed { changed.publicKey = nil }
            return changed
        }
    }

    /// The public key recorded for each agency that has one (agency id by key).
    public func agencyKeys() async throws -> [String: String] {
        try await database.run { db in
            Dictionary(uniqueKeysWithValues: try db.query("SELECT public_key, id FROM agencies WHERE public_key IS NOT NULL").map { (try $0.text("public_key"), try $0.text("id")) })
        }
    }

    /// Records `key` as `agency`'s public key: at first start (no audit: nothing changes), or
    /// when the agency rotates it (audited `agency.key-rotated`, with both keys' first characters).
    ///
    /// - Throws: ``IncidentError`` `agency_unknown`, `key_in_use`, `key_invalid` (not 40 characters).
    public func setAgencyKey(_ agency: String, to key: String, rotatedBy actor: String?, actingUser: String? = nil, reason: String = "") async throws {
        guard key.utf8.count == 40 else { throw IncidentError(.keyInvalid, message: "a public key is 40 characters of Z85", field: "body.public_key") }
        try await database.run { db in
            guard let row = try db.query("SELECT public_key FROM agencies WHERE id = ?", [.text(agency)]).first else {
                throw IncidentError(.agencyUnknown, message: "no agency \(agency)", field: "agency")
            }
            let used = try db.query(
                "SELECT 1 FROM users WHERE public_key = ?1 UNION SELECT 1 FROM agencies WHERE public_key = ?1 AND id != ?2", [.text(key), .text(agency)])
            guard used.isEmpty else { throw IncidentError(.keyInUse, message: "this public key already belongs to someone", field: "public_key") }
            try db.transaction {
                try db.query("UPDATE agencies SET public_key = ? WHERE id = ?", [.text(key), .text(agency)])
                if let actor {
                    try AuditLog.append(AuditRecord(
                        action: "agency.key-rotated", agency: actor, user: actingUser, reason: reason,
                        details: ["subject_agency": agency, "old_key": String((row.text(0) ?? "").prefix(8)), "new_key": String(key.prefix(8))]), in: db)
                }
            }
        }
    }

    static let columns = "id, agency, name, badge, roles, clearance_expires, public_key, status"

    /// A user from a row of ``columns``.
    static func user(_ row: Row) throws -> User {
        User(
            id: try row.text("id"), agency: try row.text("agency"), name: try row.text("name"), badge: try row.text("badge"),
            roles: try JSONDecoder().decode([UserRole].self, from: Data((try row.optionalText("roles") ?? "[]").utf8)),
            clearanceExpires: try row.optionalText("clearance_expires").map(IncidentService.date), publicKey: try row.optionalText("public_key"),
            status: try row.optionalText("status").flatMap(UserStatus.init(rawValue:)) ?? .suspended)
    }
}
