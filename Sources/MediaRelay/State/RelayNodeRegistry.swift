import Bus
import Foundation
import Streams
import VigilProtocol

/// The relay nodes registered with a coordinator: their endpoints, caps, secret and last
/// report. A node that has not reported for ``silenceLimit`` is dropped. A value, part of
/// ``RelayState``: the time is an argument.
struct RelayNodeRegistry {
    static var reportInterval: Duration { .seconds(1) }
    static var silenceLimit: Duration { .seconds(5) }

    struct Node: Sendable {
        let name: String
        /// The agency of the node's relay user: a node is its user's name and agency.
        let agency: String
        let media: String
        let serverKey: String
        /// `http://HOST:PORT` of the node's links, or nil when it serves none.
        let links: String?
        /// Signs the node's view tickets (32 random bytes).
        let secret: Data
        let maximumStreams: Int
        let maximumMbps: Double
        /// The most footage the node keeps; nil: it records nothing.
        let footageBudget: Int?
        /// Where the node stands, and the owners whose cameras are pulled there.
        let site: String?
        let origins: Set<String>
        /// The node's own key (its user's): an upstream ticket binds an edge's pulls to it.
        let publicKey: String?
        var lastReport: ContinuousClock.Instant
        var streams = 0
        var mbps = 0.0

        var capacity: RelayPlacement.Relay {
            RelayPlacement.Relay(name: name, maximumStreams: maximumStreams, maximumMbps: maximumMbps)
        }
    }

    private var nodes: [String: Node] = [:]
    /// Nodes that said they stop (``deregister(_:)``), until they register again: their views
    /// end saying so, not that they fell silent.
    private(set) var departed: Set<String> = []
    /// Nodes dropped for their silence, with their last report: their views are recorded
    /// ended only once the node has ended them itself (``RelayNodeAuthority/silenceLimit``
    /// without an answer), so that the log never says a view stopped while it still played.
    private(set) var fallenSilent: [String: ContinuousClock.Instant] = [:]

    /// Registers (or registers again, after a restart of either side) the node of `identity`,
    /// whose tickets `secret` will sign; `publicKey`, the key it registered with.
    mutating func register(
        _ body: RelayRegisterBody, identity: BusIdentity, publicKey: String?, secret: Data, now: ContinuousClock.Instant
    ) throws(BusProtocol.ErrorBody) -> RelayRegisterResult {
        guard let name = identity.user else {
            throw BusProtocol.ErrorBody(.namedUserRequired, message: "a relay node registers with its own user key", field: nil)
        }
        guard body.maximumStreams >= 0, body.maximumMbps >= 0, body.media.hasPrefix("tcp://"), body.serverKey.count == 40 else {
            throw BusProtocol.ErrorBody(.relayInvalid, message: "a tcp:// media endpoint, a 40-character server key and caps ≥ 0", field: "body")
        }
        if let links = body.links, !links.hasPrefix("http://") || links.count > 200 {
            throw BusProtocol.ErrorBody(.relayInvalid, message: "links are served at an http://HOST:PORT address", field: "body.links")
        }
        let names = (body.site.map { [$0] } ?? []) + (body.origins ?? [])
        guard (body.origins ?? []).count <= 1_000, names.allSatisfy({ !$0.isEmpty && $0.count <= 100 }) else {
            throw BusProtocol.ErrorBody(.relayInvalid, message: "a site and owners are names of 1 to 100 characters (at most 1,000 owners)", field: "body.site")
        }
        guard body.origins?.isEmpty ?? true || body.site != nil else {
            throw BusProtocol.ErrorBody(.relayInvalid, message: "a node that pulls owners' cameras at their site names its site", field: "body.origins")
        }
        // Each owner decides where its cameras are pulled: only a node of its own (a relay user
        // of the owner's agency) is an origin for them.
        if let other = body.origins?.first(where: { $0 != identity.agency }) {
            throw BusProtocol.ErrorBody(
                .notOwner, message: "only a relay node of \(other) itself (a relay user of that agency) pulls its cameras at its site", field: "body.origins")
        }
        // Nodes are known by their user's name: another agency's user of the same name is refused,
        // not mistaken for this node.
        if let registered = nodes[name], registered.agency != identity.agency {
            throw BusProtocol.ErrorBody(
                .relayInvalid, message: "a relay node named \(name) of agency \(registered.agency) is registered: give relay users names of their own",
                field: nil)
        }
        departed.remove(name)
        fallenSilent[name] = nil
        nodes[name] = Node(
            name: name, agency: identity.agency, media: body.media, serverKey: body.serverKey, links: body.links, secret: secret,
            maximumStreams: body.maximumStreams, maximumMbps: body.maximumMbps, footageBudget: body.footageBudgetBytes.map { max(0, $0) },
            site: body.site, origins: Set(body.origins ?? []), publicKey: publicKey, lastReport: now)
        return RelayRegisterResult(relay: name, secret: secret.base64EncodedString(), reportIntervalMs: Int(Self.reportInterval / .milliseconds(1)))
    }

    /// Records a node's report; `relay_unknown` tells a node the coordinator no longer knows
    /// (it restarted, or the node fell silent) to register again.
    mutating func report(_ body: RelayReportBody, identity: BusIdentity, now: ContinuousClock.Instant) throws(BusProtocol.ErrorBody) -> Node {
        guard let name = identity.user, nodes[name]?.agency == identity.agency else {
            throw BusProtocol.ErrorBody(.relayUnknown, message: "register first (relay.register)", field: nil)
        }
        nodes[name]!.lastReport = now
        nodes[name]!.streams = body.streams
        nodes[name]!.mbps = body.mbps
        return nodes[name]!
    }

    /// A node that stops says so: it is dropped at once (new viewers are no longer sent to it);
    /// its name.
    mutating func deregister(_ identity: BusIdentity) throws(BusProtocol.ErrorBody) -> String {
        guard let name = identity.user, nodes[name]?.agency == identity.agency, nodes.removeValue(forKey: name) != nil else {
            throw BusProtocol.ErrorBody(.relayUnknown, message: "no such relay node is registered", field: nil)
        }
        departed.insert(name)
        return name
    }

    /// The nodes that reported lately, by name; the silent ones are dropped.
    mutating func alive(now: ContinuousClock.Instant) -> [Node] {
        for (name, node) in nodes where now - node.lastReport >= Self.silenceLimit { fallenSilent[name] = node.lastReport }
        fallenSilent = fallenSilent.filter { now - $0.value < .seconds(60) }
        nodes = nodes.filter { now - $0.value.lastReport < Self.silenceLimit }
        return nodes.values.sorted { $0.name < $1.name }
    }

    func node(_ name: String) -> Node? {
        nodes[name]
    }

    /// The nodes standing at `site`, by name.
    func nodes(at site: String) -> [Node] {
        nodes.values.filter { $0.site == site }.sorted { $0.name < $1.name }
    }

    /// The site where each owner's cameras are pulled, as its nodes say (the first node by name,
    /// should two sites claim an owner); an owner with no node registered has none.
    var ownerSites: [String: String] {
        var sites: [String: String] = [:]
        for node in nodes.values.sorted(by: { $0.name < $1.name }) {
            guard let site = node.site else { continue }
            for owner in node.origins where sites[owner] == nil { sites[owner] = site }
        }
        return sites
    }

    /// A viewer says node `name` stopped serving it. Believed only if the node has missed a
    /// report too (none for the interval and a fifth): then it is dropped as fallen silent, at
    /// once rather than after ``silenceLimit``. True when it was.
    mutating func viewerLost(_ name: String, now: ContinuousClock.Instant) -> Bool {
        guard let node = nodes[name], now - node.lastReport >= Self.reportInterval * 1.2 else { return false }
        fallenSilent[name] = node.lastReport
        nodes[name] = nil
        return true
    }
}

extension RelayState {
    /// What a node's report asks of the relay beyond its reply: views to finish ending, and the
    /// states and thumbnails of its cameras to publish with the incidents selecting each.
    struct NodeReport {
        var reply: RelayReportResult
        var ended: [(id: String, ended: EndedView)]
        var states: [(camera: String, state: FeedState, incidents: Set<Int64>)]
        var thumbnails: [(thumbnail: Thumbnail, incidents: Set<Int64>)]
    }

    /// On the coordinator: a node registered (or registered again); cameras are placed anew.
    mutating func registerNode(
        _ body: RelayRegisterBody, identity: BusIdentity, publicKey: String?, secret: Data, now: Instant, open: Opener
    ) throws(BusProtocol.ErrorBody) -> (RelayRegisterResult, [Action]) {
        guard coordinatorCapacity != nil else { throw Self.notCoordinator }
        let result = try nodes.register(body, identity: identity, publicKey: publicKey, secret: secret, now: now)
        return (result, place(now: now, open: open))
    }

    /// On the coordinator: a viewer says node `name` stopped serving it, or an edge node that its
    /// origin `name` stopped feeding it (``RelayNodeRegistry/viewerLost(_:now:)``); if it is
    /// believed, the node's cameras are placed anew at once.
    mutating func viewerLostNode(_ name: String, now: Instant, open: Opener) -> [Action] {
        guard coordinatorCapacity != nil, nodes.viewerLost(name, now: now) else { return [] }
        return place(now: now, open: open)
    }

    /// On the coordinator: a node that stops. Its cameras are placed anew at once; its views end
    /// at the next re-decision (within a second), saying the node stopped.
    mutating func deregisterNode(identity: BusIdentity, now: Instant, open: Opener) throws(BusProtocol.ErrorBody) -> (String, [Action]) {
        guard coordinatorCapacity != nil else { throw Self.notCoordinator }
        let name = try nodes.deregister(identity)
        return (name, place(now: now, open: open))
    }

    /// On the coordinator: a node's report. Its views are marked seen, those it ended are taken
    /// out, changes of its cameras' states are returned to publish; the reply lists the cameras
    /// it must keep open (with, on an edge, upstream tickets that expire at `ticketsExpire`) and
    /// the views it must end.
    mutating func reportNode(
        _ body: RelayReportBody, identity: BusIdentity, now: Instant, ticketsExpire: Date
    ) throws(BusProtocol.ErrorBody) -> NodeReport {
        guard coordinatorCapacity != nil else { throw Self.notCoordinator }
        let reporting = try nodes.report(body, identity: identity, now: now)
        let node = reporting.name
        // Views a previous coordinator allowed, which the node still serves, go on (a failover).
        let pulled = Set(body.pulled ?? [])
        for id in body.views where views[id] == nil { _ = adopt(id, by: node, pulling: pulled) }
        for id in body.views where views[id]?.delivery == .node(node) { views[id]?.idleSince = nil }
        // A view this relay does not hold for the node (never allowed, or the coordinator
        // restarted) goes on nowhere without the decision function: the node ends it too. Views
        // ended here lately are already on their way out, with their own reason.
        nodeViewsEnded = nodeViewsEnded.filter { now - $0.value < .seconds(RelayTicket.lifetime) }
        for id in body.views where views[id]?.delivery != .node(node) && nodeViewsEnded[id] == nil {
            nodeEndings[node, default: [:]][id] = "the server holds no such view"
        }
        let ended = body.ended.filter { views[$0]?.delivery == .node(node) }.compactMap { id in
            end(id, reason: "ended on relay node \(node)", notify: false, now: now).map { (id, $0) }
        }
        let assigned = feeds.filter { $0.value.server == .node(node) }.mapValues(\.incidents)
        var states: [(camera: String, state: FeedState, incidents: Set<Int64>)] = []
        // An edge's copy of a camera says nothing of the camera: only its origin's state is published.
        for (camera, state) in body.cameras.sorted(by: { $0.key < $1.key }) {
            guard let incidents = assigned[camera] else { continue }
            if nodeStates[camera] != state { states.append((camera, state.feedState, incidents)) }
            nodeStates[camera] = state
        }
        let thumbnails = (body.thumbnails ?? []).prefix(RelayReportBody.maximumThumbnails).compactMap { event in
            assigned[event.camera].map { (event.thumbnail, $0) }
        }
        let origins = assigned.keys.sorted().compactMap { camera in
            sources[camera].map { source in
                let edges = feeds[camera]?.edges.values.map(\.node).sorted() ?? []
                return RelayAssignment(camera: camera, url: source.url, masks: source.masks, edges: edges.isEmpty ? nil : edges)
            }
        }
        let reply = RelayReportResult(
            assignments: origins + edgeAssignments(of: reporting, ticketsExpire: ticketsExpire),
            end: nodeEndings.removeValue(forKey: node) ?? [:], record: reporting.footageBudget == nil ? nil : assigned.keys.filter(recorded.contains).sorted())
        return NodeReport(reply: reply, ended: ended, states: states, thumbnails: thumbnails)
    }

    /// The cameras `edge` pulls for its site's viewers, each from its origin node now, with a
    /// ticket for `feed.upstream` there bound to the edge's key. A camera whose origin is not a
    /// relay node (unplaced, or on the coordinator) has none: its edge waits.
    private func edgeAssignments(of edge: RelayNodeRegistry.Node, ticketsExpire: Date) -> [RelayAssignment] {
        guard let key = edge.publicKey else { return [] }
        return feeds.keys.sorted().compactMap { camera -> RelayAssignment? in
            guard let entry = feeds[camera], entry.edges.values.contains(where: { $0.node == edge.name }), case .node(let origin) = entry.server,
                  origin != edge.name, let originNode = nodes.node(origin), let source = sources[camera]
            else { return nil }
            let ticket = RelayTicket(
                view: "upstream", grant: "", incident: Self.assignedByCoordinator, camera: camera, viewerKey: key, agency: "relay", user: edge.name,
                expires: ticketsExpire, edge: edge.name)
            guard let signed = try? ticket.signed(with: originNode.secret) else { return nil }
            return RelayAssignment(
                camera: camera, url: "relay://\(origin)/\(camera)", masks: source.masks,
                upstream: FeedRedirect(relay: origin, media: originNode.media, serverKey: originNode.serverKey, ticket: signed))
        }
    }

    /// Where a viewer goes for a camera relay node `name` serves: its endpoint and a ticket for
    /// this view, bound to the viewer's key (`viewerKey`), or for a link (`link`) the link's token.
    /// A playback's ticket (from `moment`) carries the camera's masks now.
    func redirect(
        to name: String, for allowed: AllowedView, camera: String, identity: BusIdentity, viewerKey: String?, link: Bool, expires: Date,
        playbackFrom moment: Date? = nil
    ) throws -> FeedRedirect {
        guard let node = nodes.node(name), let viewerKey else {
            throw BusProtocol.ErrorBody(.cameraUnavailable, message: "relay node \(name) of camera \(camera) is gone", field: "body.camera")
        }
        let ticket = RelayTicket(
            view: allowed.view, grant: allowed.grant, incident: allowed.incident, camera: camera, viewerKey: viewerKey, agency: identity.agency,
            user: identity.user, expires: expires, link: link ? true : nil, at: moment,
            masks: moment == nil ? nil : TicketMasks(sources[camera]?.masks ?? []))
        return FeedRedirect(relay: name, media: node.media, serverKey: node.serverKey, ticket: try ticket.signed(with: node.secret))
    }

    /// The links address of relay node `name`, if it serves links.
    func links(ofNode name: String) -> String? {
        nodes.node(name)?.links
    }

    private static var notCoordinator: BusProtocol.ErrorBody {
        BusProtocol.ErrorBody(.notCoordinator, message: "this relay takes no nodes", field: "op")
    }
}
