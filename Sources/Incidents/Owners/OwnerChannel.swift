import Foundation

/// An owner's channel (`owner/OWNER/`): everything Vigil tells an owner about its cameras, with
/// one sequence per owner across all of it (preservation requests, incident-bound grants coming
/// into use, audit checkpoints are latest-wins and take no number).
public enum OwnerChannel {
    /// The next sequence number on `owner`'s channel.
    static func nextSequence(for owner: String, in db: SQLiteConnection) throws -> Int64 {
        try db.query(
            """
            SELECT MAX(COALESCE((SELECT MAX(sequence) FROM preservation_requests WHERE owner = ?1), 0),
                       COALESCE((SELECT MAX(sequence) FROM owner_notices WHERE owner = ?1), 0)) + 1
            """, [.text(owner)]).first!.integer(0)!
    }
}

/// What an owner is told when an incident makes its cameras available to an agency under one of
/// its incident-bound grants, or when that set changes: `cameras` is the whole set now (empty
/// once the incident no longer makes any available), `added` and `removed` the difference.
public struct IncidentCamerasAvailable: Sendable, Codable, Equatable {
    public var owner: String
    public var sequence: Int64
    public var incident: Int64
    public var agency: String
    public var grant: String
    public var cameras: [String]
    public var added: [String]
    public var removed: [String]
    public var at: Date

    public init(owner: String, incident: Int64, agency: String, grant: String, cameras: [String], added: [String], removed: [String], at: Date = Date()) {
        (self.owner, sequence, self.incident, self.agency, self.grant) = (owner, 0, incident, agency, grant)
        (self.cameras, self.added, self.removed, self.at) = (cameras, added, removed, at)
    }
}

extension AccessService {
    /// Stores the notice with the owner's next sequence number and audits it (`grant.applied`),
    /// in one transaction; returns it numbered, to be published on the owner's channel.
    public func record(_ notice: IncidentCamerasAvailable) async throws -> IncidentCamerasAvailable {
        try await database.run { db in
            try db.transaction {
                var numbered = notice
                numbered.sequence = try OwnerChannel.nextSequence(for: notice.owner, in: db)
                try db.query(
                    "INSERT INTO owner_notices (owner, sequence, type, body, created_at) VALUES (?, ?, 'incident.cameras-available', ?, ?)",
                    [.text(notice.owner), .integer(numbered.sequence), .text(String(decoding: try Self.encoder.encode(numbered), as: UTF8.self)),
                     .text(IncidentService.timestamp(notice.at))])
                try AuditLog.append(AuditRecord(
                    action: "grant.applied", at: notice.at, agency: notice.owner, cameras: notice.cameras, recipient: notice.agency,
                    incident: notice.incident, grant: notice.grant,
                    details: ["added": notice.added.joined(separator: ","), "removed": notice.removed.joined(separator: ",")]), in: db)
                return numbered
            }
        }
    }

    /// Audits that an incident-bound grant of `owner` does not apply to `incident` for `agency`
    /// because the incident exceeds its limits (`grant.limit-exceeded`, with the code).
    public func recordLimitExceeded(owner: String, agency: String, incident: Int64, code: String, message: String) async throws {
        try await database.run { db in
            try db.transaction {
                try AuditLog.append(AuditRecord(
                    action: "grant.limit-exceeded", agency: owner, reason: code, recipient: agency, incident: incident, details: ["message": message]), in: db)
            }
        }
    }
}
