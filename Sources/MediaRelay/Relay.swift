import Bus
import Foundation
import Geo
import Incidents
import Logging
import Metrics
import Streams
import Synchronization
import VigilProtocol

/// The relay inside `vigil serve`: keeps a feed open for every camera an incident selects
/// (pre-warm, released after a linger), serves views on the media endpoint to named users whose
/// consultation the decision function allows (audited with the justification), and ends a
/// view within a second when access is revoked or the incident closes. Live feeds' keyframes
/// make thumbnails on a worker thread, privacy masks applied.
///
/// The same class runs on a relay node (`vigil relay`): there it serves the cameras the
/// coordinator assigns, and its views are allowed by tickets the coordinator signed. In `vigil
/// serve` with relay nodes registered, it is the coordinator: it spreads the wanted cameras over
/// itself and the nodes (``RelayPlacement``) and sends each viewer to the relay of its camera.
/// Links are in `Relay+Links.swift`, relay nodes in `Relay+Nodes.swift`.
public final class Relay: Sendable {
    /// What the coordinator needs: the registered nodes, this relay's own caps, and the viewers' public keys (for tickets).
    public struct Coordination: Sendable {
        let nodes: RelayNodes
        let capacity: RelayPlacement.Relay
        let publicKey: @Sendable (BusIdentity) -> String?

        public init(nodes: RelayNodes, capacity: RelayPlacement.Relay, publicKey: @escaping @Sendable (BusIdentity) -> String?) {
            (self.nodes, self.capacity, self.publicKey) = (nodes, capacity, publicKey)
        }
    }

    /// The bit rate a camera is expected to need when placed (a surveillance camera's main stream).
    static let expectedMbps = 4.0
    /// The relay node's pseudo-incident: the assignment that keeps a camera open on a node.
    static let assignedByCoordinator: Int64 = 0

    /// Where a camera's picture comes from, and what of it must never be shown.
    public struct Source: Sendable {
        var url: String
        var masks: [Thumbnailer.Mask]

        public static func of(_ cameras: [Camera]) -> [String: Source] {
            Dictionary(uniqueKeysWithValues: cameras.map { ($0.id, Source(url: $0.stream, masks: $0.privacyMasks)) })
        }
    }

    static let linger = Duration.seconds(30)
    static let recheckInterval = Duration.seconds(1)
    /// How long a link's view stays open while no player plays it.
    static let linkLinger = Duration.seconds(30)

    /// Which relay serves a camera.
    enum Server: Equatable {
        case here
        case node(String)
        /// No relay has room for it.
        case nowhere
    }

    struct FeedEntry {
        /// Nil while another relay serves the camera, or while it has no picture here.
        var feed: CameraFeed?
        var incidents: Set<Int64>
        var views = 0
        var idleSince: ContinuousClock.Instant?
        var server = Server.here

        /// Wanted while an incident (or, on a node, the coordinator) selects the camera or a view watches it.
        var isWanted: Bool { !incidents.isEmpty || views > 0 }

        /// Starts the linger once nothing wants the camera any more.
        mutating func lingerIfUnwanted(since now: ContinuousClock.Instant) {
            if !isWanted { idleSince = now }
        }
    }

    /// How a view reaches its viewer: packets on the media endpoint, MPEG-TS over HTTP behind
    /// a link (`feed.link`), which a player such as VLC opens, or (on the coordinator) from the
    /// relay node that serves the camera.
    enum Delivery: Equatable {
        case media(peer: Data)
        case link(token: String)
        case node(String)
    }

    struct View {
        let delivery: Delivery
        let identity: BusIdentity
        let camera: String
        let allowed: AllowedView
        /// Nil while a link is not being played.
        var subscriber: FeedSubscriber?
        var sequence: Int64 = 0
        /// Since when a link has not been played, or a node's view not been reported by the
        /// node (nil while it is, and for media views).
        var idleSince: ContinuousClock.Instant?
    }

    let bus: BusServer
    let authority: any ViewAuthority
    let sources: Mutex<[String: Source]>
    let thumbnails: ThumbnailWorker
    let logger: Logger
    let feeds = Mutex<[String: FeedEntry]>([:])
    let views = Mutex<[String: View]>([:])
    let stopping = Atomic<Bool>(false)
    /// Peers the media socket could not reach since the supervisor last looked (the pump collects them).
    private let unreachable = Mutex<Set<Data>>([])
    /// Told of every feed state change with the incidents selecting the camera (set once at start-up).
    let stateListener = Mutex<(@Sendable (String, FeedState, Set<Int64>) -> Void)?>(nil)
    /// Told of every new thumbnail with the incidents selecting the camera (set once at start-up).
    let thumbnailListener = Mutex<(@Sendable (Thumbnail, Set<Int64>) -> Void)?>(nil)
    private let pumpFinished = DispatchSemaphore(value: 0)
    /// Where links point: `http://HOST:PORT` of the HTTP media endpoint, once it is bound.
    let linkBase = Mutex<String?>(nil)
    let coordination: Coordination?
    /// Views a relay node must end, with the reason, told in the reply to its next report.
    let nodeEndings = Mutex<[String: [String: String]]>([:])
    /// Views of relay nodes that ended here lately, which a node may still report for a moment.
    let nodeViewsEnded = Mutex<[String: ContinuousClock.Instant]>([:])
    /// The last state each node reported for each camera it serves.
    let nodeStates = Mutex<[String: WireFeedState]>([:])

    /// Whether `sim://` cameras are generated in process (`vigil serve --simulate`).
    private let simulate: Bool

    /// - Parameters:
    ///   - sources: each camera's source, from the registry.
    ///   - thumbnailInterval: the shortest time between two thumbnails of a camera.
    ///   - coordination: in `vigil serve`, the relay nodes; nil on a node.
    public init(
        bus: BusServer, authority: any ViewAuthority, sources: [String: Source], simulate: Bool, thumbnailInterval: Duration,
        coordination: Coordination?, logger: Logger
    ) {
        self.coordination = coordination
        self.simulate = simulate
        self.bus = bus
        self.authority = authority
        self.sources = Mutex(sources)
        self.logger = logger
        thumbnails = ThumbnailWorker(interval: thumbnailInterval)
    }

    // MARK: Pre-warm

    /// Follows a committed change: cameras added are opened at once, cameras left by every
    /// incident are released after the linger.
    /// A change that may end views (a closing, a status or participant change, a grant revoked
    /// or expired) has them re-decided at once rather than at the next second.
    public func follow(_ change: IncidentChange) {
        if change.incident.status.holdsSelection { prewarm(change.added.map(\.id), for: change.incidentId) }
        switch change.change {
        case .closed, .updated, .handedOver, .accessChanged: Task { await recheckViews() }
        case .opened, .redrawn, .moved: break
        }
        let now = ContinuousClock.now
        feeds.withLock { feeds in
            let released = change.change == .closed ? Array(feeds.keys) : change.removed
            for camera in released where feeds[camera]?.incidents.remove(change.incidentId) != nil {
                feeds[camera]!.lingerIfUnwanted(since: now)
            }
        }
    }

    /// Opens the feeds of `cameras` for `incident` (at start-up, for the incidents already open).
    public func prewarm(_ cameras: [String], for incident: Int64) {
        feeds.withLock { feeds in
            for camera in cameras {
                feeds[camera, default: FeedEntry(incidents: [])].incidents.insert(incident)
                feeds[camera]?.idleSince = nil
            }
        }
        place()
    }

    /// Decides which relay serves each wanted camera (this one, or a registered node, by
    /// rendezvous hashing within their caps) and opens or gives up feeds to match. Without
    /// nodes, every camera is served here. A feed that views are using stays until they end.
    func place() {
        let nodes = coordination?.nodes.alive() ?? []
        let released = feeds.withLock { feeds -> [CameraFeed] in
            let wanted = feeds.filter(\.value.isWanted).keys
            var placement: [String: String] = [:]
            if let coordination, !nodes.isEmpty {
                let relays = [coordination.capacity] + nodes.map {
                    RelayPlacement.Relay(name: $0.name, maximumStreams: $0.maximumStreams, maximumMbps: $0.maximumMbps)
                }
                placement = RelayPlacement.assign(Dictionary(uniqueKeysWithValues: wanted.map { ($0, Self.expectedMbps) }), to: relays)
            }
            var released: [CameraFeed] = []
            for camera in wanted {
                let server: Server = nodes.isEmpty ? .here : placement[camera].map { $0 == coordination?.capacity.name ? .here : .node($0) } ?? .nowhere
                feeds[camera]!.server = server
                if server == .here {
                    if feeds[camera]!.feed == nil, let feed = makeFeed(camera) {
                        feeds[camera]!.feed = feed
                        feed.start()
                    }
                } else if feeds[camera]!.views == 0, let feed = feeds[camera]!.feed {
                    feeds[camera]!.feed = nil
                    released.append(feed)
                }
            }
            return released
        }
        stopFeeds(released)
    }

    /// Stops feeds given up, and forgets their thumbnails.
    private func stopFeeds(_ released: [CameraFeed]) {
        for feed in released {
            feed.stop()
            thumbnails.forget(feed.camera)
        }
    }

    /// A feed for `camera`, or nil when it has no source. The fixtures' `sim://` cameras have a
    /// picture only when the server simulates them, and only once someone watches: encoding every
    /// selected camera would take a small machine's whole CPU (a simulated camera starts with a
    /// keyframe, so the first picture does not wait).
    func makeFeed(_ camera: String, forView: Bool = false) -> CameraFeed? {
        guard let source = sources.withLock({ $0[camera] }) else { return nil }
        let url = source.url
        if url.hasPrefix("sim://") && !(simulate && forView) { return nil }
        var configuration = CameraFeed.Configuration()
        configuration.simulate = simulate
        // A local file is a simulated camera: played in real time, looped.
        configuration.loopFiles = url.hasPrefix("/") || url.hasPrefix("file:")
        let logger = self.logger, thumbnails = self.thumbnails
        return CameraFeed(camera: camera, url: url, configuration: configuration, onState: { [self] camera, state in
            let incidents = feeds.withLock { $0[camera]?.incidents } ?? []
            stateListener.withLock { $0 }?(camera, state, incidents)
            // Problems are worth an operator's attention; the rest is on the cameras/ channels.
            switch state {
            case .stalled, .down: logger.notice("camera feed", metadata: ["camera": "\(camera)", "feed.state": "\(state)"])
            case .connecting, .live, .stopped: logger.debug("camera feed", metadata: ["camera": "\(camera)", "feed.state": "\(state)"])
            }
        }, onKeyframe: { keyframe, parameterSets, video in
            thumbnails.offer(camera: camera, keyframe: keyframe, parameterSets: parameterSets, video: video, masks: source.masks)
        })
    }

    public func onCameraState(_ listener: @escaping @Sendable (String, FeedState, Set<Int64>) -> Void) {
        stateListener.withLock { $0 = listener }
    }

    public func onThumbnail(_ listener: @escaping @Sendable (Thumbnail, Set<Int64>) -> Void) {
        thumbnailListener.withLock { $0 = listener }
    }

    /// The registry was reloaded: new cameras' sources (open feeds keep theirs until released).
    public func updateSources(_ sources: [String: Source]) {
        self.sources.withLock { $0 = sources }
    }

    // MARK: Views

    /// Serves the media endpoint's requests until the bus stops. They run side by side:
    /// opening a feed may wait for its first picture.
    public func serveRequests() async {
        await withDiscardingTaskGroup { views in
            for await request in bus.mediaRequests {
                views.addTask { await self.handle(request) }
            }
        }
    }

    func handle(_ request: BusRequest) async {
        let header: BusProtocol.RequestHeader
        do {
            header = try BusProtocol.decodeHeader(request.payload)
        } catch {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: nil, error), payload: nil)
            return
        }
        do {
            switch ProtocolOperation(rawValue: header.op) {
            case .feedOpen:
                let body = try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload)
                let (result, feed, view) = try await open(body, for: request, delivery: .media(peer: request.peer))
                // One viewer per view: a relay node's ticket opens its view once.
                let fresh = views.withLock { views in
                    guard views[result.view] == nil else { return false }
                    views[result.view] = view
                    return true
                }
                guard fresh else {
                    releaseView(of: view.camera)
                    throw BusProtocol.ErrorBody(code: "ticket_invalid", message: "this ticket's view is already being served", field: "body.ticket")
                }
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
                // Only now may the pump send packets: the reply is queued before the first of them.
                views.withLock { views in
                    views[result.view]?.subscriber = feed?.subscribe(id: result.view, capacity: 256)
                }
            case .feedLink:
                guard let base = linkBase.withLock({ $0 }) else {
                    throw BusProtocol.ErrorBody(code: "links_unavailable", message: "this relay serves no HTTP links", field: "op")
                }
                let body = try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload)
                let token = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16).leftPadded(to: 16) }.joined()
                let (opened, _, view) = try await open(body, for: request, delivery: .link(token: token))
                views.withLock { $0[opened.view] = view }
                // Played here with the token, or on the relay node that serves the camera with a link ticket as the token.
                var address = (base: base, token: token)
                if let redirect = opened.redirect {
                    guard let links = coordination?.nodes.node(redirect.relay)?.links else {
                        try await end(opened.view, reason: "relay node \(redirect.relay) serves no links", notify: false)
                        throw BusProtocol.ErrorBody(
                            code: "camera_unavailable", message: "camera \(body.camera) is served by relay node \(redirect.relay), which serves no links; use feed.open",
                            field: "body.camera")
                    }
                    address = (links, redirect.ticket)
                }
                let result = FeedLinkResult(
                    view: opened.view, grant: opened.grant, stream: opened.stream, relay: opened.redirect?.relay,
                    url: "\(address.base)/views/\(address.token)/stream.ts", thumbnailUrl: "\(address.base)/views/\(address.token)/thumbnail.jpg",
                    unusedLinkExpiresAfterS: Int(Self.linkLinger.components.seconds))
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
            case .feedClose:
                let body = try BusProtocol.decodeBody(ViewStopBody.self, from: request.payload)
                try await end(body.view, reason: "closed by the viewer", notify: false)
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: ["view": body.view]), payload: nil)
            default:
                throw BusProtocol.ErrorBody(code: "unknown_operation", message: "the media endpoint serves feed.open, feed.link and feed.close", field: "op")
            }
        } catch let error as BusProtocol.ErrorBody {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: header.id, error), payload: nil)
        } catch let error as IncidentError {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: header.id, .init(code: error.code, message: error.message, field: error.field)), payload: nil)
        } catch {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: header.id, .init(code: "internal_error", message: "\(error)")), payload: nil)
        }
    }

    /// Starts a view: the consultation is decided and audited first; nothing is sent before.
    /// The caller subscribes the view to the feed when its viewer is ready.
    private func open(_ body: FeedOpenBody, for request: BusRequest, delivery: Delivery) async throws -> (FeedOpenResult, CameraFeed?, View) {
        let allowed = try await authority.begin(body, for: request.identity)
        return try await attach(allowed, camera: body.camera, identity: request.identity, delivery: delivery)
    }

    /// Brings an allowed view to its camera's feed, opening it if needed. A camera that a relay
    /// node serves gets a redirect instead of a feed: the node's endpoint and a ticket (a link's
    /// ticket for a link). A view that cannot be served is ended with its authority.
    func attach(_ allowed: AllowedView, camera: String, identity: BusIdentity, delivery: Delivery) async throws -> (FeedOpenResult, CameraFeed?, View) {
        feeds.withLock { feeds in
            feeds[camera, default: FeedEntry(incidents: [])].views += 1
            feeds[camera]?.idleSince = nil
        }
        place()
        // A node may be asked for a camera before its next report brings the assignment: the
        // source may appear within a moment, as may the picture's description.
        func served() -> (Server, CameraFeed?) {
            feeds.withLock { feeds -> (Server, CameraFeed?) in
                if feeds[camera]?.server == .here, feeds[camera]?.feed == nil, let feed = makeFeed(camera, forView: true) {
                    feeds[camera]?.feed = feed
                    feed.start()
                }
                return (feeds[camera]?.server ?? .nowhere, feeds[camera]?.feed)
            }
        }
        var (server, feed) = served()
        if case .node(let name) = server {
            do {
                let isLink = if case .link = delivery { true } else { false }
                let redirect = try redirect(to: name, for: allowed, camera: camera, identity: identity, link: isLink)
                var view = View(delivery: .node(name), identity: identity, camera: camera, allowed: allowed)
                view.idleSince = .now  // until the node reports it
                return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: nil, redirect: redirect), nil, view)
            } catch {
                await authority.end(allowed.view, identity: identity)
                releaseView(of: camera)
                throw error
            }
        }
        // The picture may still be connecting: wait a little for its description.
        var description = feed?.streamDescription
        let deadline = ContinuousClock.now + .seconds(5)
        while description == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            if feed == nil { (server, feed) = served() }
            description = feed?.streamDescription
        }
        guard let feed, let description else {
            await authority.end(allowed.view, identity: identity)
            releaseView(of: camera)
            throw BusProtocol.ErrorBody(
                code: "camera_unavailable", message: "camera \(camera) is \(feed.map { "\($0.state)" } ?? "without a source")", field: "body.camera")
        }
        var view = View(delivery: delivery, identity: identity, camera: camera, allowed: allowed)
        if case .link = delivery { view.idleSince = .now }
        return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: description), feed, view)
    }

    func releaseView(of camera: String) {
        feeds.withLock { feeds in
            feeds[camera]?.views -= 1
            feeds[camera]?.lingerIfUnwanted(since: .now)
        }
    }

    /// Ends a view: no more packets, the end audited, the viewer told why (unless it asked).
    func end(_ id: String, reason: String, notify: Bool) async throws {
        guard let view = views.withLock({ $0.removeValue(forKey: id) }) else {
            throw BusProtocol.ErrorBody(code: "view_not_found", message: "there is no view \(id)", field: "body.view")
        }
        feeds.withLock { $0[view.camera]?.feed }?.unsubscribe(id: id)
        releaseView(of: view.camera)
        // What this viewer lost to its own slowness (its queue dropped frame by frame).
        let dropped = view.subscriber?.dropped ?? 0
        if dropped > 0 { Counter(label: "vigil_relay_packets_dropped_total").increment(by: dropped) }
        logger.info("view ended", metadata: ["view": "\(id)", "camera": "\(view.camera)", "reason": "\(reason)", "packets.dropped": "\(dropped)"])
        if notify, case .media(let peer) = view.delivery {
            let header = try BusProtocol.encoder.encode(FeedMessage(view: id, type: "feed.ended", seq: view.sequence + 1, reason: reason))
            bus.sendMedia(to: peer, header: header, payload: nil)
        }
        if case .node(let name) = view.delivery {
            nodeViewsEnded.withLock { $0[id] = .now }
            if notify { nodeEndings.withLock { $0[name, default: [:]][id] = reason } }
        }
        await authority.end(id, identity: view.identity)
    }

    // MARK: Running

    /// Starts the thumbnail worker and the pump, which moves packets from the views' queues to
    /// the media endpoint until stopped (its own thread).
    public func start() {
        thumbnails.start { [self] thumbnail in
            let incidents = feeds.withLock { $0[thumbnail.camera]?.incidents } ?? []
            thumbnailListener.withLock { $0 }?(thumbnail, incidents)
        } onFailure: { [logger] camera, error in
            logger.notice("thumbnail failed", metadata: ["camera": "\(camera)", "error": "\(error)"])
        }
        let thread = Thread { [self] in
            // A viewer whose socket queue filled up is left alone for a moment, so that its packets
            // wait in its own queue, which drops frame by frame (libzmq would drop blindly).
            var pausedUntil: [Data: ContinuousClock.Instant] = [:]
            while !stopping.load(ordering: .relaxed) {
                var sent = 0
                let now = ContinuousClock.now
                for (peer, failures) in bus.takeMediaFailures() {
                    if failures.full > 0 { pausedUntil[peer] = now.advanced(by: .milliseconds(100)) }
                    if failures.unreachable > 0 { unreachable.withLock { _ = $0.insert(peer) } }
                }
                pausedUntil = pausedUntil.filter { $0.value > now }
                let current = views.withLock { views in views.map { ($0.key, $0.value) } }
                for (id, view) in current {
                    guard case .media(let peer) = view.delivery, pausedUntil[peer] == nil, let subscriber = view.subscriber else { continue }
                    // A few at a time: the socket's queue per viewer is small, the viewer's own is not.
                    let packets = subscriber.take(timeout: .zero, limit: 32)
                    guard !packets.isEmpty else { continue }
                    var sequence = view.sequence
                    for packet in packets {
                        sequence += 1
                        let header = FeedMessage(
                            view: id, type: "packet", seq: sequence, pts: packet.pts, dts: packet.dts, duration: packet.duration, key: packet.isKeyframe)
                        if let encoded = try? BusProtocol.encoder.encode(header) {
                            bus.sendMedia(to: peer, header: encoded, payload: packet.data)
                        }
                    }
                    views.withLock { $0[id]?.sequence = sequence }
                    sent += packets.count
                }
                if sent == 0 { Thread.sleep(forTimeInterval: 0.002) }
            }
            pumpFinished.signal()
        }
        thread.name = "vigil.relay"
        thread.start()
    }

    /// Decides every view again: a vanished viewer, a silent relay node, an unplayed link or a
    /// refusal by the view's authority ends it.
    func recheckViews() async {
        let gone = unreachable.withLock { peers in
            defer { peers.removeAll() }
            return peers
        }
        let nodes = Set(coordination?.nodes.alive().map(\.name) ?? [])
        for (id, view) in views.withLock({ $0.map { ($0.key, $0.value) } }) {
            var reason: String?
            if case .media(let peer) = view.delivery, gone.contains(peer) {
                reason = "the viewer is gone"
            } else if case .node(let name) = view.delivery, !nodes.contains(name) {
                reason = "relay node \(name) stopped reporting"
            } else if let idle = view.idleSince, ContinuousClock.now - idle >= Self.linkLinger {
                if case .node(let name) = view.delivery {
                    reason = "the viewer did not open the feed on relay node \(name) within \(Self.linkLinger.components.seconds) s"
                } else {
                    reason = "the link was not played for \(Self.linkLinger.components.seconds) s"
                }
            } else {
                reason = await authority.reasonToEnd(view.allowed, camera: view.camera, identity: view.identity)
            }
            if let reason { try? await end(id, reason: reason, notify: true) }
        }
    }

    /// Once a second: each view is decided again (a revoked grant or a closed incident ends it),
    /// viewers that left are dropped, and idle feeds past their linger are released.
    public func supervise() async {
        while !stopping.load(ordering: .relaxed) {
            try? await Task.sleep(for: Self.recheckInterval)
            await recheckViews()
            let now = ContinuousClock.now
            let released = feeds.withLock { feeds -> [CameraFeed] in
                let expired = feeds.filter { $0.value.idleSince.map { now - $0 >= Self.linger } ?? false }.map(\.key)
                return expired.compactMap { feeds.removeValue(forKey: $0)?.feed }
            }
            stopFeeds(released)
            // Nodes come and go: the cameras follow.
            if coordination != nil { place() }
        }
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        pumpFinished.wait()
        thumbnails.stop()
        let all = feeds.withLock { feeds in
            defer { feeds.removeAll() }
            return feeds.values.compactMap(\.feed)
        }
        all.forEach { $0.stop() }
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - count)) + self
    }
}

