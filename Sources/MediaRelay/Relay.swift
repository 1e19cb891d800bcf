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
///
/// Every decision is made by one value, ``RelayState``, behind one lock; this class carries out
/// what it returns (starting and stopping feeds, sending packets, asking the view authority) and
/// tells the coordinator what its cameras do through ``events``. Links are in
/// `Links/Relay+Links.swift`, relay nodes in `Nodes/Relay+Nodes.swift`.
public final class Relay: Sendable {
    /// What the coordinator needs: this relay's own caps, and the viewers' public keys (for tickets).
    public struct Coordination: Sendable {
        let capacity: RelayPlacement.Relay
        let publicKey: @Sendable (BusIdentity) -> String?

        public init(capacity: RelayPlacement.Relay, publicKey: @escaping @Sendable (BusIdentity) -> String?) {
            (self.capacity, self.publicKey) = (capacity, publicKey)
        }
    }

    /// Where a camera's picture comes from, and what of it must never be shown.
    public struct Source: Sendable {
        var url: String
        var masks: [Thumbnailer.Mask]
        /// Whose camera it is: an owner's cameras are pulled at the owner's site when a relay node stands there.
        var owner: String?
        /// On an edge relay node: the origin node to pull the camera from (``RelayAssignment/upstream``).
        var upstream: FeedRedirect?

        public init(url: String, masks: [Thumbnailer.Mask], owner: String? = nil, upstream: FeedRedirect? = nil) {
            (self.url, self.masks, self.owner, self.upstream) = (url, masks, owner, upstream)
        }

        public static func of(_ cameras: [Camera]) -> [String: Source] {
            Dictionary(uniqueKeysWithValues: cameras.map { ($0.id, Source(url: $0.stream, masks: $0.privacyMasks, owner: $0.owner)) })
        }
    }

    /// What the relay's cameras do, for the coordinator to publish: each with the incidents selecting the camera.
    public enum Event: Sendable {
        case cameraState(camera: String, state: FeedState, incidents: Set<Int64>)
        case thumbnail(Thumbnail, incidents: Set<Int64>)
    }

    static let recheckInterval = Duration.seconds(1)

    typealias State = RelayState<CameraFeed>

    let bus: BusServer
    let authority: any ViewAuthority
    let thumbnails: ThumbnailWorker
    let logger: Logger
    let clock: RelayClock
    let state: Mutex<State>
    let stopping = Atomic<Bool>(false)
    let coordination: Coordination?
    /// On a relay node: its own key pair, with which it pulls cameras from origin nodes as an edge.
    let upstreamKeys: CurveKeyPair?
    /// Whether `sim://` cameras are generated in process (`--simulate`).
    let simulate: Bool
    /// The camera states and thumbnails, in the order they happened (latest-wins downstream, so
    /// when nobody reads them the oldest are dropped).
    public let events: AsyncStream<Event>
    let eventSink: AsyncStream<Event>.Continuation
    /// Recording and playback (`Footage/Relay+Footage.swift`).
    let footage = Mutex(FootageState())
    /// Writes the links' streams, each camera muxed once for all its players (`Delivery/FanOut.swift`).
    let fanOut: FanOut
    /// Each camera's content key now, while it has sealed viewers (`Delivery/Relay+Sealed.swift`).
    let contentKeys = Mutex<[String: ContentKey]>([:])
    /// The last content key's number: every key this relay makes has its own.
    let nextContentKey = Atomic<UInt32>(0)
    /// Cameras whose key is to be replaced because sealed viewers left (one replacement for many leaving at once).
    let leftSealed = Mutex<Set<String>>([])
    private let pumpFinished = DispatchSemaphore(value: 0)
    /// On a relay node: signalled when a viewer waits for a camera not assigned here yet, so
    /// that the node reports (and learns its assignments) at once.
    public let assignmentWanted = DispatchSemaphore(value: 0)
    /// Wakes the pump when a view on the media endpoint is ready for packets.
    private let mediaViewsReady = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - sources: each camera's source, from the registry.
    ///   - thumbnailInterval: the shortest time between two thumbnails of a camera.
    ///   - coordination: in `vigil serve`, this relay's caps beside relay nodes; nil on a node.
    ///   - upstreamKeys: on a relay node, its own keys, to pull cameras from origin nodes as an edge.
    ///   - clock: what "now" is for lingers, silences and link timeouts (a test's own clock).
    public init(
        bus: BusServer, authority: any ViewAuthority, sources: [String: Source], simulate: Bool, thumbnailInterval: Duration,
        coordination: Coordination?, upstreamKeys: CurveKeyPair? = nil, clock: RelayClock = .continuous, logger: Logger
    ) throws {
        self.upstreamKeys = upstreamKeys
        fanOut = try FanOut(logger: logger)
        self.coordination = coordination
        self.simulate = simulate
        self.bus = bus
        self.authority = authority
        self.clock = clock
        self.logger = logger
        state = Mutex(State(sources: sources, coordinatorCapacity: coordination?.capacity, simulate: simulate))
        thumbnails = ThumbnailWorker(interval: thumbnailInterval)
        (events, eventSink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(4_096))
    }

    /// Runs `body` on the state behind the lock with the time now and this relay's feed maker,
    /// then carries out the actions it returned, outside the lock.
    @discardableResult
    func change<T>(_ body: (inout State, ContinuousClock.Instant, State.Opener) throws -> (T, [State.Action])) rethrows -> T {
        let now = clock.now()
        let (result, actions) = try state.withLock { state in try body(&state, now, makeFeed) }
        perform(actions)
        return result
    }

    func change(_ body: (inout State, ContinuousClock.Instant, State.Opener) -> [State.Action]) {
        let now = clock.now()
        perform(state.withLock { state in body(&state, now, makeFeed) })
    }

    private func perform(_ actions: [State.Action]) {
        for action in actions {
            switch action {
            case .start(let feed): feed.start()
            case .stop(let feed):
                // Stopping joins the feed's reader thread: never on the cooperative pool, where
                // changes (inside the serial gate) and the supervision run.
                DispatchQueue.global().async { [thumbnails] in
                    feed.stop()
                    thumbnails.forget(feed.camera)
                }
            case .recheckViews: Task { await recheckViews() }
            case .reopen(let feed):
                feed.reopen()
                thumbnails.forget(feed.camera)
            }
        }
    }

    // MARK: Pre-warm

    /// Follows a committed change: cameras added are opened at once, cameras left by every
    /// incident are released after the linger; views are decided again when the change may end them.
    public func follow(_ change: IncidentChange) {
        self.change { $0.follow(change, now: $1, open: $2) }
    }

    /// Opens the feeds of `cameras` for `incident` (at start-up, for the incidents already open).
    public func prewarm(_ cameras: [String], for incident: Int64) {
        change { $0.prewarm(cameras, for: incident, now: $1, open: $2) }
    }

    /// A feed for `camera` from `source` (not started).
    private func makeFeed(_ camera: String, source: Source) -> CameraFeed {
        var configuration = CameraFeed.Configuration()
        configuration.simulate = simulate
        // A local file is a simulated camera: played in real time, looped.
        configuration.loopFiles = source.url.hasPrefix("/") || source.url.hasPrefix("file:")
        // On an edge node, the camera is pulled from its origin node, as the coordinator last said.
        let timeout = configuration.source.timeout
        configuration.openSource = { [weak self] () throws(MediaError) -> (any PacketSource)? in
            guard let self, let upstream = nextUpstream(of: camera) else { return nil }
            guard let upstreamKeys else { throw MediaError(.sourceUnreachable, message: "this relay has no key to pull camera \(camera) from its origin") }
            return try UpstreamSource(camera: camera, from: upstream, keys: upstreamKeys, timeout: timeout)
        }
        // An edge's copy makes no thumbnails: the origin's are the camera's.
        let makesThumbnails = source.upstream == nil
        // A camera with privacy masks is masked where it is pulled from the camera (an edge's
        // copy comes from its origin, masked already): before the GOP cache, views, links,
        // recordings and thumbnails. The masks are the registry's at each opening (a change
        // opens the camera again: ``updateSources(_:)``).
        let currentSource: @Sendable () -> Source = { [weak self] in self?.state.withLock { $0.sources[camera] } ?? source }
        configuration.processSource = { opened throws(MediaError) in
            let now = currentSource()
            guard now.upstream == nil, !now.masks.isEmpty else { return opened }
            return try PrivacyMaskedSource(opened, masks: now.masks)
        }
        let logger = self.logger, thumbnails = self.thumbnails
        return CameraFeed(camera: camera, url: source.url, configuration: configuration, onState: { [self] camera, feedState in
            let incidents = state.withLock { state in
                // An edge whose pull failed says so in its next report: its origin may have died.
                if let origin = state.sources[camera]?.upstream?.relay, feedState.isFailure {
                    state.unreachableOrigins.insert(origin)
                    state.failedUpstreams[camera] = origin
                }
                return state.incidents(selecting: camera)
            }
            eventSink.yield(.cameraState(camera: camera, state: feedState, incidents: incidents))
            // Problems are worth an operator's attention; the rest is on the cameras/ channels.
            switch feedState {
            case .stalled, .down: logger.notice("camera feed", metadata: ["camera": "\(camera)", "feed.state": "\(feedState)"])
            case .connecting, .live, .stopped: logger.debug("camera feed", metadata: ["camera": "\(camera)", "feed.state": "\(feedState)"])
            }
        }, onKeyframe: { keyframe, parameterSets, video in
            guard makesThumbnails else { return }
            thumbnails.offer(camera: camera, keyframe: keyframe, parameterSets: parameterSets, video: video, masks: currentSource().masks)
        })
    }

    /// Where an edge pulls `camera` from now. After a failed pull from the same origin, the
    /// coordinator is given a moment to name another (the edge's next report says the origin
    /// failed): trying a dead origin again costs a request's whole timeout.
    private func nextUpstream(of camera: String) -> FeedRedirect? {
        let deadline = ContinuousClock.now + RelayNodeRegistry.reportInterval * 2
        while true {
            let (upstream, failed) = state.withLock { ($0.sources[camera]?.upstream, $0.failedUpstreams[camera]) }
            if upstream == nil || upstream?.relay != failed || ContinuousClock.now > deadline || stopping.load(ordering: .relaxed) {
                state.withLock { _ = $0.failedUpstreams.removeValue(forKey: camera) }
                return upstream
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// The registry was reloaded: new cameras' sources (open feeds keep their addresses until
    /// released; a camera whose privacy masks changed is opened again with them at once).
    public func updateSources(_ sources: [String: Source]) {
        change { state, _, _ in state.replaceSources(sources) }
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
        await AuditOrigin.$current.withValue(request.origin) { await answer(request) }
    }

    private func answer(_ request: BusRequest) async {
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
                if let lost = body.relayUnreachable {
                    change { state, now, open in state.viewerLostNode(lost, now: now, open: open) }
                }
                if let moment = body.at {
                    let (result, player, view) = try await openPlayback(body, at: moment, for: request)
                    guard state.withLock({ $0.insert(view, id: result.view) }) else {
                        throw BusProtocol.ErrorBody(.ticketInvalid, message: "this ticket's view is already being served", field: "body.ticket")
                    }
                    bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
                    if let player {
                        startPlayer(player, for: result.view)
                        state.withLock { $0.attach(player.subscriber, to: result.view) }
                        mediaViewsReady.signal()
                    }
                    return
                }
                if body.delivery == .sealed, try await openSealed(body, for: request, replying: header) { return }
                let (result, feed, view) = try await open(body, for: request, delivery: .media(peer: request.peer))
                try serveOnMediaEndpoint(result, feed: feed, view: view, to: request, replying: header)
            case .feedUpstream:
                let (result, feed, view) = try await openUpstream(try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload), for: request)
                try serveOnMediaEndpoint(result, feed: feed, view: view, to: request, replying: header)
            case .feedLink:
                let result = try await openLink(try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload), for: request)
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
            case .footageFetch:
                let body = try BusProtocol.decodeBody(FootageFetchBody.self, from: request.payload)
                let (result, bytes) = try serveFetch(body)
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: bytes)
            case .feedClose:
                let body = try BusProtocol.decodeBody(ViewStopBody.self, from: request.payload)
                // Only the viewer who holds a view closes it; to anyone else there is no such view.
                guard state.withLock({ $0.view(body.view)?.identity }) == request.identity else {
                    throw BusProtocol.ErrorBody(.viewNotFound, message: "there is no view \(body.view)", field: "body.view")
                }
                try await end(body.view, reason: "closed by the viewer", notify: false)
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: ["view": body.view]), payload: nil)
            default:
                throw BusProtocol.ErrorBody(
                    .unknownOperation, message: "the media endpoint serves feed.open, feed.link, feed.close and (on a relay node) feed.upstream and footage.fetch",
                    field: "op")
            }
        } catch {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: header.id, .init(replying: error, fallback: "\(error)")), payload: nil)
        }
    }

    /// Answers an opened view and starts its packets on the media endpoint.
    private func serveOnMediaEndpoint(
        _ result: FeedOpenResult, feed: CameraFeed?, view: State.View, to request: BusRequest, replying header: BusProtocol.RequestHeader
    ) throws {
        // One viewer per view: a relay node's ticket opens its view once.
        guard state.withLock({ $0.insert(view, id: result.view) }) else {
            state.withLock { $0.releaseView(of: view.camera, now: clock.now()) }
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "this ticket's view is already being served", field: "body.ticket")
        }
        bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
        // Only now may the pump send packets: the reply is queued before the first of them.
        let subscriber = feed?.subscribe(id: result.view, capacity: 256)
        state.withLock { $0.attach(subscriber, to: result.view) }
        mediaViewsReady.signal()
    }

    /// Starts a view: the consultation is decided and audited first; nothing is sent before.
    /// The caller subscribes the view to the feed when its viewer is ready.
    func open(_ body: FeedOpenBody, for request: BusRequest, delivery: State.Delivery) async throws -> (FeedOpenResult, CameraFeed?, State.View) {
        let allowed = try await authority.begin(body, for: request.identity)
        return try await attach(allowed, camera: body.camera, identity: request.identity, delivery: delivery, site: body.site)
    }

    /// Brings an allowed view to its camera's feed, opening it if needed. A camera that a relay
    /// node serves gets a redirect instead of a feed: the node's endpoint and a ticket (a link's
    /// ticket for a link); for a viewer at `site`, the edge node there when the camera is pulled
    /// at another site. A view that cannot be served is ended with its authority.
    func attach(
        _ allowed: AllowedView, camera: String, identity: BusIdentity, delivery: State.Delivery, site: String? = nil
    ) async throws -> (FeedOpenResult, CameraFeed?, State.View) {
        let (server, servedFeed) = change { state, now, open in
            let wanted = state.want(camera, site: site, now: now, open: open)
            return ((wanted.server, wanted.feed), wanted.actions)
        }
        var feed = servedFeed
        if case .node(let name) = server {
            do {
                let isLink = if case .link = delivery { true } else { false }
                let (result, view) = try redirect(to: name, allowed: allowed, camera: camera, identity: identity, link: isLink)
                return (result, nil, view)
            } catch {
                await refuse(allowed, camera: camera, identity: identity)
                throw error
            }
        }
        // On a node, a viewer may come with a ticket before the report that assigns its camera
        // here (a camera just placed here, an edge's first viewer): report now rather than wait.
        if feed == nil, coordination == nil, state.withLock({ $0.sources[camera] == nil }) { assignmentWanted.signal() }
        // The picture may still be connecting: wait a little for its description.
        var description = feed?.streamDescription
        let deadline = ContinuousClock.now + .seconds(5)
        while description == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            if feed == nil {
                feed = change { state, _, open in
                    let served = state.served(camera, open: open)
                    return (served.feed, served.actions)
                }
            }
            description = feed?.streamDescription
        }
        guard let feed, let description else {
            await refuse(allowed, camera: camera, identity: identity)
            throw BusProtocol.ErrorBody(
                .cameraUnavailable, message: "camera \(camera) is \(feed.map { "\($0.state)" } ?? "without a source")", field: "body.camera")
        }
        var view = State.View(delivery: delivery, identity: identity, camera: camera, allowed: allowed)
        if case .link = delivery { view.idleSince = clock.now() }
        return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: description), feed, view)
    }

    /// Sends an allowed view to relay node `name`: its reply (the node's endpoint and a ticket,
    /// bound to the viewer's key, for live video or for footage from `moment`), and the view as
    /// this relay keeps it until the node reports it.
    func redirect(
        to name: String, allowed: AllowedView, camera: String, identity: BusIdentity, link: Bool, playbackFrom moment: Date? = nil
    ) throws -> (FeedOpenResult, State.View) {
        let redirect = try state.withLock {
            try $0.redirect(
                to: name, for: allowed, camera: camera, identity: identity, viewerKey: coordination?.publicKey(identity), link: link,
                expires: Date().addingTimeInterval(RelayTicket.lifetime), playbackFrom: moment)
        }
        var view = State.View(delivery: .node(name), identity: identity, camera: camera, allowed: allowed)
        view.idleSince = clock.now()  // until the node reports it
        return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: nil, redirect: redirect), view)
    }

    /// An allowed view that cannot be served ends with its authority, and no longer wants its camera.
    func refuse(_ allowed: AllowedView, camera: String, identity: BusIdentity) async {
        await authority.end(allowed.view, identity: identity)
        state.withLock { $0.releaseView(of: camera, now: clock.now()) }
    }

    /// Ends a view: no more packets, the end audited, the viewer told why (unless it asked).
    func end(_ id: String, reason: String, notify: Bool) async throws {
        guard let ended = state.withLock({ $0.end(id, reason: reason, notify: notify, now: clock.now()) }) else {
            throw BusProtocol.ErrorBody(.viewNotFound, message: "there is no view \(id)", field: "body.view")
        }
        await finish(ended, id: id, reason: reason, notify: notify)
    }

    /// What follows a view's removal from the state: it leaves its feed, its viewer is told, its
    /// authority records the end.
    func finish(_ ended: State.EndedView, id: String, reason: String, notify: Bool) async {
        let view = ended.view
        // A link's player subscribes under a name of its own; a media view under the view's id.
        ended.feed?.unsubscribe(id: view.subscriber?.id ?? id)
        if view.playback { stopPlayer(of: id) }
        if let player = view.player { fanOut.end(player) }
        // Those who still watch the camera sealed get a key this viewer never has.
        if case .sealed = view.delivery, let feed = ended.feed { rekeyAfterLeaving(view.camera, feed: feed) }
        // What this viewer lost to its own slowness (its queue dropped frame by frame).
        let dropped = view.subscriber?.dropped ?? 0
        if dropped > 0 { RelayMetrics.packetsDropped.increment(by: dropped) }
        logger.info("view ended", metadata: ["view": "\(id)", "camera": "\(view.camera)", "reason": "\(reason)", "packets.dropped": "\(dropped)"])
        if notify, let peer = view.delivery.peer, let header = try? BusProtocol.encoder.encode(
            FeedMessage(view: id, type: "feed.ended", seq: view.sequence + 1, reason: reason))
        {
            bus.sendMedia(to: peer, header: header, payload: nil)
        }
        // An edge's pull is no one's view: there is nothing to record.
        if view.edge == nil { await authority.end(id, identity: view.identity) }
    }

    /// What the relay does now, for its gauges: feeds live here, views being served, and the
    /// feeds that are down by the code of what downed them.
    public struct Statistics: Sendable, Equatable {
        public var liveFeeds = 0
        public var views = 0
        public var downByReason: [String: Int] = [:]
    }

    public func statistics() -> Statistics {
        let (feeds, views) = state.withLock { ($0.openFeeds.values, $0.viewIDs.count) }
        var statistics = Statistics(views: views)
        for feed in feeds {
            switch feed.state {
            case .live: statistics.liveFeeds += 1
            case .down(let reason): statistics.downByReason[Self.code(ofDownReason: reason), default: 0] += 1
            case .connecting, .stalled, .stopped: break
            }
        }
        return statistics
    }

    /// The stable code a down feed's reason starts with (`source_unreachable: …`), else `stream_ended`.
    static func code(ofDownReason reason: String) -> String {
        let code = reason.prefix { $0.isLowercase || $0 == "_" }
        return !code.isEmpty && reason.dropFirst(code.count).hasPrefix(":") ? String(code) : "stream_ended"
    }

    // MARK: Running

    /// Starts the thumbnail worker and the pump, which moves packets from the views' queues to
    /// the media endpoint until stopped (its own thread).
    public func start() {
        thumbnails.start { [self] thumbnail in
            let incidents = state.withLock { $0.incidents(selecting: thumbnail.camera) }
            eventSink.yield(.thumbnail(thumbnail, incidents: incidents))
        } onFailure: { [logger] camera, error in
            logger.notice("thumbnail failed", metadata: ["camera": "\(camera)", "error": "\(error)"])
        }
        let thread = Thread { [self] in
            pump()
            pumpFinished.signal()
        }
        thread.name = "vigil.relay"
        thread.start()
        fanOut.start()
    }

    /// Moves packets from the views' queues to the media endpoint until the relay stops.
    private func pump() {
        // A viewer whose socket queue filled up is left alone for a moment, so that its packets
        // wait in its own queue, which drops frame by frame (libzmq would drop blindly).
        var pausedUntil: [Data: ContinuousClock.Instant] = [:]
        // Views whose queue the feed closed under them, being ended (once each).
        var ending = Set<String>()
        while !stopping.load(ordering: .relaxed) {
            var sent = 0
            let now = ContinuousClock.now
            var gone: [Data] = []
            for (peer, failures) in bus.takeMediaFailures() {
                if failures.full > 0 { pausedUntil[peer] = now.advanced(by: .milliseconds(100)) }
                if failures.unreachable > 0 { gone.append(peer) }
            }
            pausedUntil = pausedUntil.filter { $0.value > now }
            let ready = state.withLock { state in
                state.unreachable(gone)
                return state.mediaViews
            }
            ending.formIntersection(ready.map(\.id))
            for view in ready where pausedUntil[view.peer] == nil {
                // A few at a time: the socket's queue per viewer is small, the viewer's own is not.
                let packets = view.subscriber.take(timeout: .zero, limit: 32)
                guard !packets.isEmpty else {
                    // The feed closed the queue (a change of codec its viewer was not set up for):
                    // the view ends, its viewer told, rather than wait on a stream that sends nothing.
                    if view.subscriber.isClosed, ending.insert(view.id).inserted {
                        let reason = view.subscriber.closeReason
                        Task { try? await end(view.id, reason: reason, notify: true) }
                    }
                    continue
                }
                var sequence = view.sequence
                for packet in packets {
                    sequence += 1
                    let header = FeedMessage(
                        view: view.id, type: "packet", seq: sequence, pts: packet.pts, dts: packet.dts, duration: packet.duration, key: packet.isKeyframe)
                    if let encoded = try? BusProtocol.encoder.encode(header) {
                        bus.sendMedia(to: view.peer, header: encoded, payload: packet.data)
                        RelayMetrics.bytesSent.increment(by: packet.data.count)
                    }
                }
                state.withLock { $0.sent(view.id, upTo: sequence) }
                sent += packets.count
            }
            // With no view to serve, wait to be woken by one (reading every view 500 times a
            // second for none showed up in perf beside 200 links).
            if ready.isEmpty {
                _ = mediaViewsReady.wait(timeout: .now() + .milliseconds(100))
            } else if sent == 0 {
                Thread.sleep(forTimeInterval: 0.002)
            }
        }
    }

    /// Decides every view again: a vanished viewer, a silent relay node, an unplayed link or a
    /// refusal by the view's authority ends it.
    func recheckViews() async {
        let views = state.withLock { $0.viewsToDecide(now: clock.now()) }
        let unknown = views.filter { $0.reason == nil }
        let decided = await authority.reasonsToEnd(unknown.map { ($0.view.allowed, $0.view.camera, $0.view.identity) })
        let reasons = Dictionary(uniqueKeysWithValues: zip(unknown.map(\.id), decided))
        for (id, _, known) in views {
            if let reason = known ?? reasons[id] ?? nil { try? await end(id, reason: reason, notify: true) }
        }
    }

    /// One supervision step: every view is decided again (a revoked grant or a closed incident
    /// ends it), viewers that left are dropped, idle feeds past their linger are released, and
    /// cameras follow the relay nodes that came or went.
    public func tick() async {
        await recheckViews()
        change { $0.tick(now: $1, open: $2) }
        followRecordings()
    }

    /// Once a second, ``tick()``, until the relay stops.
    public func supervise() async {
        while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
            try? await Task.sleep(for: Self.recheckInterval)
            await tick()
        }
    }

    /// Stops the pump, the thumbnails and every feed (joins threads: call it off the cooperative pool).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        pumpFinished.wait()
        fanOut.stop()
        stopFootage()
        thumbnails.stop()
        state.withLock { $0.removeAll() }.forEach { $0.stop() }
        eventSink.finish()
    }
}

/// What "now" is for a relay: the continuous clock, or a test's own.
public struct RelayClock: Sendable {
    public let now: @Sendable () -> ContinuousClock.Instant

    public init(now: @escaping @Sendable () -> ContinuousClock.Instant) {
        self.now = now
    }

    public static let continuous = RelayClock { .now }
}

/// The relay's counters (their help is in the coordinator's `MetricsCatalog`).
enum RelayMetrics {
    /// Video bytes sent to viewers, on the media endpoint and over links.
    static let bytesSent = Counter(label: "vigil_relay_bytes_sent_total")
    /// Packets viewers lost to their own slowness (their queues dropped frame by frame).
    static let packetsDropped = Counter(label: "vigil_relay_packets_dropped_total")
}
