import Foundation
import Geo

/// What an incident is about (the brief's kinds; CAP categories are mapped on export).
public enum IncidentKind: String, Sendable, Codable, CaseIterable {
    case fire, medical, traffic
    case publicOrder = "public-order"
    case demonstration, crisis, other
}

/// Where an incident is in its life: draft → open ⇄ on hold → closed → archived, and cancelled
/// (from draft, open or on hold; a cancelled incident can still be archived).
public enum IncidentStatus: String, Sendable, Codable, CaseIterable {
    case draft, open
    case onHold = "on-hold"
    case closed, archived, cancelled

    /// The statuses this one may change to; any other change is refused (`status_transition_invalid`).
    public var next: [IncidentStatus] {
        switch self {
        case .draft: [.open, .cancelled]
        case .open: [.onHold, .closed, .cancelled]
        case .onHold: [.open, .closed, .cancelled]
        case .closed, .cancelled: [.archived]
        case .archived: []
        }
    }

    /// Whether the incident still holds a camera selection that can be redrawn or moved. Only an
    /// `open` incident makes event-bound grants apply: a draft is being prepared, and on hold the
    /// sharing pauses (the conservative reading of "only while an incident is open").
    public var holdsSelection: Bool { self == .draft || self == .open || self == .onHold }
}

/// CAP 1.2 `severity` values.
public enum Severity: String, Sendable, Codable, CaseIterable {
    case extreme = "Extreme", severe = "Severe", moderate = "Moderate", minor = "Minor", unknown = "Unknown"
}

/// CAP 1.2 `urgency` values.
public enum Urgency: String, Sendable, Codable, CaseIterable {
    case immediate = "Immediate", expected = "Expected", future = "Future", past = "Past", unknown = "Unknown"
}

/// CAP 1.2 `certainty` values.
public enum Certainty: String, Sendable, Codable, CaseIterable {
    case observed = "Observed", likely = "Likely", possible = "Possible", unlikely = "Unlikely", unknown = "Unknown"
}

/// What an incident is besides its place: CAP qualifiers, who takes part, who commands,
/// references in other systems and the incident it split off from.
public struct IncidentDetails: Sendable, Codable, Equatable {
    public var severity: Severity
    public var urgency: Urgency
    public var certainty: Certainty
    /// Agencies taking part besides the lead agency (they receive the incident's channel).
    public var participants: [String]
    /// The named user in command (a user of the lead agency).
    public var commander: String?
    /// Identifiers in other systems, by system: `{"dispatch": "CAD-2026-004211"}`.
    public var externalReferences: [String: String]
    /// The incident this one is part of (a group that split off a march).
    public var parent: Int64?

    public init(
        severity: Severity = .unknown, urgency: Urgency = .unknown, certainty: Certainty = .unknown, participants: [String] = [],
        commander: String? = nil, externalReferences: [String: String] = [:], parent: Int64? = nil
    ) {
        self.severity = severity
        self.urgency = urgency
        self.certainty = certainty
        self.participants = participants
        self.commander = commander
        self.externalReferences = externalReferences
        self.parent = parent
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            severity: try container.decodeIfPresent(Severity.self, forKey: .severity) ?? .unknown,
            urgency: try container.decodeIfPresent(Urgency.self, forKey: .urgency) ?? .unknown,
            certainty: try container.decodeIfPresent(Certainty.self, forKey: .certainty) ?? .unknown,
            participants: try container.decodeIfPresent([String].self, forKey: .participants) ?? [],
            commander: try container.decodeIfPresent(String.self, forKey: .commander),
            externalReferences: try container.decodeIfPresent([String: String].self, forKey: .externalReferences) ?? [:],
            parent: try container.decodeIfPresent(Int64.self, forKey: .parent))
    }
}

/// An incident as stored: a point and radius, the agency that leads it, its details, and the sequence
/// number of its last journal entry (the channel sequence late joiners resume from).
public struct Incident: Sendable, Codable, Equatable {
    public var id: Int64
    public var kind: IncidentKind
    public var status: IncidentStatus
    public var title: String?
    /// A training incident, kept apart from real ones.
    public var exercise: Bool
    public var center: GeoPoint
    public var radiusMeters: Double
    public var leadAgency: String
    public var details: IncidentDetails
    public var openedAt: Date
    public var closedAt: Date?
    public var sequence: Int64
    /// For a march: where its head and tail stand on the route.
    public var march: MarchStatus?
}

/// Where a march stands, as every change of a march incident reports it.
public struct MarchStatus: Sendable, Codable, Equatable {
    public var headMeters: Double
    public var tailMeters: Double
    public var routeLengthMeters: Double
    public var onRoute: Bool
    public var headOffsetMeters: Double
    /// The window's settings the march was opened with, its defaults filled in: what decided
    /// which cameras each change selected (absent in what is stored of the march, which keeps them once).
    public var settings: MarchConfiguration?
}

/// A camera of an incident's selection, as agencies receive it.
///
/// A confidential camera's position is withheld (`position` is nil) and its distance is
/// coarsened to 500 m steps, so the exact location cannot be recovered from several incidents.
public struct SelectedCamera: Sendable, Codable, Equatable {
    public var id: String
    public var owner: String
    public var kind: CameraKind
    public var placeType: String
    public var position: GeoPoint?
    public var distanceMeters: Double
    public var reason: String
    /// For a march: the window section (`ahead`, `occupied`, `behind`, `side_street`, `arrival`, `fallback`).
    public var section: String?
    /// For a march: the camera's (or its junction's) distance along the route.
    public var alongMeters: Double?

    public static let confidentialDistanceStep = 500.0

    /// Applies the confidentiality rule: the exact position and distance only for public cameras.
    init(_ camera: MarchCamera) {
        self.init(
            id: camera.camera.id, owner: camera.camera.owner, kind: camera.camera.kind, placeType: camera.camera.placeType,
            position: camera.camera.position, confidentiality: camera.camera.confidentiality, distanceMeters: camera.distanceMeters,
            reason: "march_window", section: camera.section.rawValue, alongMeters: camera.alongMeters)
    }

    init(
        id: String, owner: String, kind: CameraKind, placeType: String, position: GeoPoint,
        confidentiality: LocationConfidentiality, distanceMeters: Double, reason: String,
        section: String? = nil, alongMeters: Double? = nil
    ) {
        self.id = id
        self.section = section
        self.alongMeters = alongMeters
        self.owner = owner
        self.kind = kind
        self.placeType = placeType
        self.reason = reason
        if confidentiality == .confidential {
            self.position = nil
            self.distanceMeters = (distanceMeters / Self.confidentialDistanceStep).rounded(.up) * Self.confidentialDistanceStep
        } else {
            self.position = position
            self.distanceMeters = distanceMeters
        }
    }
}

extension SelectedCamera {
    /// A camera a selection found, as an agency that may see it learns it: the confidentiality
    /// rule applied (no position, the distance rounded up to 500 m, for a confidential camera).
    public init(seen match: CameraMatch) {
        let camera = match.camera
        self.init(
            id: camera.id, owner: camera.owner, kind: camera.kind, placeType: camera.placeType, position: camera.position,
            confidentiality: camera.confidentiality, distanceMeters: match.distanceMeters, reason: match.reason)
    }
}

/// The full current state of an incident: what a late joiner starts from.
public struct IncidentSnapshot: Sendable, Codable, Equatable {
    public var incident: Incident
    public var cameras: [SelectedCamera]
    /// For a march: its declared route.
    public var route: GeoJSONGeometry?
    /// For an incident defined by a perimeter: the polygon.
    public var area: GeoJSONGeometry?
    /// The incidents that split off this one.
    public var children: [Int64]

    public init(
        incident: Incident, cameras: [SelectedCamera], route: GeoJSONGeometry? = nil, area: GeoJSONGeometry? = nil, children: [Int64] = []
    ) {
        self.incident = incident
        self.cameras = cameras
        self.route = route
        self.area = area
        self.children = children
    }
}

/// One journalled change, as published on the incident's channel: the cameras added and
/// removed, never the whole list again.
public struct IncidentChange: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case opened
        /// The selection was released: the incident was closed or cancelled.
        case closed
        /// Details or status changed (`fields` says which).
        case updated
        /// The lead agency or the commander changed.
        case handedOver = "handed-over"
        /// A grant that concerns the incident's agencies was created, revoked or expired: what
        /// each agency may see of the selection may have changed.
        case accessChanged = "access-changed"
        /// A march's head or tail moved.
        case moved
        /// A point incident's centre or radius, or a perimeter, was redrawn.
        case redrawn
    }

    public var incidentId: Int64
    public var sequence: Int64
    public var at: Date
    public var actor: String
    public var change: Kind
    public var incident: Incident
    public var added: [SelectedCamera]
    public var removed: [String]
    /// Cameras still selected whose march section changed.
    public var relabelled: [SelectedCamera] = []
    /// What the march engine noticed: `head_left_route`, `head_back_on_route`, `arrival_near`.
    public var events: [String] = []
    /// For `updated` and `handed-over`: the members that changed (`status`, `severity`, `commander`, …).
    public var fields: [String] = []
}
