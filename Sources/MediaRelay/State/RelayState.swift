import Bus
import Foundation
import Incidents
import Streams
import VigilProtocol

/// Everything a relay decides, as one value: which cameras are wanted and by whom, which relay
/// serves each (this one, a relay node, or none), the feeds open here, the views and how they
/// reach their viewers, the relay nodes registered with a coordinator and what they reported.
///
/// Its methods change the value and return what must then be done (``Action``): feeds to start
/// or stop, views to decide again. They never block, never sleep and read no clock: the time is
/// an argument, so tests drive it with instants of their own. ``Relay`` keeps one of these behind
/// one lock and carries out the actions outside it.
///
/// `Feed` is the handle of an open feed (``CameraFeed`` in a relay; any class in a test). A feed
/// is made by the `open` closure that the methods which may open feeds take: making one starts
/// nothing (the ``Action/start(_:)`` action does).
struct RelayState<Feed: AnyObject & Sendable> {
    typealias Instant = ContinuousClock.Instant
    typealias Opener = (_ camera: String, _ source: Relay.Source) -> Feed

    /// What the relay must do after a change of state, outside the lock.
    enum Action {
        case start(Feed)
        /// Stop the feed and forget its thumbnails.
        case stop(Feed)
        /// Decide every view again now rather than at the next second.
        case recheckViews
        /// Open the feed's camera again, keeping its viewers: its privacy masks changed.
        case reopen(Feed)
    }

    /// Which relay serves a camera.
    enum Server: Hashable {
        case here
        case node(String)
        /// No relay has room for it.
        case nowhere
    }

    struct FeedEntry {
        /// Nil while another relay serves the camera, or while it has no picture here.
        var feed: Feed?
        var incidents: Set<Int64> = []
        var views = 0
        var idleSince: Instant?
        var server = Server.here
        /// On the coordinator: the edge relay node of each viewers' site that pulls the camera
        /// from its origin node (``server``) for the viewers there.
        var edges: [String: Edge] = [:]

        /// Wanted while an incident (or, on a node, the coordinator) selects the camera or a view watches it.
        var isWanted: Bool { !incidents.isEmpty || views > 0 }

        /// Starts the linger once nothing wants the camera any more.
        mutating func lingerIfUnwanted(since now: Instant) {
            if !isWanted { idleSince = now }
        }
    }

    /// How a view reaches its viewer: packets on the media endpoint, MPEG-TS over HTTP behind
    /// a link (`feed.link`), which a player such as VLC opens, the camera's sealed stream over
    /// HTTP with its content keys sent to `peer` on the media endpoint, or (on the coordinator)
    /// from the relay node that serves the camera.
    enum Delivery: Equatable {
        case media(peer: Data)
        case link(token: String)
        case sealed(peer: Data, token: String)
        case node(String)

        /// The token of a link's or a sealed view's address.
        var token: String? {
            switch self {
            case .link(let token), .sealed(_, let token): token
            case .media, .node: nil
            }
        }

        /// The viewer's connection to the media endpoint.
        var peer: Data? {
            switch self {
            case .media(let peer), .sealed(let peer, _): peer
            case .link, .node: nil
            }
        }
    }

    /// An edge relay node pulling a camera for the viewers of its site.
    struct Edge: Equatable {
        let node: String
        /// Since when none of its site's viewers watches the camera there (nil while one does).
        var idleSince: Instant?
    }

    struct View {
        let delivery: Delivery
        let identity: BusIdentity
        let camera: String
        let allowed: AllowedView
        /// On an origin relay node: the edge node this view feeds (`feed.upstream`), not a viewer.
        var edge: String?
        /// A media view's queue (nil until its viewer is ready).
        var subscriber: FeedSubscriber?
        /// The player playing a link now (nil while none does).
        var player: FanOut.Player?
        var sequence: Int64 = 0
        /// Since when a link has not been played, or a node's view not been reported by the
        /// node (nil while it is, and for media views).
        var idleSince: Instant?
        /// Recorded footage, played by its own player: the camera's live feed is not involved.
        var playback = false
    }

    /// A view recorded open by a previous coordinator, waiting for a node to report it.
    struct Adoptable {
        let identity: BusIdentity
        let camera: String
        let allowed: AllowedView
    }

    /// A view taken out of the state, with the feed it must leave.
    struct EndedView {
        let view: View
        let feed: Feed?
    }

    /// This relay's caps when it coordinates relay nodes (`vigil serve`); nil on a node.
    let coordinatorCapacity: RelayPlacement.Relay?
    /// Whether `sim://` cameras are generated in process.
    let simulate: Bool

    var sources: [String: Relay.Source] {
        didSet { owners = Self.owners(of: sources) }
    }
    /// The agencies that own cameras here (their relay nodes carry their own cameras only).
    private(set) var owners: Set<String> = []

    private static func owners(of sources: [String: Relay.Source]) -> Set<String> {
        Set(sources.values.compactMap(\.owner))
    }
    private(set) var feeds: [String: FeedEntry] = [:]
    /// Views come and go only through ``insert(_:id:)``, ``insertOrKeep(_:id:)``, ``adopt(_:by:pulling:)`` and
    /// ``end(_:reason:notify:now:)``, which keep `mediaViewCount`; elsewhere they are only changed.
    var views: [String: View] = [:]
    /// How many of `views` are delivered on the media endpoint (the packet pump idles without any).
    private(set) var mediaViewCount = 0
    /// Where links point: `http://HOST:PORT` of the HTTP media endpoint, once it is bound.
    var linkBase: String?
    /// Where sealed streams are read: the same endpoint, on the server and on a relay node alike
    /// (a node serves no `feed.link` of its own: its links come with the coordinator's tickets).
    var sealedBase: String?
    /// On the coordinator: the relay nodes registered with it.
    var nodes = RelayNodeRegistry()
    /// Views a relay node must end, with the reason, told in the reply to its next report.
    var nodeEndings: [String: [String: String]] = [:]
    /// Views of relay nodes that ended here lately, which a node may still report for a moment.
    var nodeViewsEnded: [String: Instant] = [:]
    /// The last state each node reported for each camera it serves.
    var nodeStates: [String: WireFeedState] = [:]
    /// After the coordinator started (a restart, or a failover to it): the views recorded open
    /// before, which a relay node that still serves one adopts by reporting it (``adopt(_:by:)``).
    var adoptable: [String: Adoptable] = [:]
    /// The cameras the coordinator wants recorded: a simulated one among them opens like a watched one.
    var recorded: Set<String> = []
    /// Peers the media socket could not reach since the views were last decided.
    private var unreachable: Set<Data> = []
    /// On a relay node: the edge nodes that may pull each camera from here, as the coordinator said.
    var upstreamEdges: [String: Set<String>] = [:]
    /// On an edge node: the origin nodes its pulls failed from since its last report.
    var unreachableOrigins: Set<String> = []
    /// On an edge node: the origin each camera's last pull failed from, until the next pull.
    var failedUpstreams: [String: String] = [:]
    /// On a relay node: since when each edge's pull has not been listed (``upstreamEdges``).
    private var unlistedPulls: [String: Instant] = [:]
    /// How long a pull goes on while the coordinator does not list its edge: after a
    /// coordinator's failover, the origin may report to the new one before the edge does.
    static var unlistedPullGrace: Duration { .seconds(5) }

    static var linger: Duration { .seconds(30) }
    /// How long a link's view stays open while no player plays it (and a node's view while its node does not report it).
    static var linkLinger: Duration { .seconds(30) }
    /// The bit rate a camera is expected to need when placed (a surveillance camera's main stream).
    static var expectedMbps: Double { 4.0 }
    /// The relay node's pseudo-incident: the assignment that keeps a camera open on a node.
    static var assignedByCoordinator: Int64 { 0 }

    init(sources: [String: Relay.Source], coordinatorCapacity: RelayPlacement.Relay?, simulate: Bool) {
        self.sources = sources
        owners = Self.owners(of: sources)
        self.coordinatorCapacity = coordinatorCapacity
        self.simulate = simulate
    }

    // MARK: Wanted cameras

    /// A committed change: cameras added are opened at once, cameras left by every incident are
    /// released after the linger. A change that may end views (a closing, a status or
    /// participant change, a grant revoked or expired) has them decided again at once.
    mutating func follow(_ change: IncidentChange, now: Instant, open: Opener) -> [Action] {
        var actions: [Action] = []
        if change.incident.status.holdsSelection {
            actions += prewarm(change.added.map(\.id), for: change.incidentId, now: now, open: open)
        }
        switch change.change {
        case .closed, .updated, .handedOver, .accessChanged: actions.append(.recheckViews)
        case .opened, .redrawn, .moved: break
        }
        release(change.change == .closed ? Array(feeds.keys) : change.removed, by: change.incidentId, now: now)
        return actions
    }

    /// `incident` no longer selects `cameras`: those nothing else wants start their linger.
    mutating func release(_ cameras: [String], by incident: Int64, now: Instant) {
        for camera in cameras where feeds[camera]?.incidents.remove(incident) != nil {
            feeds[camera]!.lingerIfUnwanted(since: now)
        }
    }

    /// `incident` selects `cameras`: their feeds open (at start-up, for the incidents already open).
    mutating func prewarm(_ cameras: [String], for incident: Int64, now: Instant, open: Opener) -> [Action] {
        for camera in cameras {
            feeds[camera, default: FeedEntry()].incidents.insert(incident)
            feeds[camera]?.idleSince = nil
        }
        return place(now: now, open: open)
    }

    /// On a relay node: the cameras the coordinator assigns, with their sources. They open at
    /// once; the others are released after the linger once their views end.
    mutating func hold(_ assignments: [RelayAssignment], now: Instant, open: Opener) -> [Action] {
        let assignedSources = Dictionary(assignments.map { ($0.camera, Relay.Source(url: $0.url, masks: $0.masks, upstream: $0.upstream)) }) { _, last in last }
        let reopened = reopeningForChangedMasks(assignedSources)
        // One change to `sources`, not one per camera: each change derives `owners` anew.
        sources.merge(assignedSources) { _, assigned in assigned }
        upstreamEdges = Dictionary(uniqueKeysWithValues: assignments.compactMap { assignment in
            assignment.edges.map { (assignment.camera, Set($0)) }
        })
        let assigned = Set(assignments.map(\.camera))
        for camera in assigned { feeds[camera, default: FeedEntry()].incidents.insert(Self.assignedByCoordinator) }
        for camera in feeds.keys where !assigned.contains(camera) && feeds[camera]!.incidents.remove(Self.assignedByCoordinator) != nil {
            feeds[camera]!.lingerIfUnwanted(since: now)
        }
        return reopened + place(now: now, open: open)
    }

    /// On a coordinator, after a registry reload: every camera's source anew. Open feeds keep
    /// their sources' addresses until released, but a change of privacy masks opens the camera again.
    mutating func replaceSources(_ new: [String: Relay.Source]) -> [Action] {
        defer { sources = new }
        return reopeningForChangedMasks(new)
    }

    /// The feeds open here, pulled from their cameras, whose privacy masks differ in `new`: the
    /// masks apply to what they send from the next picture on, not from their next reconnection.
    private func reopeningForChangedMasks(_ new: [String: Relay.Source]) -> [Action] {
        feeds.compactMap { camera, entry in
            guard let feed = entry.feed, let after = new[camera], after.upstream == nil, after.masks != (sources[camera]?.masks ?? []) else { return nil }
            return .reopen(feed)
        }
    }

    /// Decides which relay serves each wanted camera (where it is served already, or else this
    /// one or a registered node by rendezvous hashing, within their caps) and opens or gives up
    /// feeds to match. Without nodes, every camera is served here. A feed that views are using
    /// stays until they end.
    mutating func place(now: Instant, open: Opener) -> [Action] {
        let alive = nodes.alive(now: now)
        let wanted = feeds.filter(\.value.isWanted).keys
        var placement: [String: String] = [:]
        if let coordinatorCapacity, !alive.isEmpty {
            let relays = [coordinatorCapacity] + alive.map(\.capacity)
            // A camera whose owner pulls its cameras at its own site is pulled there only, by the
            // owner's own nodes that said so (`--origin-of`): a node of another agency that names
            // the same site is not one of them, and never receives the cameras' source URLs.
            let ownerSites = nodes.ownerSites  // once a placement, not once a camera
            let originNodes = alive.reduce(into: [String: Set<String>]()) { origins, node in
                for owner in node.origins where node.site != nil && node.site == ownerSites[owner] { origins[owner, default: []].insert(node.name) }
            }
            // Anywhere else, a node of an agency that owns cameras pulls its own only: another
            // owner never sent its URLs, credentials and streams to it. The coordinator and the
            // nodes of agencies that own none (the platform's) pull any.
            var carriers: [String: Set<String>] = [:]
            for owner in Set(wanted.compactMap { sources[$0]?.owner }) {
                carriers[owner] = Set([coordinatorCapacity.name] + alive.filter { Self.mayCarry(owner: owner, node: $0, owners: owners) }.map(\.name))
            }
            let allowed = wanted.reduce(into: [String: Set<String>]()) { allowed, camera in
                guard let owner = sources[camera]?.owner else { return }
                allowed[camera] = originNodes[owner] ?? carriers[owner]
            }
            // Sticky: a camera stays where it is served (a feed open here, or a node's), while
            // that relay is alive and within its caps; a new one is placed by its hash.
            let current = wanted.reduce(into: [String: String]()) { current, camera in
                switch feeds[camera]?.server {
                case .here where feeds[camera]?.feed != nil: current[camera] = coordinatorCapacity.name
                case .node(let name): current[camera] = name
                default: break
                }
            }
            placement = RelayPlacement.assign(
                Dictionary(uniqueKeysWithValues: wanted.map { ($0, Self.expectedMbps) }), to: relays, keeping: current, allowed: allowed)
        }
        // An edge goes with its node; its viewers ask again.
        let aliveNames = Set(alive.map(\.name))
        for camera in feeds.keys where !feeds[camera]!.edges.isEmpty {
            feeds[camera]!.edges = feeds[camera]!.edges.filter { aliveNames.contains($0.value.node) }
        }
        var actions: [Action] = []
        for camera in wanted {
            let server: Server = alive.isEmpty ? .here : placement[camera].map { $0 == coordinatorCapacity?.name ? .here : .node($0) } ?? .nowhere
            feeds[camera]!.server = server
            if server == .here {
                if let feed = openFeed(camera, forView: false, open: open) { actions.append(.start(feed)) }
            } else if feeds[camera]!.views == 0, let feed = feeds[camera]!.feed {
                feeds[camera]!.feed = nil
                actions.append(.stop(feed))
            }
        }
        return actions
    }

    /// Whether `node` may carry a camera of `owner`: its own, or any when its agency owns none
    /// of the cameras (`owners`: the agencies that own some).
    static func mayCarry(owner: String?, node: RelayNodeRegistry.Node, owners: Set<String>) -> Bool {
        node.agency == owner || !owners.contains(node.agency)
    }

    /// The edge node that serves `camera` to the viewers of `site`, chosen now if there is none:
    /// when the camera's origin is relay node `origin` at another site and `site` has a node
    /// with room (rendezvous hashing, as for origins). Nil: the viewer is served by the origin.
    private mutating func edge(for camera: String, at site: String, origin: String) -> String? {
        guard let originNode = nodes.node(origin), originNode.site != site else { return nil }
        if let edge = feeds[camera]?.edges[site], nodes.node(edge.node) != nil {
            feeds[camera]!.edges[site]!.idleSince = nil
            return edge.node
        }
        var load: [String: Int] = [:]
        for entry in feeds.values {
            if case .node(let name) = entry.server { load[name, default: 0] += 1 }
            for edge in entry.edges.values { load[edge.node, default: 0] += 1 }
        }
        let owner = sources[camera]?.owner
        let chosen = nodes.nodes(at: site)
            .filter { load[$0.name, default: 0] < $0.maximumStreams && Self.mayCarry(owner: owner, node: $0, owners: owners) }
            .max { RelayPlacement.score(camera, $0.name) < RelayPlacement.score(camera, $1.name) }
        guard let chosen else { return nil }
        feeds[camera]!.edges[site] = Edge(node: chosen.name)
        return chosen.name
    }

    /// Opens `camera`'s feed here if it is served here, has none yet and has a source. The
    /// fixtures' `sim://` cameras have a picture only when the relay simulates them, and only
    /// once someone watches or it is recorded: encoding every selected camera would take a
    /// small machine's whole CPU (a simulated camera starts with a keyframe, so the first
    /// picture does not wait).
    private mutating func openFeed(_ camera: String, forView: Bool, open: Opener) -> Feed? {
        guard let entry = feeds[camera], entry.server == .here, entry.feed == nil, let source = sources[camera] else { return nil }
        if source.url.hasPrefix("sim://") && !(simulate && (forView || recorded.contains(camera))) { return nil }
        let feed = open(camera, source)
        feeds[camera]!.feed = feed
        return feed
    }

    /// The incidents that select `camera` (for its state and thumbnails).
    func incidents(selecting camera: String) -> Set<Int64> {
        feeds[camera]?.incidents ?? []
    }

    func feed(of camera: String) -> Feed? {
        feeds[camera]?.feed
    }

    /// Every feed open here, by camera.
    var openFeeds: [String: Feed] {
        feeds.compactMapValues(\.feed)
    }

    /// Once a second: feeds idle past their linger are released, and (on a coordinator) the
    /// cameras follow the nodes that came or went.
    mutating func tick(now: Instant, open: Opener) -> [Action] {
        lingerIdleEdges(now: now)
        let expired = feeds.filter { $0.value.idleSince.map { now - $0 >= Self.linger } ?? false }.map(\.key)
        var actions = expired.compactMap { feeds.removeValue(forKey: $0)?.feed }.map(Action.stop)
        if coordinatorCapacity != nil { actions += place(now: now, open: open) }
        return actions
    }

    /// An edge none of its site's viewers watches is released after the linger, as a feed is
    /// (a viewer coming back in the meantime finds it warm).
    private mutating func lingerIdleEdges(now: Instant) {
        var watched: Set<[String]> = []
        for view in views.values { if case .node(let node) = view.delivery { watched.insert([view.camera, node]) } }
        for (camera, entry) in feeds where !entry.edges.isEmpty {
            for (site, edge) in entry.edges {
                if watched.contains([camera, edge.node]) {
                    feeds[camera]!.edges[site]!.idleSince = nil
                } else if let idle = edge.idleSince {
                    if now - idle >= Self.linger { feeds[camera]!.edges[site] = nil }
                } else {
                    feeds[camera]!.edges[site]!.idleSince = now
                }
            }
        }
    }

    /// Everything open, taken out (the relay stops).
    mutating func removeAll() -> [Feed] {
        defer { feeds.removeAll() }
        return feeds.values.compactMap(\.feed)
    }

    // MARK: Views

    /// A view wants `camera`: the camera is placed, and opened here for the view if this relay
    /// serves it. Returns who serves it and its feed here, if any: for a viewer at `site`, the
    /// edge node of that site when the camera is pulled at another (``edge(for:at:origin:)``).
    /// Until ``releaseView(of:now:)`` the camera stays wanted.
    mutating func want(_ camera: String, site: String? = nil, now: Instant, open: Opener) -> (server: Server, feed: Feed?, actions: [Action]) {
        feeds[camera, default: FeedEntry()].views += 1
        feeds[camera]?.idleSince = nil
        var actions = place(now: now, open: open)
        let (server, feed, opened) = served(camera, open: open)
        actions += opened
        if case .node(let origin) = server, let site, let edge = edge(for: camera, at: site, origin: origin) {
            return (.node(edge), nil, actions)
        }
        return (server, feed, actions)
    }

    /// Who serves `camera`, and its feed here, opened for a view if needed (a node may be asked
    /// for a camera before its next report brings the assignment: the source may appear within a moment).
    mutating func served(_ camera: String, open: Opener) -> (server: Server, feed: Feed?, actions: [Action]) {
        let opened = openFeed(camera, forView: true, open: open)
        return (feeds[camera]?.server ?? .nowhere, feeds[camera]?.feed, opened.map { [.start($0)] } ?? [])
    }

    /// A view no longer wants `camera` (it ended, or never started).
    mutating func releaseView(of camera: String, now: Instant) {
        feeds[camera]?.views -= 1
        feeds[camera]?.lingerIfUnwanted(since: now)
    }

    /// Node `node` reports view `id`, which a previous coordinator allowed: it goes on under this
    /// one's decision function, and its camera stays on that node (sticky placement), or, when
    /// the node pulls the camera from an origin (`pulling`), the node stays its site's edge.
    /// False if the view is not one to adopt.
    mutating func adopt(_ id: String, by node: String, pulling: Set<String> = []) -> Bool {
        guard views[id] == nil, let adopted = adoptable.removeValue(forKey: id) else { return false }
        let playback = adopted.allowed.mode == .playback
        views[id] = View(delivery: .node(node), identity: adopted.identity, camera: adopted.camera, allowed: adopted.allowed, playback: playback)
        // A playback plays recorded footage: the camera's live feed is not involved.
        guard !playback else { return true }
        feeds[adopted.camera, default: FeedEntry()].views += 1
        feeds[adopted.camera]?.idleSince = nil
        // An edge goes on pulling the camera from wherever its origin is placed now (the origin
        // may not have registered with this coordinator yet).
        if pulling.contains(adopted.camera), let site = nodes.node(node)?.site {
            if feeds[adopted.camera]?.edges[site] == nil { feeds[adopted.camera]?.edges[site] = Edge(node: node) }
        } else if feeds[adopted.camera]?.feed == nil {
            feeds[adopted.camera]?.server = .node(node)
        }
        return true
    }

    /// Records a view; false (and nothing changed) if one with its id is already there.
    mutating func insert(_ view: View, id: String) -> Bool {
        guard views[id] == nil else { return false }
        views[id] = view
        if case .media = view.delivery { mediaViewCount += 1 }
        return true
    }

    /// The view `id`, or, when there is none yet, `view` recorded under that id.
    mutating func insertOrKeep(_ view: View, id: String) -> (kept: View, inserted: Bool) {
        if let existing = views[id] { return (existing, false) }
        views[id] = view
        if case .media = view.delivery { mediaViewCount += 1 }
        return (view, true)
    }

    /// The viewer is ready: packets may flow to it.
    mutating func attach(_ subscriber: FeedSubscriber?, to id: String) {
        views[id]?.subscriber = subscriber
    }

    func view(_ id: String) -> View? {
        views[id]
    }

    /// The views of viewers (a relay node reports them), not the edges pulling from here.
    var viewIDs: [String] {
        views.compactMap { $0.value.edge == nil ? $0.key : nil }
    }

    /// The view a link's or a sealed view's token stands for.
    func view(withToken token: String) -> (id: String, view: View)? {
        views.first { $0.value.delivery.token == token }.map { ($0.key, $0.value) }
    }

    /// The sealed views of `camera` and their viewers' connections, but for `excluded`.
    func sealedViews(of camera: String, excluding excluded: String? = nil) -> [(id: String, peer: Data)] {
        views.compactMap { id, view in
            guard id != excluded, view.camera == camera, !view.playback, case .sealed(let peer, _) = view.delivery else { return nil }
            return (id, peer)
        }
    }

    /// A player opens a link, unless its view has ended (nil then). A link is played by one
    /// player at a time: a player that comes while another plays it (VLC or ffmpeg reconnecting
    /// before the relay noticed the old connection close) takes it over, and the one it replaces
    /// is returned, to be cut off.
    mutating func startPlaying(_ id: String, player: FanOut.Player) -> LinkTakeover? {
        guard views[id] != nil else { return nil }
        let replaced = views[id]?.player
        views[id]?.player = player
        views[id]?.idleSince = nil
        return LinkTakeover(replaced: replaced)
    }

    struct LinkTakeover {
        /// The player that played the link until now, to be cut off.
        let replaced: FanOut.Player?
    }

    /// The player of a link left: the link may be played again until it lingers out.
    mutating func stopPlaying(_ id: String, player: FanOut.Player, now: Instant) {
        guard views[id]?.player == player else { return }
        views[id]?.player = nil
        views[id]?.idleSince = now
    }

    /// The views whose packets go out on the media endpoint, ready to be sent.
    var mediaViews: [(id: String, peer: Data, subscriber: FeedSubscriber, sequence: Int64)] {
        // Copying each view to look at it showed in perf beside 200 links, ten times a second.
        guard mediaViewCount > 0 else { return [] }
        return views.compactMap { id, view in
            guard case .media(let peer) = view.delivery, let subscriber = view.subscriber else { return nil }
            return (id, peer, subscriber, view.sequence)
        }
    }

    /// The media endpoint sent a view's packets up to `sequence`.
    mutating func sent(_ id: String, upTo sequence: Int64) {
        views[id]?.sequence = sequence
    }

    /// The media socket could not reach these peers: their views end at the next decision.
    mutating func unreachable(_ peers: some Sequence<Data>) {
        unreachable.formUnion(peers)
    }

    /// Takes a view out: it leaves its feed, its camera is released, and (for a node's view) the
    /// node is told to end it when `notify`.
    mutating func end(_ id: String, reason: String, notify: Bool, now: Instant) -> EndedView? {
        guard let view = views.removeValue(forKey: id) else { return nil }
        if case .media = view.delivery { mediaViewCount -= 1 }
        if view.playback { return EndedView(view: view, feed: nil) }
        let feed = feeds[view.camera]?.feed
        releaseView(of: view.camera, now: now)
        if case .node(let name) = view.delivery {
            nodeViewsEnded[id] = now
            if notify { nodeEndings[name, default: [:]][id] = reason }
        }
        return EndedView(view: view, feed: feed)
    }

    /// What is known now of why each view must end: a vanished viewer, a silent relay node, an
    /// unplayed link; nil for the views whose authority must be asked.
    mutating func viewsToDecide(now: Instant) -> [(id: String, view: View, reason: String?)] {
        let gone = unreachable
        unreachable.removeAll()
        // Edges' pulls the coordinator does not list (now), since when.
        var unlisted: [String: Instant] = [:]
        for (id, view) in views {
            if let edge = view.edge, !(upstreamEdges[view.camera]?.contains(edge) ?? false) { unlisted[id] = unlistedPulls[id] ?? now }
        }
        unlistedPulls = unlisted
        let alive = Set(nodes.alive(now: now).map(\.name))
        return views.map { id, view in
            var reason: String?
            if let peer = view.delivery.peer, gone.contains(peer) {
                reason = view.edge == nil ? "the viewer is gone" : "edge relay node \(view.edge!) is gone"
            } else if let edge = view.edge, let since = unlisted[id] {
                if now - since >= Self.unlistedPullGrace { reason = "edge relay node \(edge) no longer pulls camera \(view.camera) from here" }
            } else if case .node(let name) = view.delivery, !alive.contains(name) {
                // A node that stopped has ended its views; a silent one ends them itself once the
                // coordinator has not answered it for its limit (a second more, for the report
                // in flight): new viewers go elsewhere at once, but the view is recorded stopped
                // only when it no longer plays.
                if nodes.departed.contains(name) {
                    reason = "relay node \(name) stopped"
                } else if nodes.fallenSilent[name].map({ now - $0 >= RelayNodeAuthority.silenceLimit + .seconds(1) }) ?? true {
                    reason = "relay node \(name) stopped reporting"
                }
            } else if let idle = view.idleSince, now - idle >= Self.linkLinger {
                if case .node(let name) = view.delivery {
                    reason = "the viewer did not open the feed on relay node \(name) within \(Self.linkLinger.components.seconds) s"
                } else {
                    reason = "the link was not played for \(Self.linkLinger.components.seconds) s"
                }
            }
            return (id, view, reason)
        }
    }
}
