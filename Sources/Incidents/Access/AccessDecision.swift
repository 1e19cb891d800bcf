import Foundation
import Geo

/// A request for access: may `user` of `agency` use `camera` in `mode` for `incident` at `at`
/// (for footage recorded at `footageTime`, when playing back or exporting)?
public struct AccessRequest: Sendable, Equatable {
    public var agency: String
    public var user: String?
    public var camera: String
    public var mode: AccessMode
    public var incident: Int64?
    public var at: Date
    public var footageTime: Date?
    /// The prosecutor's decision that allows reading police footage older than one month.
    public var prosecutorReference: String?

    public init(
        agency: String, user: String? = nil, camera: String, mode: AccessMode, incident: Int64? = nil, at: Date = Date(),
        footageTime: Date? = nil, prosecutorReference: String? = nil
    ) {
        self.agency = agency
        self.user = user
        self.camera = camera
        self.mode = mode
        self.incident = incident
        self.at = at
        self.footageTime = footageTime
        self.prosecutorReference = prosecutorReference
    }

    /// Whether the request reads recorded footage (and so needs a footage time).
    public var readsRecording: Bool { mode == .playback || mode == .export }
}

/// The answer: allowed under a grant (or as the camera's owner), or denied with a stable reason.
public enum AccessDecision: Sendable, Equatable {
    /// `grant` is the grant's id, or `owner` for an agency's own cameras.
    case allow(grant: String)
    /// `code` is one of `IncidentErrorCode`, as written (``refused(_:message:)`` makes it).
    case deny(code: String, message: String)

    /// A refusal with a code of the decision function's vocabulary.
    public static func refused(_ code: IncidentErrorCode, message: String) -> AccessDecision {
        .deny(code: code.rawValue, message: message)
    }

    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }
}

/// How large an incident is: the circle that holds its geometry, and its area.
public struct IncidentExtent: Sendable, Equatable {
    public var radiusMeters: Double
    public var areaSquareMeters: Double

    public init(radiusMeters: Double, areaSquareMeters: Double) {
        self.radiusMeters = radiusMeters
        self.areaSquareMeters = areaSquareMeters
    }
}

/// What the decision function needs to know of the world at the time of a request.
public struct AccessFacts: Sendable {
    public var camera: Camera?
    /// The grants from the camera's owner to the requesting agency.
    public var grants: [Grant]
    /// The incident the request is made for, if any.
    public var incident: Incident?
    /// Whether the camera is in that incident's current selection.
    public var cameraInIncidentSelection: Bool
    /// How large that incident is, for the grants' ``IncidentLimits``.
    public var incidentExtent: IncidentExtent?
    /// The open (non-exercise) incidents the requesting agency leads or takes part in, by id.
    public var agencyOpenIncidents: [Int64]
    /// The roles of the named user who opened that incident (nil: opened with an agency's key).
    public var incidentOpenerRoles: [String]?
    /// Roles of the requesting user, when a user is named and known.
    public var userRoles: [String]?
    public var userAgency: String?
    public var userClearanceExpiry: Date?
    /// Whether the user is active, suspended or removed (nil without a user).
    public var userStatus: UserStatus?
    /// The retention of the camera's owner.
    public var retention: RetentionPolicy?
    /// Whether an active evidence hold covers the camera at the footage time.
    public var footageHeld: Bool

    public init(camera: Camera?, grants: [Grant], incident: Incident?, cameraInIncidentSelection: Bool,
                userRoles: [String]? = nil, userAgency: String? = nil, userClearanceExpiry: Date? = nil, userStatus: UserStatus? = nil,
                retention: RetentionPolicy? = nil, footageHeld: Bool = false, incidentExtent: IncidentExtent? = nil,
                agencyOpenIncidents: [Int64] = [], incidentOpenerRoles: [String]? = nil) {
        self.incidentExtent = incidentExtent
        self.agencyOpenIncidents = agencyOpenIncidents
        self.incidentOpenerRoles = incidentOpenerRoles
        self.retention = retention
        self.footageHeld = footageHeld
        self.camera = camera
        self.grants = grants
        self.incident = incident
        self.cameraInIncidentSelection = cameraInIncidentSelection
        self.userRoles = userRoles
        self.userAgency = userAgency
        self.userClearanceExpiry = userClearanceExpiry
        self.userStatus = userStatus
    }
}

/// The one decision function: nothing else decides access. Pure: it sees only `facts`.
///
/// First the footage rules hold for everyone (``footageDenial(_:facts:)``). Then an agency may
/// use its own cameras. Otherwise some grant from the camera's owner to the
/// agency must hold on every point: not revoked, inside its validity window, naming the user
/// or one of the user's roles (when it names any), allowing the mode, covering the camera
/// (scope), covering the footage time (playback and export), and meeting its condition. When
/// none does, the answer is the reason of the grant that came closest (checks in that order),
/// or `no_grant`. Grants are tried in id order, so the answer is deterministic.
public enum AccessControl {
    /// - Parameter areaContains: whether a grant's scope polygon contains a position.
    public static func decide(_ request: AccessRequest, facts: AccessFacts, areaContains: (Grant, GeoPoint) -> Bool) -> AccessDecision {
        guard let camera = facts.camera else {
            return .refused(.cameraUnknown, message: "no camera \(request.camera)")
        }
        if let user = request.user {
            guard facts.userAgency == request.agency else {
                return .refused(.userUnknown, message: "\(user) is not a user of \(request.agency)")
            }
            switch facts.userStatus ?? .active {
            case .active: break
            case .suspended: return .refused(.userSuspended, message: "\(user) is suspended")
            case .removed: return .refused(.userRemoved, message: "\(user) was removed")
            }
            if let expiry = facts.userClearanceExpiry, expiry <= request.at {
                return .refused(.clearanceExpired, message: "the clearance of \(user) expired")
            }
        }
        // A request made under an incident is for the agencies coordinating it only: citing an
        // incident one takes no part in is not a way to its grants.
        if let id = request.incident {
            guard let incident = facts.incident, incident.id == id else {
                return .refused(.incidentNotFound, message: "there is no incident \(id)")
            }
            guard incident.leadAgency == request.agency || incident.details.participants.contains(request.agency) else {
                return .refused(.notParticipant, message: "\(request.agency) does not take part in incident \(id)")
            }
        }
        if let denial = footageDenial(request, facts: facts) { return denial }
        if camera.owner == request.agency { return .allow(grant: "owner") }

        var closest: (depth: Int, code: IncidentErrorCode, message: String)?
        func fail(_ depth: Int, _ code: IncidentErrorCode, _ message: String) {
            if closest == nil || depth > closest!.depth { closest = (depth, code, message) }
        }
        for grant in facts.grants.sorted(by: { $0.id < $1.id }) where grant.owner == camera.owner && grant.agency == request.agency {
            if let revoked = grant.revokedAt, revoked <= request.at { fail(0, .grantRevoked, "grant \(grant.id) was revoked"); continue }
            if request.at < grant.validFrom { fail(1, .grantNotYetValid, "grant \(grant.id) starts later"); continue }
            if let until = grant.validUntil, request.at >= until { fail(1, .grantExpired, "grant \(grant.id) expired"); continue }
            if let users = grant.users {
                let named = request.user.map { users.contains($0) } ?? false
                let byRole = facts.userRoles?.contains(where: users.contains) ?? false
                if !named && !byRole { fail(2, .userNotGranted, "grant \(grant.id) names other users"); continue }
            }
            if !grant.modes.contains(request.mode) { fail(3, .modeNotGranted, "grant \(grant.id) does not allow \(request.mode.rawValue)"); continue }
            if !covers(grant, camera, areaContains: areaContains) { fail(4, .outsideScope, "camera \(camera.id) is outside the scope of grant \(grant.id)"); continue }
            if request.mode == .playback || request.mode == .export, let footage = request.footageTime {
                if let from = grant.footageFrom, footage < from { fail(5, .footageOutsideWindow, "footage before the window of grant \(grant.id)"); continue }
                if let until = grant.footageUntil, footage > until { fail(5, .footageOutsideWindow, "footage after the window of grant \(grant.id)"); continue }
            }
            if let problem = unmet(grant.condition, request: request, facts: facts) { fail(6, .conditionUnmet, "grant \(grant.id): \(problem)"); continue }
            if grant.condition.isIncidentBound, let limits = grant.limits, let (code, problem) = exceeded(limits, request: request, facts: facts) {
                fail(7, code, "grant \(grant.id): \(problem)")
                continue
            }
            return .allow(grant: grant.id)
        }
        guard let closest else {
            return .refused(.noGrant, message: "\(camera.owner) has granted \(request.agency) no access to its cameras")
        }
        return .refused(closest.code, message: closest.message)
    }

    /// The footage rules, for everyone including the owner: a recording needs its time; footage past
    /// its retention no longer exists unless an evidence hold kept it; police footage older than a
    /// month needs a prosecutor's decision.
    static func footageDenial(_ request: AccessRequest, facts: AccessFacts) -> AccessDecision? {
        guard request.readsRecording else { return nil }
        guard let footage = request.footageTime else {
            return .refused(.footageTimeRequired, message: "\(request.mode.rawValue) needs the footage time")
        }
        guard footage <= request.at else { return .refused(.footageInFuture, message: "footage cannot be recorded after now") }
        guard let retention = facts.retention else { return nil }
        if retention.deletion(of: footage) <= request.at && !facts.footageHeld {
            return .refused(.footageExpired, message: "footage older than \(retention.retentionDays) days is deleted and no evidence hold kept it")
        }
        if retention.needsProsecutor(footage: footage, at: request.at), (request.prosecutorReference ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            return .refused(.prosecutorDecisionRequired,
                message: "police footage older than \(retention.judicialOnlyAfterDays ?? 30) days is readable only with a prosecutor's decision reference")
        }
        return nil
    }

    static func covers(_ grant: Grant, _ camera: Camera, areaContains: (Grant, GeoPoint) -> Bool) -> Bool {
        let scope = grant.scope
        if let cameras = scope.cameras, !cameras.contains(camera.id) { return false }
        if let tag = scope.tag, !camera.tags.contains(tag) { return false }
        if let kinds = scope.kinds, !kinds.contains(camera.kind) { return false }
        if let placeTypes = scope.placeTypes, !placeTypes.contains(camera.placeType) { return false }
        if scope.area != nil, !areaContains(grant, camera.position) { return false }
        return true
    }

    /// Why a condition does not hold, or nil when it does.
    static func unmet(_ condition: GrantCondition, request: AccessRequest, facts: AccessFacts) -> String? {
        switch condition {
        case .always:
            return nil
        case .whileIncidentOpen(let kinds, _):
            guard let incident = facts.incident, incident.id == request.incident else { return "only for an open incident" }
            guard incident.status == .open else { return "incident \(incident.id) is not open" }
            // An owner who shares during emergencies has not agreed to training on its cameras.
            guard !incident.exercise else { return "incident \(incident.id) is an exercise" }
            if let kinds, !kinds.contains(incident.kind) { return "only for incidents of kind \(kinds.map(\.rawValue).joined(separator: ", "))" }
            // Always the incident's own cameras (`camera_in_selection` false is refused when a grant is made).
            if !facts.cameraInIncidentSelection { return "the camera is not selected by incident \(incident.id)" }
            return nil
        case .incident(let id):
            guard let incident = facts.incident, incident.id == id, request.incident == id else { return "only for incident \(id)" }
            guard incident.status == .open else { return "incident \(id) is not open" }
            return facts.cameraInIncidentSelection ? nil : "the camera is not selected by incident \(id)"
        }
    }

    /// Which of an incident-bound grant's limits the request's incident exceeds, with its code.
    static func exceeded(_ limits: IncidentLimits, request: AccessRequest, facts: AccessFacts) -> (IncidentErrorCode, String)? {
        guard let incident = facts.incident else { return nil }
        if let largest = limits.maxRadiusMeters, (facts.incidentExtent?.radiusMeters ?? .infinity) > largest {
            return (.incidentTooLarge, "incident \(incident.id) is larger than the \(Int(largest)) m radius the grant allows")
        }
        if let largest = limits.maxAreaSquareMeters, (facts.incidentExtent?.areaSquareMeters ?? .infinity) > largest {
            return (.incidentTooLarge, "incident \(incident.id) covers more than the \(Int(largest)) m² the grant allows")
        }
        if let most = limits.maxOpenIncidents, !facts.agencyOpenIncidents.prefix(max(0, most)).contains(incident.id) {
            return (.incidentLimitReached, "the grant applies under \(most) open incidents of \(request.agency) at once, the oldest ones")
        }
        if let roles = limits.openerRoles, !(facts.incidentOpenerRoles ?? []).contains(where: roles.contains) {
            return (.openerRoleNotGranted, "incident \(incident.id) was not opened by a user with the role \(roles.joined(separator: " or "))")
        }
        return nil
    }
}
