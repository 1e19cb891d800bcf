import ErrorVocabulary
import Geo

/// An error an incident operation returns to its caller: a stable code, a message, the field at
/// fault. Its code is one of ``IncidentErrorCode``, or of `GeoErrorCode` for an error of the
/// geospatial engine passed on.
public typealias IncidentError = CodedError<IncidentErrorCode>

/// The codes of incident operations, grants, consultations, users and the decision function.
public enum IncidentErrorCode: String, ErrorCode {
    case agencyUnknown = "agency_unknown"
    case badRequest = "bad_request"
    case cameraUnknown = "camera_unknown"
    case camerasInvalid = "cameras_invalid"
    case certaintyInvalid = "certainty_invalid"
    case checkpointInvalid = "checkpoint_invalid"
    case clearanceExpired = "clearance_expired"
    case commanderInvalid = "commander_invalid"
    case conditionUnmet = "condition_unmet"
    case footageExpired = "footage_expired"
    case footageInFuture = "footage_in_future"
    case footageOutsideWindow = "footage_outside_window"
    case footageTimeRequired = "footage_time_required"
    case grantExists = "grant_exists"
    case grantExpired = "grant_expired"
    case grantInvalid = "grant_invalid"
    case grantNotFound = "grant_not_found"
    case grantNotYetValid = "grant_not_yet_valid"
    case grantRevoked = "grant_revoked"
    case holdInvalid = "hold_invalid"
    case holdNotFound = "hold_not_found"
    case holdReleased = "hold_released"
    case incidentClosed = "incident_closed"
    case incidentIsMarch = "incident_is_march"
    case incidentLimitReached = "incident_limit_reached"
    case incidentNotFound = "incident_not_found"
    case incidentNotMarch = "incident_not_march"
    case incidentTooLarge = "incident_too_large"
    case justificationInvalid = "justification_invalid"
    case justificationRequired = "justification_required"
    case keyInUse = "key_in_use"
    case keyInvalid = "key_invalid"
    case kindInvalid = "kind_invalid"
    case limitInvalid = "limit_invalid"
    case marchInvalid = "march_invalid"
    case modeNotGranted = "mode_not_granted"
    case namedUserRequired = "named_user_required"
    case noGrant = "no_grant"
    case notHoldAgency = "not_hold_agency"
    case notIncidentAgency = "not_incident_agency"
    case notLeadAgency = "not_lead_agency"
    case notOwner = "not_owner"
    case notParticipant = "not_participant"
    case notYourView = "not_your_view"
    case nothingChanged = "nothing_changed"
    case openerRoleNotGranted = "opener_role_not_granted"
    case outsideScope = "outside_scope"
    case ownerUnknown = "owner_unknown"
    case parentInvalid = "parent_invalid"
    case prosecutorDecisionRequired = "prosecutor_decision_required"
    case reasonInvalid = "reason_invalid"
    case reasonRequired = "reason_required"
    case referenceInvalid = "reference_invalid"
    case severityInvalid = "severity_invalid"
    case statusInvalid = "status_invalid"
    case statusTransitionInvalid = "status_transition_invalid"
    case storageFailure = "storage_failure"
    case titleTooLong = "title_too_long"
    case urgencyInvalid = "urgency_invalid"
    case userExists = "user_exists"
    case userInvalid = "user_invalid"
    case userNotGranted = "user_not_granted"
    case userRemoved = "user_removed"
    case userStatusUnchanged = "user_status_unchanged"
    case userSuspended = "user_suspended"
    case userUnknown = "user_unknown"
    case viewNotFound = "view_not_found"
    case viewStopped = "view_stopped"
}

extension IncidentError {
    static func notFound(_ id: Int64) -> IncidentError {
        IncidentError(.incidentNotFound, message: "there is no incident \(id)", field: "incident")
    }
}
