import Bus
import ErrorVocabulary
import Geo
import Incidents
import Streams

/// The codes the coordinator and the relays answer with beyond those of the library modules
/// (`IncidentErrorCode`, `GeoErrorCode`, `MediaErrorCode`) and of the bus itself
/// (`BusProtocol.ErrorBody.Code`). Each is explained in `docs/protocol.md`.
public enum ReplyCode: String, ErrorCode {
    case cameraUnavailable = "camera_unavailable"
    case footageUnavailable = "footage_unavailable"
    case internalError = "internal_error"
    case linksUnavailable = "links_unavailable"
    case namedUserRequired = "named_user_required"
    case notCoordinator = "not_coordinator"
    case notOwnAgency = "not_own_agency"
    case notOwner = "not_owner"
    case notParticipant = "not_participant"
    case relayInvalid = "relay_invalid"
    case relayUnknown = "relay_unknown"
    case requestReplayed = "request_replayed"
    case roleRequired = "role_required"
    case ticketInvalid = "ticket_invalid"
    case unknownOperation = "unknown_operation"
    case viewNotFound = "view_not_found"
}

extension BusProtocol.ErrorBody {
    public init(_ code: ReplyCode, message: String, field: String? = nil) {
        self.init(code: code.rawValue, message: message, field: field)
    }

    /// How any error goes out in a reply: one of the library modules or of the bus with its
    /// code; any other as `internal_error` with `fallback`'s message (the caller logs the error).
    public init(replying error: any Error, fallback: String) {
        self = BusProtocol.ErrorBody(coded: error) ?? BusProtocol.ErrorBody(.internalError, message: fallback)
    }

    /// An error of the library modules or of the bus, with its code; nil for any other error.
    public init?(coded error: any Error) {
        switch error {
        case let error as BusProtocol.ErrorBody: self = error
        case let error as any StableError: self.init(code: error.code, message: error.message, field: error.field)
        default: return nil
        }
    }
}
