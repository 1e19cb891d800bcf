import Bus
import Crypto
import Foundation
import Incidents
import Streams
import VigilProtocol

/// The coordinator's side of relay nodes (registration, reports, redirects) and the node's own
/// (assignments, load, ends the coordinator asks for).
extension Relay {
    /// On the coordinator: a node registered (or registered again); cameras are placed anew.
    public func nodeRegistered(_ body: RelayRegisterBody, identity: BusIdentity) throws -> RelayRegisterResult {
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let key = coordination?.publicKey(identity)
        var result = try change { state, now, open in
            try state.registerNode(body, identity: identity, publicKey: key, secret: secret, now: now, open: open)
        }
        result.now = Date()
        return result
    }

    /// On the coordinator, as it starts: the views recorded open before (by itself before a
    /// restart, or by the coordinator it took over from). A relay node that reports one within
    /// ``adoptionWindow`` keeps serving it; ``takeUnadoptedViews()`` then gives the others,
    /// which no node serves any more, to be recorded stopped.
    public func adoptViews(_ open: [AccessService.RecordedView]) {
        state.withLock { state in
            for view in open {
                state.adoptable[view.id] = .init(
                    identity: BusIdentity(agency: view.agency, user: view.user), camera: view.camera,
                    allowed: AllowedView(view: view.id, grant: view.grant, incident: view.incident, mode: view.mode))
            }
        }
    }

    /// How long a node has to report a view after the coordinator started: past it, the node has
    /// ended the view itself (it ends its views after ``RelayNodeAuthority/silenceLimit``
    /// unanswered, and the previous coordinator answered it last before this one started), so
    /// the view is recorded stopped only once it no longer plays.
    public static var adoptionWindow: Duration { RelayNodeAuthority.silenceLimit + .seconds(1) }

    /// The views no node adopted, taken out.
    public func takeUnadoptedViews() -> Set<String> {
        state.withLock { state in
            defer { state.adoptable.removeAll() }
            return Set(state.adoptable.keys)
        }
    }

    /// On the coordinator: a node that stops; its name.
    public func nodeDeregistered(identity: BusIdentity) throws -> String {
        try change { state, now, open in try state.deregisterNode(identity: identity, now: now, open: open) }
    }

    /// On the coordinator: a node's report. Its views are marked seen, those it ended are
    /// recorded, its cameras' states and thumbnails are published; the reply lists the cameras it
    /// must keep open and the views it must end.
    public func nodeReported(_ body: RelayReportBody, identity: BusIdentity) async throws -> RelayReportResult {
        // A registered edge that lost its origin: the origin's cameras are placed anew if it
        // missed a report too (before this reply, so that it names the new origin).
        if let unreachable = body.unreachable, state.withLock({ $0.nodes.node(identity.user ?? "") != nil }) {
            for origin in unreachable.prefix(16) {
                change { state, now, open in state.viewerLostNode(origin, now: now, open: open) }
            }
        }
        let expires = Date().addingTimeInterval(RelayTicket.lifetime)
        let report = try state.withLock { try $0.reportNode(body, identity: identity, now: clock.now(), ticketsExpire: expires) }
        for (id, ended) in report.ended {
            await finish(ended, id: id, reason: "ended on relay node \(identity.user ?? "")", notify: false)
        }
        for (camera, state, incidents) in report.states { eventSink.yield(.cameraState(camera: camera, state: state, incidents: incidents)) }
        for (thumbnail, incidents) in report.thumbnails { eventSink.yield(.thumbnail(thumbnail, incidents: incidents)) }
        var reply = report.reply
        let removals = await nodeFootage(body, node: identity.user ?? "")
        reply.remove = removals.isEmpty ? nil : removals
        reply.now = Date()
        return reply
    }

    /// On a relay node: the cameras the coordinator assigns. They are opened at once; the
    /// others are released after the linger once their views end.
    func hold(_ assignments: [RelayAssignment]) {
        change { $0.hold(assignments, now: $1, open: $2) }
    }

    /// On a relay node: ends at once the views the coordinator ended.
    func endViews(_ ended: [String: String]) async {
        for (view, reason) in ended { try? await end(view, reason: reason, notify: true) }
    }

    /// On a relay node: what it reports, but the views it ended (its authority keeps those).
    func load(since last: (bytes: Int, at: ContinuousClock.Instant)) -> (report: RelayReportBody, bytes: Int) {
        let (open, views, pulled, unreachable) = state.withLock { state in
            defer { state.unreachableOrigins.removeAll() }
            return (state.openFeeds, state.viewIDs, state.openFeeds.keys.filter { state.sources[$0]?.upstream != nil }.sorted(), state.unreachableOrigins.sorted())
        }
        let bytes = open.values.reduce(0) { $0 + $1.receivedBytes }
        let seconds = max(0.001, (ContinuousClock.now - last.at) / .seconds(1))
        var report = RelayReportBody(
            cameras: open.mapValues { WireFeedState($0.state) }, views: views, ended: [], streams: open.count,
            mbps: Double(max(0, bytes - last.bytes)) * 8 / seconds / 1e6)
        report.pulled = pulled.isEmpty ? nil : pulled
        report.unreachable = unreachable.isEmpty ? nil : unreachable
        return (report, bytes)
    }
}
