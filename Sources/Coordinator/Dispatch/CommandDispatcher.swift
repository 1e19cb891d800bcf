import Bus
import Foundation
import Geo
import Incidents
import Logging
import MediaRelay
import Metrics
import VigilProtocol

/// Turns bus requests into incident operations, replies only after the change is committed,
/// then publishes the change on the incident's channel.
public struct CommandDispatcher: Sendable {
    let bus: BusServer
    let incidents: IncidentService
    let access: AccessService
    public let holds: EvidenceHolds
    let users: UserDirectory
    let clientKeys: ClientKeys
    let publisher: ChannelPublisher
    let replays = ReplayGuard()
    let audit: AuditStore
    /// The Ed25519 key (base64) the server signs audit checkpoints with.
    let auditKey: String
    let registry: RegistryStore
    let engine: CameraEngine
    /// Recording's catalog and evidence exports; nil when the server records nothing.
    let footage: FootageService?
    /// The operator console's login codes.
    let consoleCodes: ConsoleCodes
    /// Reloads the registry into the index and the relay, and recomputes open selections (the
    /// caller already holds the server's serial gate).
    let reloadRegistry: @Sendable () async throws -> Void
    let logger: Logger

    /// A request with its header as ``RequestService`` read it (once, to route it).
    struct Routed: Sendable {
        let request: BusRequest
        let header: Result<BusProtocol.RequestHeader, BusProtocol.ErrorBody>

        init(_ request: BusRequest) {
            self.request = request
            header = Result { () throws(BusProtocol.ErrorBody) in try BusProtocol.decodeHeader(request.payload) }
        }

        /// Whether it is one of ``readOnlyOperations`` (an unreadable request is answered in turn, as a change).
        var isReadOnly: Bool {
            (try? header.get()).flatMap { ProtocolOperation(rawValue: $0.op) }.map(CommandDispatcher.readOnlyOperations.contains) ?? false
        }
    }

    func handle(_ routed: Routed) async {
        await AuditOrigin.$current.withValue(routed.request.origin) { await answer(routed) }
    }

    private func answer(_ routed: Routed) async {
        let request = routed.request
        let header: BusProtocol.RequestHeader
        switch routed.header {
        case .success(let decoded): header = decoded
        case .failure(let error):
            bus.reply(to: request.peer, payload: BusProtocol.errorReply(id: nil, error))
            return
        }
        guard replays.firstUse(of: header.id, on: request.peer) else {
            try? await audit.append(AuditRecord(
                action: "request.replayed", agency: request.agency, user: request.user, details: ["id": header.id, "op": header.op]))
            bus.reply(to: request.peer, payload: BusProtocol.errorReply(
                id: header.id, .init(.requestReplayed, message: "request id '\(header.id)' was already used on this connection", field: "id")))
            return
        }
        let started = ContinuousClock.now
        defer { ServerMetrics.commandDuration.record(duration: ContinuousClock.now - started) }
        let reply: Data
        do {
            reply = try await perform(header, request)
        } catch {
            if BusProtocol.ErrorBody(coded: error) == nil { logger.error("request failed", metadata: ["bus.op": "\(header.op)", "error": "\(error)"]) }
            reply = BusProtocol.errorReply(id: header.id, .init(replying: error, fallback: "the server could not handle this request"))
        }
        bus.reply(to: request.peer, payload: reply)
    }

    /// Answers on the bus thread, as it is received, a request that needs nothing but itself
    /// (``BusServer/answerAtOnce(with:)``): `session.identity`, whose id is still checked against
    /// replays. Anything else, a replayed id included, is handed on (nil) to be answered, and
    /// audited, as usual.
    func answerAtOnce(_ request: BusRequest) -> Data? {
        guard let header = try? BusProtocol.decodeHeader(request.payload), header.op == ProtocolOperation.sessionIdentity.rawValue,
              replays.firstUse(of: header.id, on: request.peer)
        else { return nil }
        return Self.identityReply(header, request)
    }

    /// Who the request's key belongs to: `session.identity`'s reply.
    static func identityReply(_ header: BusProtocol.RequestHeader, _ request: BusRequest) -> Data {
        BusProtocol.successReply(id: header.id, result: ["agency": request.agency, "user": request.user])
    }

    /// The operations that change nothing but the audit log (a read may record that it
    /// happened): they need not pass the serial gate that orders changes and their events.
    static let readOnlyOperations: Set<ProtocolOperation> = [
        .sessionIdentity, .grantList, .accessCheck, .userList, .viewList, .holdList, .incidentSnapshot, .incidentList, .auditQuery, .auditVerify,
        .camerasSelect, .consoleCode,
        // An export writes files and the audit log only; its viewing copy takes seconds.
        .incidentHeadPassed, .footageExport, .footagePackage,
    ]

    private func perform(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        // Each family of operations has its own file (`CommandDispatcher+Family.swift`).
        let family = header.op.prefix(while: { $0 != "." })
        // Users' roles and keys are facts of the decision function (an owner may limit who opens
        // incidents): after a change to them, what agencies see of channels is decided afresh.
        // (A change to cameras reloads the registry, which forgets it too; reads change nothing.)
        let changesIdentities = ["session", "user", "agency"].contains(family)
            && !(ProtocolOperation(rawValue: header.op).map(Self.readOnlyOperations.contains) ?? false)
        defer { if changesIdentities { publisher.visibility.forgetAll() } }
        switch family {
        case "incident": return try await performIncidents(header, request)
        case "grant", "access", "view", "hold", "thumbnails": return try await performAccess(header, request)
        case "session", "user", "agency", "console": return try await performIdentities(header, request)
        case "camera", "cameras": return try await performCameras(header, request)
        case "audit": return try await performAudit(header, request)
        case "relay": return try await performRelays(header, request)
        case "footage": return try await performFootage(header, request)
        default: throw Self.unknownOperation(header)
        }
    }

    static func unknownOperation(_ header: BusProtocol.RequestHeader) -> BusProtocol.ErrorBody {
        BusProtocol.ErrorBody(.unknownOperation, message: "unknown operation '\(header.op)'", field: "op")
    }

    /// Lets through only the lead and participating agencies of `incident` (the rule of the
    /// channel's subscriptions); a refusal is audited as `refusal`.
    func requireParticipant(_ incident: Incident, _ request: BusRequest, refusal: String) async throws {
        guard !ChannelMembers.agencies(of: incident).contains(request.agency) else { return }
        try await audit.append(AuditRecord(
            action: refusal, agency: request.agency, user: request.user, reason: "not_participant", incident: incident.id))
        throw BusProtocol.ErrorBody(
            .notParticipant, message: "\(request.agency) does not take part in incident \(incident.id)", field: "body.incident")
    }

    /// An owner's or an agency's own certificate, or one of its owner-admin users: who manages
    /// its users, keys and cameras.
    func requireOwnerAdmin(_ request: BusRequest, action: String) async throws {
        if request.user != nil { _ = try await namedUser(request, role: .ownerAdmin, action: action) }
    }

    /// The named user behind a request, who must hold `role` with a valid clearance; a refusal is audited.
    func namedUser(_ request: BusRequest, role: UserRole, action: String) async throws -> User {
        if let id = request.user, let user = try await users.user(id), user.agency == request.agency, user.may(role) {
            return user
        }
        try await audit.append(AuditRecord(
            action: "\(action).refused", agency: request.agency, user: request.user, reason: "role_required", details: ["role": role.rawValue]))
        throw BusProtocol.ErrorBody(
            .roleRequired, message: "only a named user with the \(role.rawValue) role and a valid clearance may do this", field: "op")
    }

    public init(
        bus: BusServer, incidents: IncidentService, access: AccessService, holds: EvidenceHolds, users: UserDirectory,
        clientKeys: ClientKeys, publisher: ChannelPublisher, audit: AuditStore, auditKey: String, registry: RegistryStore,
        engine: CameraEngine, footage: FootageService?, consoleCodes: ConsoleCodes, reloadRegistry: @escaping @Sendable () async throws -> Void, logger: Logger
    ) {
        self.footage = footage
        self.consoleCodes = consoleCodes
        self.bus = bus
        self.incidents = incidents
        self.access = access
        self.holds = holds
        self.users = users
        self.clientKeys = clientKeys
        self.publisher = publisher
        self.audit = audit
        self.auditKey = auditKey
        self.registry = registry
        self.engine = engine
        self.reloadRegistry = reloadRegistry
        self.logger = logger
    }
}
