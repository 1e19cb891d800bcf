import Bus
import Foundation
import Streams
import VigilProtocol

/// The coordinator's side of relay nodes (registration, reports, redirects) and the node's own
/// (assignments, load, ends the coordinator asks for).
extension Relay {
    /// On the coordinator: a node registered (or registered again); cameras are placed anew.
    public func nodeRegistered(_ body: RelayRegisterBody, identity: BusIdentity) throws -> RelayRegisterResult {
        guard let coordination else { throw BusProtocol.ErrorBody(code: "not_coordinator", message: "this relay takes no nodes", field: "op") }
        let result = try coordination.nodes.register(body, identity: identity)
        place()
        return result
    }

    /// On the coordinator: a node's report. Its views are marked seen, those it ended are
    /// recorded, its cameras' states are published; the reply lists the cameras it must keep
    /// open and the views it must end.
    public func nodeReported(_ body: RelayReportBody, identity: BusIdentity) async throws -> RelayReportResult {
        guard let coordination else { throw BusProtocol.ErrorBody(code: "not_coordinator", message: "this relay takes no nodes", field: "op") }
        let node = try coordination.nodes.report(body, identity: identity)
        let unknown = views.withLock { views in
            for id in body.views where views[id]?.delivery == .node(node.name) { views[id]?.idleSince = nil }
            return body.views.filter { views[$0]?.delivery != .node(node.name) }
        }
        // A view this server does not hold for the node (never allowed, or the server restarted)
        // goes on nowhere without the decision function: the node ends it too. Views ended here
        // lately are already on their way out, with their own reason.
        let now = ContinuousClock.now
        let strangers = nodeViewsEnded.withLock { ended in
            ended = ended.filter { now - $0.value < .seconds(RelayTicket.lifetime) }
            return unknown.filter { ended[$0] == nil }
        }
        if !strangers.isEmpty {
            nodeEndings.withLock { endings in
                for id in strangers { endings[node.name, default: [:]][id] = "the server holds no such view" }
            }
        }
        for id in body.ended where views.withLock({ $0[id]?.delivery }) == .node(node.name) {
            try? await end(id, reason: "ended on relay node \(node.name)", notify: false)
        }
        let changed = nodeStates.withLock { states in
            body.cameras.filter { camera, state in
                defer { states[camera] = state }
                return states[camera] != state
            }
        }
        let assigned = feeds.withLock { $0.filter { $0.value.server == .node(node.name) }.mapValues(\.incidents) }
        for (camera, state) in changed where assigned[camera] != nil {
            stateListener.withLock { $0 }?(camera, state.feedState, assigned[camera] ?? [])
        }
        for thumbnail in (body.thumbnails ?? []).prefix(RelayReportBody.maximumThumbnails) where assigned[thumbnail.camera] != nil {
            thumbnailListener.withLock { $0 }?(thumbnail.thumbnail, assigned[thumbnail.camera] ?? [])
        }
        let sources = sources.withLock { $0 }
        return RelayReportResult(
            assignments: assigned.keys.sorted().compactMap { camera in
                sources[camera].map { RelayAssignment(camera: camera, url: $0.url, masks: $0.masks) }
            },
            end: nodeEndings.withLock { $0.removeValue(forKey: node.name) } ?? [:])
    }

    /// On a relay node: the cameras the coordinator assigns. They are opened at once; the
    /// others are released after the linger once their views end.
    func hold(_ assignments: [RelayAssignment]) {
        sources.withLock { sources in
            for assignment in assignments { sources[assignment.camera] = Source(url: assignment.url, masks: assignment.masks) }
        }
        let assigned = Set(assignments.map(\.camera))
        let now = ContinuousClock.now
        feeds.withLock { feeds in
            for camera in assigned { feeds[camera, default: FeedEntry(incidents: [])].incidents.insert(Self.assignedByCoordinator) }
            for camera in feeds.keys where !assigned.contains(camera) && feeds[camera]!.incidents.remove(Self.assignedByCoordinator) != nil {
                feeds[camera]!.lingerIfUnwanted(since: now)
            }
        }
        place()
    }

    /// On a relay node: ends at once the views the coordinator ended.
    func endViews(_ ended: [String: String]) async {
        for (view, reason) in ended { try? await end(view, reason: reason, notify: true) }
    }

    /// On a relay node: what it reports, but the views it ended (its authority keeps those).
    func load(since last: (bytes: Int, at: ContinuousClock.Instant)) -> (report: RelayReportBody, bytes: Int) {
        let open = feeds.withLock { $0.compactMapValues(\.feed) }
        let bytes = open.values.reduce(0) { $0 + $1.receivedBytes }
        let seconds = max(0.001, (ContinuousClock.now - last.at) / .seconds(1))
        let report = RelayReportBody(
            cameras: open.mapValues { WireFeedState($0.state) }, views: views.withLock { Array($0.keys) }, ended: [], streams: open.count,
            mbps: Double(max(0, bytes - last.bytes)) * 8 / seconds / 1e6)
        return (report, bytes)
    }

    /// Where a viewer goes for a camera relay node `name` serves: its endpoint and a ticket for
    /// this view, bound to the viewer's key, or for a link (`link`) the link's token.
    func redirect(to name: String, for allowed: AllowedView, camera: String, identity: BusIdentity, link: Bool) throws -> FeedRedirect {
        guard let coordination, let node = coordination.nodes.node(name), let key = coordination.publicKey(identity) else {
            throw BusProtocol.ErrorBody(code: "camera_unavailable", message: "relay node \(name) of camera \(camera) is gone", field: "body.camera")
        }
        let ticket = RelayTicket(
            view: allowed.view, grant: allowed.grant, incident: allowed.incident, camera: camera, viewerKey: key, agency: identity.agency,
            user: identity.user, expires: Date().addingTimeInterval(RelayTicket.lifetime), link: link ? true : nil)
        return FeedRedirect(relay: name, media: node.media, serverKey: node.serverKey, ticket: try ticket.signed(with: node.secret))
    }
}
