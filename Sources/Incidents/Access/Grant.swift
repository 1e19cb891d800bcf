import Foundation
import Geo

/// What a grant lets an agency do with a camera. `record`: Vigil may record the camera's
/// footage while an incident of the agency's selects it (what playback and export then read).
public enum AccessMode: String, Sendable, Codable, CaseIterable {
    case live, playback, export, ptz, record
}

/// Which of the owner's cameras a grant covers: every listed criterion must hold.
public struct GrantScope: Sendable, Codable, Equatable {
    /// These cameras only.
    public var cameras: [String]?
    /// Cameras carrying this tag.
    public var tag: String?
    /// Cameras of these kinds.
    public var kinds: [CameraKind]?
    /// Cameras at these place types (`platform`, `hall`, `access` for STIB stations).
    public var placeTypes: [String]?
    /// Cameras whose position lies inside this polygon (a police zone, a perimeter).
    public var area: GeoJSONGeometry?
    /// A name for `area`, for people (`police zone 5340`).
    public var areaName: String?

    public init(cameras: [String]? = nil, tag: String? = nil, kinds: [CameraKind]? = nil, placeTypes: [String]? = nil,
                area: GeoJSONGeometry? = nil, areaName: String? = nil) {
        self.cameras = cameras
        self.tag = tag
        self.kinds = kinds
        self.placeTypes = placeTypes
        self.area = area
        self.areaName = areaName
    }
}

/// When a grant applies beyond its validity window.
public enum GrantCondition: Sendable, Codable, Equatable {
    /// At any time in the validity window.
    case always
    /// Only for a request made for an open incident of one of `kinds` (any kind when nil), and
    /// only for the cameras that incident has selected. `cameraInSelection` must be true: an
    /// incident is never a key to cameras away from it (kept in the format so that grants
    /// written before say the same thing; `grant.create` refuses false).
    case whileIncidentOpen(kinds: [IncidentKind]?, cameraInSelection: Bool)
    /// Only for this incident, while it is open, and only for the cameras it has selected.
    case incident(Int64)

    /// Whether the grant holds only under an incident (and so within its ``IncidentLimits``).
    public var isIncidentBound: Bool {
        if case .always = self { return false }
        return true
    }
}

/// Bounds an owner sets on a grant that holds under incidents, so that incidents cannot be
/// made into standing access: an incident larger than the bound, beyond the agency's number of
/// open incidents, or opened by someone without one of the roles, does not make the grant
/// apply (refused with `incident_too_large`, `incident_limit_reached`, `opener_role_not_granted`).
public struct IncidentLimits: Sendable, Codable, Equatable {
    /// The largest incident: the radius of the circle that holds its geometry (a point
    /// incident's radius, a perimeter's or a march route's enclosing circle), in metres.
    public var maxRadiusMeters: Double?
    /// The largest incident by area, in square metres (a circle's, a perimeter's, a march
    /// route's length times the corridor width).
    public var maxAreaSquareMeters: Double?
    /// The most open incidents of the agency (leading or taking part) under which the grant
    /// applies at once: the oldest ones, by id.
    public var maxOpenIncidents: Int?
    /// Roles of which the named user who opened the incident must hold one (an incident opened
    /// with the agency's own key, by one of its systems, has no such user).
    public var openerRoles: [String]?

    /// The refusal codes of exceeded limits.
    public static let refusalCodes: Set<String> = Set([IncidentErrorCode.incidentTooLarge, .incidentLimitReached, .openerRoleNotGranted].map(\.rawValue))

    public init(maxRadiusMeters: Double? = nil, maxAreaSquareMeters: Double? = nil, maxOpenIncidents: Int? = nil, openerRoles: [String]? = nil) {
        self.maxRadiusMeters = maxRadiusMeters
        self.maxAreaSquareMeters = maxAreaSquareMeters
        self.maxOpenIncidents = maxOpenIncidents
        self.openerRoles = openerRoles
    }
}

/// An owner's explicit decision to share cameras with an agency (brief, requirements 2 to 4).
public struct Grant: Sendable, Codable, Equatable {
    public var id: String
    public var owner: String
    public var agency: String
    /// Named users or roles of the agency; nil for the whole agency.
    public var users: [String]?
    public var scope: GrantScope
    public var modes: [AccessMode]
    public var validFrom: Date
    public var validUntil: Date?
    /// The recorded footage that may be played back or exported, when limited.
    public var footageFrom: Date?
    public var footageUntil: Date?
    public var purpose: String
    public var legalBasis: String
    public var agreement: String?
    public var condition: GrantCondition
    /// For an incident-bound condition: the owner's bounds on the incidents it holds under.
    public var limits: IncidentLimits?
    public var revokedAt: Date?

    public init(
        id: String, owner: String, agency: String, users: [String]? = nil, scope: GrantScope, modes: [AccessMode],
        validFrom: Date, validUntil: Date? = nil, footageFrom: Date? = nil, footageUntil: Date? = nil,
        purpose: String, legalBasis: String, agreement: String? = nil, condition: GrantCondition, limits: IncidentLimits? = nil,
        revokedAt: Date? = nil
    ) {
        self.limits = limits
        self.id = id
        self.owner = owner
        self.agency = agency
        self.users = users
        self.scope = scope
        self.modes = modes
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.footageFrom = footageFrom
        self.footageUntil = footageUntil
        self.purpose = purpose
        self.legalBasis = legalBasis
        self.agreement = agreement
        self.condition = condition
        self.revokedAt = revokedAt
    }
}
