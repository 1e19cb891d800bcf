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
    case notLeader = "not_leader"
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
        if Database.isLostLeadership(error) {
            self = Self.notLeader(leader: nil)
            return
        }
        // Any operation that meets a database it cannot use (a full disk, say) says so, as
        // incident changes always have; an audited read then answers nothing, since its
        // record could not be kept.
        if Database.isStorageFailure(error) {
            self.init(code: IncidentErrorCode.storageFailure.rawValue, message: "the server could not use its database; nothing was done: \(error)")
            return
        }
        self = BusProtocol.ErrorBody(coded: error) ?? BusProtocol.ErrorBody(.internalError, message: fallback)
    }

    /// The answer of a coordinator that does not lead its cluster (a standby, or one that has
    /// just lost the lead): nothing was done; ask the leader, at `leader` when it is known.
    public static func notLeader(leader: BusProtocol.CoordinatorEndpoints?) -> Self {
        var body = BusProtocol.ErrorBody(
            .notLeader, message: "this coordinator does not lead the cluster; nothing was done"
                + (leader.map { ": the leader is at \($0.command)" } ?? ": no leader is known yet, ask another coordinator"))
        body.leader = leader
        return body
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
