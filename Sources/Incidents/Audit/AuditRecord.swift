import Foundation

/// What the audit log records about one event: who, when, what, why, to whom, from where.
/// Members without a value are left out of the canonical encoding.
public struct AuditRecord: Sendable, Codable, Equatable {
    /// Stable action names, for example `auth.accepted`, `auth.refused`, `incident.opened`,
    /// `incident.redrawn`, `incident.moved`, `incident.closed`.
    public var action: String
    /// When it happened, ISO 8601 UTC with milliseconds (as stored, so that it hashes the same).
    public var at: String
    public var agency: String?
    public var user: String?
    public var badge: String?
    /// The cameras concerned.
    public var cameras: [String]?
    public var footageFrom: String?
    public var footageTo: String?
    public var reason: String?
    public var justification: String?
    public var recipient: String?
    public var incident: Int64?
    public var grant: String?
    /// Where the request came from (an address or an endpoint).
    public var source: String?
    /// Anything else worth keeping, as short text (a public key, a count, a status).
    public var details: [String: String]?

    public init(
        action: String, at: Date = Date(), agency: String? = nil, user: String? = nil, badge: String? = nil,
        cameras: [String]? = nil, footageFrom: String? = nil, footageTo: String? = nil, reason: String? = nil,
        justification: String? = nil, recipient: String? = nil, incident: Int64? = nil, grant: String? = nil,
        source: String? = nil, details: [String: String]? = nil
    ) {
        self.action = action
        self.at = AuditLog.timestamp(at)
        self.agency = agency
        self.user = user
        self.badge = badge
        self.cameras = cameras
        self.footageFrom = footageFrom
        self.footageTo = footageTo
        self.reason = reason
        self.justification = justification
        self.recipient = recipient
        self.incident = incident
        self.grant = grant
        self.source = source ?? AuditOrigin.current
        self.details = details
    }
}

/// One entry of the chain: its position, the record, and the hashes that link it.
public struct AuditEntry: Sendable, Codable, Equatable {
    public var sequence: Int64
    public var record: AuditRecord
    public var previousHash: String
    public var hash: String
}

/// What part of the server the request being handled came through, when it is not the bus
/// (`console`: the operator console, acting for a logged-in user). Set for the handling of one
/// request (``AuditOrigin/$current``); every record made meanwhile that names no source of its
/// own takes it as its `source`, so the log says which actions came from the console.
public enum AuditOrigin {
    @TaskLocal public static var current: String?
}
