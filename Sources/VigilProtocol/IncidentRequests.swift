import Foundation
import Incidents
import Geo

// The bodies of the incident operations on the bus (docs/protocol.md), shared by the server,
// which decodes and checks them, and the clients, which encode them.

/// A position as it travels: `{"lat": …, "lon": …}`, checked only when used so that a bad one
/// gets its own error code rather than a generic decoding error.
public struct WirePoint: Sendable, Codable {
    public var lat: Double
    public var lon: Double

    public init(_ point: GeoPoint) {
        lat = point.lat
        lon = point.lon
    }

    func point(field: String) throws(IncidentError) -> GeoPoint {
        do {
            return try GeoPoint(lat: lat, lon: lon, field: field)
        } catch {
            throw IncidentError(error)
        }
    }
}

/// A march position as it travels: `{"lat": …, "lon": …}` or `{"along_meters": …}`.
public struct WirePosition: Sendable, Codable {
    public var lat: Double?
    public var lon: Double?
    public var alongMeters: Double?

    public init(_ position: MarchPosition) {
        switch position {
        case .point(let point): (lat, lon) = (point.lat, point.lon)
        case .measure(let metres): alongMeters = metres
        }
    }

    public func position(field: String) throws(IncidentError) -> MarchPosition {
        if let alongMeters, lat == nil, lon == nil { return .measure(alongMeters) }
        guard let lat, let lon, alongMeters == nil else {
            throw IncidentError(.badRequest, message: "a position is {lat, lon} or {along_meters}", field: field)
        }
        return .point(try WirePoint(lat: lat, lon: lon).point(field: field))
    }
}

extension WirePoint {
    init(lat: Double, lon: Double) {
        self.lat = lat
        self.lon = lon
    }
}

/// The body of `incident.open`: a circle (`at`, `radius_meters`), a perimeter (`area`), or a
/// march (`route`, `head`, `tail`, optional `march` settings).
public struct OpenIncidentBody: Sendable, Codable {
    public var kind: String
    public var at: WirePoint?
    public var radiusMeters: Double?
    public var area: GeoJSONGeometry?
    /// The incident is on the cameras that see this point.
    public var sees: WirePoint?
    public var route: GeoJSONGeometry?
    public var head: WirePosition?
    public var tail: WirePosition?
    public var march: MarchConfiguration?
    public var title: String?
    public var exercise: Bool?
    /// Open as a draft (see ``OpenIncidentRequest/draft``).
    public var draft: Bool?
    public var details: IncidentDetailsBody?

    public init(kind: String, title: String? = nil, exercise: Bool? = nil) {
        self.kind = kind
        self.title = title
        self.exercise = exercise
    }

    /// What is asked for, checked: an incident in an area, or a march.
    public func request() throws(IncidentError) -> Either {
        guard let kind = IncidentKind(rawValue: kind) else {
            throw IncidentError(
                .kindInvalid, message: "kind must be one of \(IncidentKind.allCases.map(\.rawValue).joined(separator: ", "))",
                field: "body.kind")
        }
        let details = try (details ?? IncidentDetailsBody()).details()
        guard let route else {
            var request = OpenIncidentRequest(
                kind: kind, area: try IncidentAreaBody(at: at, radiusMeters: radiusMeters, area: area, sees: sees).incidentArea(), title: title,
                exercise: exercise)
            (request.details, request.draft) = (details, draft == true)
            return .area(request)
        }
        guard let head, let tail, at == nil, radiusMeters == nil, area == nil, sees == nil else {
            throw IncidentError(.badRequest, message: "a march has route, head and tail, and no at, radius_meters or area", field: "body.head")
        }
        var request = OpenMarchRequest(
            kind: kind, route: route, head: try head.position(field: "body.head"), tail: try tail.position(field: "body.tail"),
            configuration: march ?? MarchConfiguration(), title: title, exercise: exercise)
        (request.details, request.draft) = (details, draft == true)
        return .march(request)
    }

    public enum Either: Sendable {
        case area(OpenIncidentRequest)
        case march(OpenMarchRequest)
    }
}

/// The area members shared by `incident.open` and `incident.redraw`.
struct IncidentAreaBody {
    var at: WirePoint?
    var radiusMeters: Double?
    var area: GeoJSONGeometry?
    var sees: WirePoint?

    func incidentArea() throws(IncidentError) -> IncidentArea {
        switch (at, radiusMeters, area, sees) {
        case (let at?, let radius?, nil, nil): return .circle(center: try at.point(field: "body.at"), radiusMeters: radius)
        case (nil, nil, let polygon?, nil) where polygon.type != "Point": return .perimeter(polygon)
        case (nil, nil, nil, let point?): return .seeing(try point.point(field: "body.sees"))
        default: throw IncidentError(.badRequest, message: "give at with radius_meters, or area (a polygon), or sees", field: "body")
        }
    }
}

/// The body of `incident.redraw`: a new circle or perimeter.
public struct RedrawIncidentBody: Sendable, Codable {
    public var incident: Int64
    public var at: WirePoint?
    public var radiusMeters: Double?
    public var area: GeoJSONGeometry?
    public var sees: WirePoint?

    public init(incident: Int64, area: IncidentArea) {
        self.incident = incident
        switch area {
        case .circle(let center, let radius): (at, radiusMeters) = (WirePoint(center), radius)
        case .perimeter(let polygon): self.area = polygon
        case .seeing(let point): sees = WirePoint(point)
        }
    }

    public func incidentArea() throws(IncidentError) -> IncidentArea {
        try IncidentAreaBody(at: at, radiusMeters: radiusMeters, area: area, sees: sees).incidentArea()
    }
}

/// The body of `incident.move`.
public struct MoveIncidentBody: Sendable, Codable {
    public var incident: Int64
    public var head: WirePosition
    public var tail: WirePosition

    public init(incident: Int64, head: MarchPosition, tail: MarchPosition) {
        self.incident = incident
        self.head = WirePosition(head)
        self.tail = WirePosition(tail)
    }
}

/// An incident's details as they travel: CAP words as strings, so that a wrong one gets its own
/// error code (`severity_invalid`, …) naming the allowed values.
public struct IncidentDetailsBody: Sendable, Codable, Equatable {
    public var severity: String?
    public var urgency: String?
    public var certainty: String?
    public var participants: [String]?
    public var commander: String?
    public var externalReferences: [String: String]?
    public var parent: Int64?

    public init(
        severity: String? = nil, urgency: String? = nil, certainty: String? = nil, participants: [String]? = nil, commander: String? = nil,
        externalReferences: [String: String]? = nil, parent: Int64? = nil
    ) {
        self.severity = severity
        self.urgency = urgency
        self.certainty = certainty
        self.participants = participants
        self.commander = commander
        self.externalReferences = externalReferences
        self.parent = parent
    }

    /// The details of a new incident (unset members take their defaults).
    func details() throws(IncidentError) -> IncidentDetails {
        let update = try update(status: nil, title: nil)
        return IncidentDetails(
            severity: update.severity ?? .unknown, urgency: update.urgency ?? .unknown, certainty: update.certainty ?? .unknown,
            participants: Array(Set(update.participants ?? [])).sorted(), commander: update.commander,
            externalReferences: (update.externalReferences ?? [:]).filter { !$0.value.isEmpty }, parent: update.parent)
    }

    func update(status: String?, title: String?) throws(IncidentError) -> IncidentUpdate {
        func word<T: RawRepresentable & CaseIterable>(
            _ text: String?, _ type: T.Type, _ field: String, _ code: IncidentErrorCode
        ) throws(IncidentError) -> T? where T.RawValue == String {
            guard let text else { return nil }
            guard let value = T(rawValue: text) else {
                throw IncidentError(code, message: "\(field) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))", field: "body.\(field)")
            }
            return value
        }
        return IncidentUpdate(
            status: try word(status, IncidentStatus.self, "status", .statusInvalid), title: title,
            severity: try word(severity, Severity.self, "severity", .severityInvalid), urgency: try word(urgency, Urgency.self, "urgency", .urgencyInvalid),
            certainty: try word(certainty, Certainty.self, "certainty", .certaintyInvalid),
            participants: participants, commander: commander, externalReferences: externalReferences, parent: parent)
    }
}

/// The body of `incident.update`: `incident`, and any of `status`, `title` and the detail members, flat.
public struct UpdateIncidentBody: Sendable, Codable {
    public var incident: Int64
    public var status: String?
    public var title: String?
    public var details: IncidentDetailsBody

    public init(incident: Int64, status: String? = nil, title: String? = nil, details: IncidentDetailsBody = IncidentDetailsBody()) {
        self.incident = incident
        self.status = status
        self.title = title
        self.details = details
    }

    private enum CodingKeys: String, CodingKey {
        case incident, status, title
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        incident = try container.decode(Int64.self, forKey: .incident)
        status = try container.decodeIfPresent(String.self, forKey: .status)
        title = try container.decodeIfPresent(String.self, forKey: .title)
        details = try IncidentDetailsBody(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(incident, forKey: .incident)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(title, forKey: .title)
        try details.encode(to: encoder)
    }

    public func update() throws(IncidentError) -> IncidentUpdate {
        try details.update(status: status, title: title)
    }
}

/// The body of `incident.handover`: a new lead agency, a new commander, or both.
public struct HandOverIncidentBody: Sendable, Codable {
    public var incident: Int64
    public var leadAgency: String?
    public var commander: String?

    public init(incident: Int64, leadAgency: String?, commander: String?) {
        self.incident = incident
        self.leadAgency = leadAgency
        self.commander = commander
    }
}

/// The body of `incident.snapshot`. A follower taking a new snapshot after a gap (or after
/// missed heartbeats) gives the last sequence it had, so that the server can count what its
/// subscription lost: XPUB drops for a slow subscriber without telling anyone.
public struct SnapshotRequest: Sendable, Codable {
    public var incident: Int64
    public var resyncAfter: Int64?

    public init(incident: Int64, resyncAfter: Int64? = nil) {
        self.incident = incident
        self.resyncAfter = resyncAfter
    }
}

/// The body of `incident.close`.
public struct IncidentReference: Sendable, Codable {
    public var incident: Int64

    public init(incident: Int64) {
        self.incident = incident
    }
}

/// The body of `grant.revoke`.
public struct RevokeGrantBody: Sendable, Codable {
    public var grant: String
    public var reason: String

    public init(grant: String, reason: String) {
        self.grant = grant
        self.reason = reason
    }
}

/// The body of `access.check`: may the asking agency (and user) use this camera so?
public struct AccessCheckBody: Sendable, Codable {
    public var camera: String
    public var mode: AccessMode
    public var incident: Int64?
    public var user: String?
    public var footageTime: Date?
    public var prosecutorReference: String?

    public init(camera: String, mode: AccessMode, incident: Int64? = nil, user: String? = nil, footageTime: Date? = nil) {
        self.camera = camera
        self.mode = mode
        self.incident = incident
        self.user = user
        self.footageTime = footageTime
    }
}

/// The body of `view.start`: one camera in one mode, with the justification every consultation needs.
public struct ViewStartBody: Sendable, Codable {
    public var camera: String
    public var mode: AccessMode
    /// `{"reason": …, "text": …, "incident": …}`; a request without it is refused (`justification_required`).
    public var justification: WireJustification?
    public var footageTime: Date?
    public var prosecutorReference: String?
    /// Who receives a disclosure (an export handed to a prosecutor, a court).
    public var recipient: String?

    public init(camera: String, mode: AccessMode, justification: WireJustification?, footageTime: Date? = nil, prosecutorReference: String? = nil) {
        self.camera = camera
        self.mode = mode
        self.justification = justification
        self.footageTime = footageTime
        self.prosecutorReference = prosecutorReference
    }

    /// The consultation asked for by `agency` and `user`.
    public func consultation(agency: String, user: String?, source: String?) throws(IncidentError) -> Consultation {
        Consultation(
            request: AccessRequest(
                agency: agency, user: user, camera: camera, mode: mode, incident: justification?.incident, footageTime: footageTime,
                prosecutorReference: prosecutorReference),
            justification: try justification?.justification(), recipient: recipient, source: source)
    }
}

/// A justification as it travels, the reason as text so that a wrong one gets `reason_invalid`.
public struct WireJustification: Sendable, Codable {
    public var reason: String
    public var text: String
    public var incident: Int64

    public init(reason: String, text: String, incident: Int64) {
        self.reason = reason
        self.text = text
        self.incident = incident
    }

    public func justification() throws(IncidentError) -> Justification {
        guard let code = ReasonCode(rawValue: reason) else {
            throw IncidentError(
                .reasonInvalid, message: "reason must be one of \(ReasonCode.allCases.map(\.rawValue).joined(separator: ", "))",
                field: "body.justification.reason")
        }
        return Justification(reason: code, text: text, incident: incident)
    }
}

/// The body of `view.stop`.
public struct ViewStopBody: Sendable, Codable {
    public var view: String

    public init(view: String) {
        self.view = view
    }
}

/// The body of `hold.release`.
public struct ReleaseHoldBody: Sendable, Codable {
    public var hold: Int64
    public var reason: String

    public init(hold: Int64, reason: String) {
        self.hold = hold
        self.reason = reason
    }
}

/// The body of `hold.list` and `view.list`: one incident, or none for all that concern the agency.
public struct IncidentFilter: Sendable, Codable {
    public var incident: Int64?

    public init(incident: Int64? = nil) {
        self.incident = incident
    }
}

/// The result of `access.check`.
public struct AccessCheckResult: Sendable, Codable, Equatable {
    public var allowed: Bool
    public var grant: String?
    public var code: String?
    public var message: String?

    public init(_ decision: AccessDecision) {
        switch decision {
        case .allow(let grant): (allowed, self.grant) = (true, grant)
        case .deny(let code, let message): (allowed, self.code, self.message) = (false, code, message)
        }
    }
}

/// The body of `audit.query`: entries in a time range (ISO 8601, inclusive), a page at a time.
public struct AuditQueryBody: Sendable, Codable {
    public static let maximumLimit = 500

    public var from: String?
    public var to: String?
    /// Entries after this sequence number (the `next_after` of the previous page).
    public var after: Int64?
    public var limit: Int?
    /// Only the entries that name this camera, user or incident (all that are given).
    public var camera: String?
    public var user: String?
    public var incident: Int64?

    public init(from: String? = nil, to: String? = nil, after: Int64? = nil, limit: Int? = nil, camera: String? = nil, user: String? = nil, incident: Int64? = nil) {
        self.from = from
        self.to = to
        self.after = after
        self.limit = limit
        (self.camera, self.user, self.incident) = (camera, user, incident)
    }

    /// What the entries must name.
    public var filter: AuditFilter { AuditFilter(camera: camera, user: user, incident: incident) }

    /// The page size asked for, checked.
    public func pageSize() throws(IncidentError) -> Int {
        let limit = limit ?? 200
        guard (1...Self.maximumLimit).contains(limit) else {
            throw IncidentError(.limitInvalid, message: "limit is 1 to \(Self.maximumLimit)", field: "body.limit")
        }
        return limit
    }
}

/// The result of `audit.query`: a page of entries, and where the next page starts (nil at the end).
public struct AuditQueryResult: Sendable, Codable {
    public var entries: [AuditEntry]
    public var nextAfter: Int64?

    public init(entries: [AuditEntry], nextAfter: Int64?) {
        self.entries = entries
        self.nextAfter = nextAfter
    }
}

/// The reply to `incident.list`: the live incidents the asking agency leads or takes part in.
public struct IncidentListResult: Sendable, Codable {
    public var incidents: [Incident]

    public init(incidents: [Incident]) {
        self.incidents = incidents
    }
}
