import Foundation
import Geo

/// What a grant lets an agency do with a camera.
public enum AccessMode: String, Sendable, Codable, CaseIterable {
    case live, playback, export, ptz
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
    /// Only for a request made for an open incident of one of `kinds` (any kind when nil); with
    /// `cameraInSelection`, only for the cameras that incident has selected ("at that estate").
    case whileIncidentOpen(kinds: [IncidentKind]?, cameraInSelection: Bool)
    /// Only for this incident, while it is open.
    case incident(Int64)
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
    public var revokedAt: Date?

    public init(
        id: String, owner: String, agency: String, users: [String]? = nil, scope: GrantScope, modes: [AccessMode],
        validFrom: Date, validUntil: Date? = nil, footageFrom: Date? = nil, footageUntil: Date? = nil,
        purpose: String, legalBasis: String, agreement: String? = nil, condition: GrantCondition, revokedAt: Date? = nil
    ) {
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
