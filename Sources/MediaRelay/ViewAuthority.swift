import Bus
import Foundation
import Incidents
import Streams
import Synchronization
import VigilProtocol

/// A view a relay serves: allowed and recorded by its authority.
public struct AllowedView: Sendable {
    public let view: String
    public let grant: String
    public let incident: Int64
    /// `live`, or `playback` of the footage from `footageTime`.
    public var mode = AccessMode.live
    public var footageTime: Date?
    public var prosecutorReference: String?
    /// The privacy masks to paint on a playback, when the authority says which (a relay node's
    /// playback ticket carries the coordinator's masks now); nil: the relay's own for the camera.
    public var masks: [Thumbnailer.Mask]?
}

/// Who allows, re-checks and records a relay's views. In `vigil serve` it is the server's own
/// decision function and audit log (``LocalViewAuthority``); on a relay node it is the
/// coordinator, through signed tickets and load reports (``RelayNodeAuthority``).
public protocol ViewAuthority: Sendable {
    /// Allows and records a view of `body.camera` for `identity`, or throws the refusal (already recorded).
    func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView
    /// Why a running view must end now, or nil.
    func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String?
    /// ``reasonToEnd(_:camera:identity:)`` for many views at once (the relay's once-a-second check).
    func reasonsToEnd(_ views: [(allowed: AllowedView, camera: String, identity: BusIdentity)]) async -> [String?]
    /// Records the end of a view.
    func end(_ view: String, identity: BusIdentity) async
    /// The view an unknown link token stands for, when the token itself is the authorisation
    /// (a relay node's link ticket), or nil.
    func allowLink(_ token: String) -> LinkAllowance?
}

extension ViewAuthority {
    public func reasonsToEnd(_ views: [(allowed: AllowedView, camera: String, identity: BusIdentity)]) async -> [String?] {
        var reasons: [String?] = []
        for view in views { reasons.append(await reasonToEnd(view.allowed, camera: view.camera, identity: view.identity)) }
        return reasons
    }
}

/// A link view a token allows: who asked for it (for the logs) and what it shows.
public struct LinkAllowance: Sendable {
    public let allowed: AllowedView
    public let camera: String
    public let identity: BusIdentity
    /// A playback's moment (the footage from then), nil for live video.
    public var at: Date? = nil
}

/// The server's own decision function: a view is a consultation (named user, justification,
/// decision and audit in one transaction), re-decided once a second.
public struct LocalViewAuthority: ViewAuthority {
    public let access: AccessService
    public let incidents: IncidentService

    public func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView {
        let mode = body.at == nil ? AccessMode.live : .playback
        let consultation = Consultation(
            request: AccessRequest(
                agency: identity.agency, user: identity.user, camera: body.camera, mode: mode, incident: body.justification?.incident,
                footageTime: body.at, prosecutorReference: body.prosecutorReference),
            justification: try body.justification.map { try $0.justification() }, source: AuditOrigin.current ?? "media")
        let ticket = try await access.start(consultation)
        return AllowedView(
            view: ticket.view, grant: ticket.grant, incident: ticket.incident, mode: mode, footageTime: body.at, prosecutorReference: body.prosecutorReference)
    }

    /// Views asking the same question (the same user, camera, incident, mode and footage time:
    /// 200 viewers of one camera on a wall of screens) get one decision a round.
    public func reasonsToEnd(_ views: [(allowed: AllowedView, camera: String, identity: BusIdentity)]) async -> [String?] {
        struct Question: Hashable {
            let agency: String, user: String?, camera: String, incident: Int64, mode: AccessMode, footageTime: Date?, prosecutorReference: String?
        }
        var answers: [Question: String?] = [:]
        var reasons: [String?] = []
        for view in views {
            let question = Question(
                agency: view.identity.agency, user: view.identity.user, camera: view.camera, incident: view.allowed.incident, mode: view.allowed.mode,
                footageTime: view.allowed.footageTime, prosecutorReference: view.allowed.prosecutorReference)
            if let answer = answers[question] {
                reasons.append(answer)
            } else {
                let answer = await reasonToEnd(view.allowed, camera: view.camera, identity: view.identity)
                answers[question] = answer
                reasons.append(answer)
            }
        }
        return reasons
    }

    public func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String? {
        // A live view ends with its incident; a playback is often made after it (an investigation),
        // and ends only when the decision function says so.
        if view.mode == .live, let incident = try? await incidents.incident(view.incident), !incident.status.holdsSelection {
            return "incident \(view.incident) is \(incident.status.rawValue)"
        }
        let request = AccessRequest(
            agency: identity.agency, user: identity.user, camera: camera, mode: view.mode, incident: view.incident, footageTime: view.footageTime,
            prosecutorReference: view.prosecutorReference)
        switch (try? await access.decide(request)) ?? .refused(.storageFailure, message: "the decision could not be read") {
        case .deny(let code, let message): return "\(code): \(message)"
        default: return nil
        }
    }

    public func end(_ view: String, identity: BusIdentity) async {
        await access.stopEventually(view: view, agency: identity.agency, user: identity.user)
    }

    /// The server's links are made by `feed.link`, after the consultation: no token opens one.
    public func allowLink(_ token: String) -> LinkAllowance? { nil }
    public init(access: AccessService, incidents: IncidentService) {
        self.access = access
        self.incidents = incidents
    }
}

/// A relay node's authority: the coordinator decided and recorded each view before it signed
/// its ticket. The node checks the ticket (its secret's signature, not expired, this camera,
/// and the viewer's own key), ends the views the coordinator tells it to end, and reports the
/// views that ended. When the coordinator has not answered for `silenceLimit`, every view
/// ends: no view goes on without the decision function. A view that ended never starts again,
/// even with a ticket still valid. Tickets expire on the coordinator's clock, which each of its
/// answers carries: two hosts' clocks need not agree.
public final class RelayNodeAuthority: ViewAuthority {
    public init() {}

    static let silenceLimit = Duration.seconds(10)

    private struct State {
        var secret = Data()
        var lastAnswer = ContinuousClock.now
        /// The coordinator's clock less this host's, as its last answer said (to within the
        /// round trip: milliseconds, against tickets of 30 s).
        var clockOffset: TimeInterval = 0
        var ends: [String: String] = [:]
        var ended: [String] = []
        /// Views that ended here, until every ticket for them has expired.
        var finished: [String: Date] = [:]

        /// The time on the coordinator's clock.
        var now: Date { Date().addingTimeInterval(clockOffset) }

        /// The ticket `token` carries, unless it is forged, expired, or for a view that ended.
        mutating func ticket(_ token: String?) -> RelayTicket? {
            let now = self.now
            forgetExpired(now)
            guard let token, let ticket = RelayTicket.verified(token, with: secret, now: now), finished[ticket.view] == nil else { return nil }
            return ticket
        }

        mutating func finish(_ view: String) {
            let now = self.now
            forgetExpired(now)
            finished[view] = now.addingTimeInterval(RelayTicket.lifetime)
        }

        private mutating func forgetExpired(_ now: Date) {
            finished = finished.filter { $0.value > now }
        }

        mutating func heard(coordinatorNow: Date?) {
            lastAnswer = .now
            if let coordinatorNow { clockOffset = coordinatorNow.timeIntervalSinceNow }
        }
    }

    private let state = Mutex(State())

    /// The identity a viewer's key stands for on a node, whose ZAP handler lets every key in
    /// (the ticket is the authorisation): the key, hex-encoded (Z85 has '/').
    public static func identity(forKey key: String) -> BusIdentity {
        BusIdentity(agency: "viewer", user: Data(key.utf8).map { String(format: "%02x", $0) }.joined())
    }

    /// A new secret, after (re)registering; `coordinatorNow`, the coordinator's clock as it answered.
    func registered(secret: Data, coordinatorNow: Date? = nil) {
        state.withLock { state in
            state.secret = secret
            state.heard(coordinatorNow: coordinatorNow)
        }
    }

    /// The coordinator answered a report: the views it wants ended.
    func answered(ending ends: [String: String], coordinatorNow: Date? = nil) {
        state.withLock { state in
            state.heard(coordinatorNow: coordinatorNow)
            state.ends.merge(ends) { $1 }
        }
    }

    /// The views that ended since the last report, for the next one.
    func takeEnded() -> [String] {
        state.withLock { state in
            defer { state.ended.removeAll() }
            return state.ended
        }
    }

    public func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView {
        guard let ticket = state.withLock({ $0.ticket(body.ticket) }) else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "open a feed on a relay node with the ticket the server gave", field: "body.ticket")
        }
        guard ticket.link != true, ticket.edge == nil, ticket.camera == body.camera, Self.identity(forKey: ticket.viewerKey) == identity else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "the ticket is for another camera or viewer", field: "body.ticket")
        }
        // A playback's ticket plays the footage from the moment the coordinator allowed, and a live one live video.
        guard ticket.at == body.at else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "the ticket is for another moment (or for live video)", field: "body.at")
        }
        return AllowedView(
            view: ticket.view, grant: ticket.grant, incident: ticket.incident, mode: ticket.at == nil ? .live : .playback, footageTime: ticket.at,
            masks: ticket.masks?.polygons)
    }

    public func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String? {
        state.withLock { state in
            if let reason = state.ends.removeValue(forKey: view.view) { return reason }
            if ContinuousClock.now - state.lastAnswer > Self.silenceLimit { return "the server that allowed the view does not answer" }
            return nil
        }
    }

    public func end(_ view: String, identity: BusIdentity) async {
        state.withLock { state in
            state.ends[view] = nil
            state.ended.append(view)
            state.finish(view)
        }
    }

    /// An edge's upstream ticket, if it is valid (``Relay/openUpstream(_:for:)`` checks the rest).
    func upstreamTicket(_ token: String?) -> RelayTicket? {
        state.withLock { $0.ticket(token) }.flatMap { $0.edge == nil ? nil : $0 }
    }

    /// The segment file a coordinator's fetch ticket names, if the ticket is valid.
    func allowFetch(_ token: String) -> String? {
        let (secret, now) = state.withLock { ($0.secret, $0.now) }
        return FootageFetchTicket.verified(token, with: secret, now: now).map(\.file)
    }

    public func allowLink(_ token: String) -> LinkAllowance? {
        guard let ticket = state.withLock({ $0.ticket(token) }), ticket.link == true else { return nil }
        return LinkAllowance(
            allowed: AllowedView(view: ticket.view, grant: ticket.grant, incident: ticket.incident, masks: ticket.masks?.polygons), camera: ticket.camera,
            identity: BusIdentity(agency: ticket.agency, user: ticket.user), at: ticket.at)
    }
}
