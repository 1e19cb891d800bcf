import Bus
import Foundation
import Geo
import Incidents
import Logging
import MediaRelay
import Metrics

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
    /// Reloads the registry into the index and the relay, and recomputes open selections (the
    /// caller already holds the server's serial gate).
    let reloadRegistry: @Sendable () async throws -> Void
    let logger: Logger

    func handle(_ request: BusRequest) async {
        let header: BusProtocol.RequestHeader
        do {
            header = try BusProtocol.decodeHeader(request.payload)
        } catch {
            bus.reply(to: request.peer, payload: BusProtocol.errorReply(id: nil, error))
            return
        }
        guard replays.firstUse(of: header.id, on: request.peer) else {
            try? await audit.append(AuditRecord(
                action: "request.replayed", agency: request.agency, user: request.user, details: ["id": header.id, "op": header.op]))
            bus.reply(to: request.peer, payload: BusProtocol.errorReply(
                id: header.id, .init(code: "request_replayed", message: "request id '\(header.id)' was already used on this connection", field: "id")))
            return
        }
        let started = ContinuousClock.now
        defer { ServerMetrics.commandDuration.record(duration: ContinuousClock.now - started) }
        let reply: Data
        do {
            reply = try await perform(header, request)
        } catch let error as BusProtocol.ErrorBody {
            reply = BusProtocol.errorReply(id: header.id, error)
        } catch let error as IncidentError {
            reply = BusProtocol.errorReply(id: header.id, .init(code: error.code, message: error.message, field: error.field))
        } catch let error as GeoError {
            reply = BusProtocol.errorReply(id: header.id, .init(code: error.code, message: error.message, field: error.field))
        } catch {
            logger.error("request failed", metadata: ["bus.op": "\(header.op)", "error": "\(error)"])
            reply = BusProtocol.errorReply(id: header.id, .init(code: "internal_error", message: "the server could not handle this request"))
        }
        bus.reply(to: request.peer, payload: reply)
    }

    /// The operations that change nothing but the audit log (a read may record that it
    /// happened): they need not pass the serial gate that orders changes and their events.
    static let readOnlyOperations: Set<String> = [
        "session.identity", "grant.list", "access.check", "user.list", "view.list", "hold.list", "incident.snapshot", "audit.query", "audit.verify",
    ]

    /// Whether `request` is one of ``readOnlyOperations`` (an unreadable request is answered in turn, as a change).
    static func isReadOnly(_ request: BusRequest) -> Bool {
        (try? BusProtocol.decodeHeader(request.payload)).map { readOnlyOperations.contains($0.op) } ?? false
    }

    private func perform(_ header: BusProtocol.RequestHeader, _ request: BusRequest) async throws -> Data {
        switch header.op {
        case "incident.open":
            let body = try BusProtocol.decodeBody(OpenIncidentBody.self, from: request.payload)
            let change: IncidentChange
            switch try body.request() {
            case .area(let open): change = try await incidents.open(open, by: request.agency, user: request.user)
            case .march(let open): change = try await incidents.openMarch(open, by: request.agency, user: request.user)
            }
            await publisher.publish(change)
            return BusProtocol.successReply(
                id: header.id,
                result: try await publisher.copy(
                    of: IncidentSnapshot(incident: change.incident, cameras: change.added, route: body.route, area: body.area), for: request.agency))
        case "incident.redraw":
            let body = try BusProtocol.decodeBody(RedrawIncidentBody.self, from: request.payload)
            let change = try await incidents.redraw(body.incident, to: try body.incidentArea(), by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case "incident.move":
            let body = try BusProtocol.decodeBody(MoveIncidentBody.self, from: request.payload)
            let change = try await incidents.move(
                body.incident, head: try body.head.position(field: "body.head"), tail: try body.tail.position(field: "body.tail"),
                by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case "incident.update":
            let body = try BusProtocol.decodeBody(UpdateIncidentBody.self, from: request.payload)
            let change = try await incidents.update(body.incident, try body.update(), by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case "incident.handover":
            let body = try BusProtocol.decodeBody(HandOverIncidentBody.self, from: request.payload)
            let change = try await incidents.handOver(body.incident, to: body.leadAgency, commander: body.commander, by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case "incident.close":
            let body = try BusProtocol.decodeBody(IncidentReference.self, from: request.payload)
            let change = try await incidents.close(body.incident, by: request.agency)
            return BusProtocol.successReply(id: header.id, result: try await publisher.publish(change, replyFor: request.agency))
        case "incident.snapshot":
            let body = try BusProtocol.decodeBody(SnapshotRequest.self, from: request.payload)
            ServerMetrics.snapshots.increment()
            let snapshot = try await incidents.snapshot(body.incident)
            try await requireParticipant(snapshot.incident, request, refusal: "snapshot.refused")
            if let after = body.resyncAfter {
                // What the follower's subscription lost (or missed while it reconnected), per agency.
                let missed = max(0, snapshot.incident.sequence - after)
                ServerMetrics.resynchronised(agency: request.agency, missed: missed)
                logger.info("follower resynchronised", metadata: [
                    "agency": "\(request.agency)", "user": "\(request.user ?? "")", "incident.id": "\(body.incident)", "events.missed": "\(missed)",
                ])
            }
            return BusProtocol.successReply(id: header.id, result: try await publisher.copy(of: snapshot, for: request.agency))
        case "relay.register":
            let body = try BusProtocol.decodeBody(RelayRegisterBody.self, from: request.payload)
            _ = try await namedUser(request, role: .relay, action: "relay.register")
            guard let relay = publisher.relay else { throw BusProtocol.ErrorBody(code: "not_coordinator", message: "this server runs no relay", field: "op") }
            let result = try relay.nodeRegistered(body, identity: request.identity)
            try await audit.append(AuditRecord(
                action: "relay.registered", agency: request.agency, user: request.user,
                details: ["media": body.media, "max_streams": "\(body.maximumStreams)", "max_mbps": "\(body.maximumMbps)"]))
            return BusProtocol.successReply(id: header.id, result: result)
        case "relay.report":
            let body = try BusProtocol.decodeBody(RelayReportBody.self, from: request.payload)
            // Once a second per node: the role is checked in memory (registering checked it against the directory).
            guard clientKeys.holds(.relay, request.identity), let relay = publisher.relay else {
                throw BusProtocol.ErrorBody(code: "role_required", message: "only a relay node's key reports load", field: "op")
            }
            return BusProtocol.successReply(id: header.id, result: try await relay.nodeReported(body, identity: request.identity))
        case "session.identity":
            return BusProtocol.successReply(id: header.id, result: ["agency": request.agency, "user": request.user])
        case "grant.create":
            let grant = try BusProtocol.decodeBody(Grant.self, from: request.payload)
            guard grant.owner == request.agency else {
                throw BusProtocol.ErrorBody(code: "not_owner", message: "only \(grant.owner) may share its cameras", field: "body.owner")
            }
            try await access.create(grant, by: request.agency)
            await publisher.accessChanged(for: grant.agency, by: request.agency, reason: "grant_created:\(grant.id)")
            return BusProtocol.successReply(id: header.id, result: grant)
        case "grant.revoke":
            let body = try BusProtocol.decodeBody(RevokeGrantBody.self, from: request.payload)
            let revoked = try await access.revoke(body.grant, by: request.agency, reason: body.reason)
            // Each agency's channels lose the cameras at once (the relays stop their feeds the same way).
            await publisher.accessChanged(for: revoked.agency, by: request.agency, reason: "grant_revoked:\(body.grant)")
            return BusProtocol.successReply(id: header.id, result: ["grant": body.grant])
        case "grant.list":
            // An agency sees the grants it gives and the grants it receives.
            let grants = try await access.grants().filter { $0.owner == request.agency || $0.agency == request.agency }
            return BusProtocol.successReply(id: header.id, result: grants)
        case "access.check":
            let body = try BusProtocol.decodeBody(AccessCheckBody.self, from: request.payload)
            let decision = try await access.decide(AccessRequest(
                agency: request.agency, user: body.user ?? request.user, camera: body.camera, mode: body.mode, incident: body.incident,
                footageTime: body.footageTime, prosecutorReference: body.prosecutorReference))
            return BusProtocol.successReply(id: header.id, result: AccessCheckResult(decision))
        case "view.start":
            let body = try BusProtocol.decodeBody(ViewStartBody.self, from: request.payload)
            let ticket = try await access.start(try body.consultation(agency: request.agency, user: request.user, source: "bus"))
            return BusProtocol.successReply(id: header.id, result: ticket)
        case "view.stop":
            let body = try BusProtocol.decodeBody(ViewStopBody.self, from: request.payload)
            try await access.stop(view: body.view, agency: request.agency, user: request.user)
            return BusProtocol.successReply(id: header.id, result: ["view": body.view])
        case "view.list":
            // Who is watching what: under an incident, for the agencies coordinating it (only the
            // cameras each may see, and its own views); without one, the views of the asking owner's cameras.
            let body = try BusProtocol.decodeBody(IncidentFilter.self, from: request.payload)
            var views: [OpenView]
            if let id = body.incident {
                try await requireParticipant(try await incidents.incident(id), request, refusal: "view.list.refused")
                views = try await access.openViews(incident: id)
                let visible = try await access.visibleCameras(views.map(\.camera), agency: request.agency, incident: id)
                views = views.filter { visible.contains($0.camera) || $0.agency == request.agency }
            } else {
                views = try await access.openViews(owner: request.agency)
            }
            // Who watches is personal data of the viewers: reading it is recorded like any disclosure.
            try await audit.append(AuditRecord(
                action: "view.listed", agency: request.agency, user: request.user, incident: body.incident, details: ["views": "\(views.count)"]))
            return BusProtocol.successReply(id: header.id, result: ["views": views])
        case "hold.create":
            let body = try BusProtocol.decodeBody(HoldRequest.self, from: request.payload)
            let hold = try await holds.create(body, agency: request.agency, user: request.user)
            for preservation in hold.preservationRequests {
                bus.publish(
                    topic: BusProtocol.ownerTopic(preservation.owner),
                    payload: BusProtocol.event(
                        channel: "owner/\(preservation.owner)", seq: preservation.sequence, type: "preservation.requested", at: hold.createdAt,
                        body: preservation))
            }
            return BusProtocol.successReply(id: header.id, result: hold)
        case "hold.list":
            let body = try BusProtocol.decodeBody(IncidentFilter.self, from: request.payload)
            return BusProtocol.successReply(id: header.id, result: try await holds.holds(for: request.agency, incident: body.incident))
        case "hold.release":
            let body = try BusProtocol.decodeBody(ReleaseHoldBody.self, from: request.payload)
            return BusProtocol.successReply(
                id: header.id, result: try await holds.release(body.hold, agency: request.agency, user: request.user, reason: body.reason))
        case "user.add":
            let user = try BusProtocol.decodeBody(User.self, from: request.payload)
            guard user.agency == request.agency else {
                throw BusProtocol.ErrorBody(code: "not_own_agency", message: "\(request.agency) adds users to itself only", field: "body.agency")
            }
            // The agency's own certificate, or one of its owner-admin users, manages its users.
            try await requireOwnerAdmin(request, action: "user.add")
            try await users.add(user, by: request.agency)
            clientKeys.admit(user)
            return BusProtocol.successReply(id: header.id, result: user)
        case "user.suspend", "user.reinstate", "user.remove":
            let body = try BusProtocol.decodeBody(UserStatusBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            let status: UserStatus = switch header.op {
            case "user.suspend": .suspended
            case "user.remove": .removed
            default: .active
            }
            let changed = try await users.setStatus(
                body.user, of: request.agency, to: status, reason: body.reason, by: request.agency, actingUser: request.user)
            // From the next message on: requests with the key are refused, subscriptions end with
            // the event endpoint's connections, and open views end at their next decision.
            clientKeys.admit(changed)
            if status != .active { bus.dropSubscribers() }
            return BusProtocol.successReply(id: header.id, result: changed)
        case "agency.rotate-key":
            let body = try BusProtocol.decodeBody(AgencyKeyBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            try await users.setAgencyKey(request.agency, to: body.publicKey, rotatedBy: request.agency, actingUser: request.user, reason: body.reason)
            clientKeys.rotate(agency: request.agency, to: body.publicKey)
            bus.dropSubscribers()
            return BusProtocol.successReply(id: header.id, result: ["agency": request.agency, "public_key": body.publicKey])
        case "camera.update":
            // Text first (as for every body), then the GeoJSON itself, as an import reads a file.
            _ = try BusProtocol.decodeBody(BusProtocol.AnyObjectBody.self, from: request.payload)
            let cameras = try CameraUpdate.cameras(fromFeatureCollection: try BusProtocol.rawBody(of: request.payload), projection: engine.index.projection)
            try await requireOwnerAdmin(request, action: header.op)
            try await registry.update(cameras, owner: request.agency, by: request.agency, user: request.user)
            try await reloadRegistry()
            return BusProtocol.successReply(id: header.id, result: ["cameras": cameras.map(\.id)])
        case "camera.retire":
            let body = try BusProtocol.decodeBody(CameraRetireBody.self, from: request.payload).validated()
            try await requireOwnerAdmin(request, action: header.op)
            try await registry.retire(body.cameras, owner: request.agency, reason: body.reason, by: request.agency, user: request.user)
            try await reloadRegistry()
            return BusProtocol.successReply(id: header.id, result: ["cameras": body.cameras])
        case "thumbnails.start":
            let body = try BusProtocol.decodeBody(ThumbnailsStartBody.self, from: request.payload)
            let justification = try body.justification.justification()
            try await access.startThumbnails(agency: request.agency, user: request.user, justification: justification, source: "bus")
            publisher.thumbnailConsents.start(incident: justification.incident, agency: request.agency)
            return BusProtocol.successReply(id: header.id, result: ["incident": justification.incident])
        case "thumbnails.stop":
            let body = try BusProtocol.decodeBody(ThumbnailsStopBody.self, from: request.payload)
            if publisher.thumbnailConsents.stop(incident: body.incident, agency: request.agency) {
                try await access.stopThumbnails(incident: body.incident, agency: request.agency, user: request.user)
            }
            return BusProtocol.successReply(id: header.id, result: ["incident": body.incident])
        case "user.list":
            return BusProtocol.successReply(id: header.id, result: try await users.users(of: request.agency))
        case "audit.query":
            let body = try BusProtocol.decodeBody(AuditQueryBody.self, from: request.payload)
            let limit = try body.pageSize()
            let auditor = try await namedUser(request, role: .auditor, action: "audit.read")
            let entries = try await audit.entries(from: body.from, to: body.to, after: body.after ?? 0, limit: limit)
            try await audit.append(AuditRecord(
                action: "audit.read", agency: auditor.agency, user: auditor.id, badge: auditor.badge,
                details: ["entries": "\(entries.count)", "from": body.from ?? "", "to": body.to ?? "", "after": "\(body.after ?? 0)"]))
            return BusProtocol.successReply(
                id: header.id, result: AuditQueryResult(entries: entries, nextAfter: entries.count == limit ? entries.last?.sequence : nil))
        case "audit.verify":
            let body = try BusProtocol.decodeBody(AuditVerifyBody.self, from: request.payload)
            let auditor = try await namedUser(request, role: .auditor, action: "audit.verify")
            let verification = try await audit.verify()
            var checkpoint: CheckpointVerification?
            if let kept = body.checkpoint { checkpoint = try await audit.verify(kept, serverKey: auditKey) }
            var details = ["entries": "\(verification.entries)", "intact": "\(verification.intact)"]
            if let checkpoint { details["checkpoint"] = checkpoint.holds ? "holds:\(checkpoint.sequence)" : checkpoint.code ?? "fails" }
            try await audit.append(AuditRecord(action: "audit.verified", agency: auditor.agency, user: auditor.id, badge: auditor.badge, details: details))
            return BusProtocol.successReply(id: header.id, result: AuditVerifyResult(verification, checkpoint: checkpoint))
        default:
            throw BusProtocol.ErrorBody(code: "unknown_operation", message: "unknown operation '\(header.op)'", field: "op")
        }
    }

    /// Lets through only the lead and participating agencies of `incident` (the rule of the
    /// channel's subscriptions); a refusal is audited as `refusal`.
    private func requireParticipant(_ incident: Incident, _ request: BusRequest, refusal: String) async throws {
        guard !ChannelMembers.agencies(of: incident).contains(request.agency) else { return }
        try await audit.append(AuditRecord(
            action: refusal, agency: request.agency, user: request.user, reason: "not_participant", incident: incident.id))
        throw BusProtocol.ErrorBody(
            code: "not_participant", message: "\(request.agency) does not take part in incident \(incident.id)", field: "body.incident")
    }

    /// An owner's or an agency's own certificate, or one of its owner-admin users: who manages
    /// its users, keys and cameras.
    private func requireOwnerAdmin(_ request: BusRequest, action: String) async throws {
        if request.user != nil { _ = try await namedUser(request, role: .ownerAdmin, action: action) }
    }

    /// The named user behind a request, who must hold `role` with a valid clearance; a refusal is audited.
    private func namedUser(_ request: BusRequest, role: UserRole, action: String) async throws -> User {
        if let id = request.user, let user = try await users.user(id), user.agency == request.agency, user.may(role) {
            return user
        }
        try await audit.append(AuditRecord(
            action: "\(action).refused", agency: request.agency, user: request.user, reason: "role_required", details: ["role": role.rawValue]))
        throw BusProtocol.ErrorBody(
            code: "role_required", message: "only a named user with the \(role.rawValue) role and a valid clearance may do this", field: "op")
    }
    public init(bus: BusServer, incidents: IncidentService, access: AccessService, holds: EvidenceHolds, users: UserDirectory, clientKeys: ClientKeys, publisher: ChannelPublisher, audit: AuditStore, auditKey: String, registry: RegistryStore, engine: CameraEngine, reloadRegistry: @escaping @Sendable () async throws -> Void, logger: Logger) {
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
