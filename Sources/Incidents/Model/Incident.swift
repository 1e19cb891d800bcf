import Foundation
import Geo

/// What an incident is about (the brief's kinds; CAP categories are mapped on export).
public enum IncidentKind: String, Sendable, Codable, CaseIterable {
    case fire, medical, traffic
    case publicOrder = "public-order"
    case demonstration, crisis, other
}

/// Where an incident is in its life. This slice has `open` and `closed`; the full life cycle
/// (draft, on hold, archived, cancelled) comes with the incidents issue.
public enum IncidentStatus: String, Sendable, Codable {
    case open, closed
}

/// An incident as stored: a point and radius, the agency that leads it, and the sequence
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

/// The full current state of an incident: what a late joiner starts from.
public struct IncidentSnapshot: Sendable, Codable, Equatable {
    public var incident: Incident
    public var cameras: [SelectedCamera]
    /// For a march: its declared route.
    public var route: GeoJSONGeometry?
    /// For an incident defined by a perimeter: the polygon.
    public var area: GeoJSONGeometry?

    public init(incident: Incident, cameras: [SelectedCamera], route: GeoJSONGeometry? = nil, area: GeoJSONGeometry? = nil) {
        self.incident = incident
        self.cameras = cameras
        self.route = route
        self.area = area
    }
}

/// One journalled change, as published on the incident's channel: the cameras added and
/// removed, never the whole list again.
public struct IncidentChange: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case opened, closed
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
}
