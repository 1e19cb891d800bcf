import Bus
import Foundation
import Geo
import Incidents
import Logging
import Streams
import Synchronization

/// The relay inside `vigil serve`: keeps a feed open for every camera an incident selects
/// (pre-warm, released after a linger), serves views on the media endpoint to named users whose
/// consultation the decision function allows (audited with the justification), and ends a
/// view within a second when access is revoked or the incident closes. Live feeds' keyframes
/// make thumbnails on a worker thread, privacy masks applied.
final class Relay: Sendable {
    /// Where a camera's picture comes from, and what of it must never be shown.
    struct Source: Sendable {
        var url: String
        var masks: [Thumbnailer.Mask]

        static func of(_ cameras: [Camera]) -> [String: Source] {
            Dictionary(uniqueKeysWithValues: cameras.map { ($0.id, Source(url: $0.stream, masks: $0.privacyMasks)) })
        }
    }

    static let linger = Duration.seconds(30)
    static let recheckInterval = Duration.seconds(1)
    /// How long a link's view stays open while no player plays it.
    static let linkLinger = Duration.seconds(30)

    private struct FeedEntry {
        let feed: CameraFeed
        var incidents: Set<Int64>
        var views = 0
        var idleSince: ContinuousClock.Instant?
    }

    /// How a view reaches its viewer: packets on the media endpoint, or MPEG-TS over HTTP
    /// behind a link (`feed.link`), which a player such as VLC opens.
    private enum Delivery: Equatable {
        case media(peer: Data)
        case link(token: String)
    }

    private struct View {
        let delivery: Delivery
        let identity: BusIdentity
        let camera: String
        let allowed: AllowedView
        /// Nil while a link is not being played.
        var subscriber: FeedSubscriber?
        var sequence: Int64 = 0
        /// Since when a link has not been played (nil while it is, and for media views).
        var idleSince: ContinuousClock.Instant?
    }

    private let bus: BusServer
    private let authority: any ViewAuthority
    private let sources: Mutex<[String: Source]>
    private let thumbnails: ThumbnailWorker
    private let logger: Logger
    private let feeds = Mutex<[String: FeedEntry]>([:])
    private let views = Mutex<[String: View]>([:])
    private let stopping = Atomic<Bool>(false)
    /// Peers the media socket could not reach since the supervisor last looked (the pump collects them).
    private let unreachable = Mutex<Set<Data>>([])
    /// Told of every feed state change with the incidents selecting the camera (set once at start-up).
    private let stateListener = Mutex<(@Sendable (String, FeedState, Set<Int64>) -> Void)?>(nil)
    /// Told of every new thumbnail with the incidents selecting the camera (set once at start-up).
    private let thumbnailListener = Mutex<(@Sendable (Thumbnail, Set<Int64>) -> Void)?>(nil)
    private let pumpFinished = DispatchSemaphore(value: 0)
    /// Where links point: `http://HOST:PORT` of the HTTP media endpoint, once it is bound.
    private let linkBase = Mutex<String?>(nil)

    /// Whether `sim://` cameras are generated in process (`vigil serve --simulate`).
    private let simulate: Bool

    /// - Parameters:
    ///   - sources: each camera's source, from the registry.
    ///   - thumbnailInterval: the shortest time between two thumbnails of a camera.
    init(
        bus: BusServer, authority: any ViewAuthority, sources: [String: Source], simulate: Bool, thumbnailInterval: Duration, logger: Logger
    ) {
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
    func follow(_ change: IncidentChange) {
        if change.incident.status.holdsSelection { prewarm(change.added.map(\.id), for: change.incidentId) }
        let now = ContinuousClock.now
        feeds.withLock { feeds in
            let released = change.change == .closed ? Array(feeds.keys) : change.removed
            for camera in released where feeds[camera]?.incidents.remove(change.incidentId) != nil {
                if feeds[camera]!.incidents.isEmpty && feeds[camera]!.views == 0 { feeds[camera]!.idleSince = now }
            }
        }
    }

    /// Opens the feeds of `cameras` for `incident` (at start-up, for the incidents already open).
    func prewarm(_ cameras: [String], for incident: Int64) {
        feeds.withLock { feeds in
            for camera in cameras {
                if feeds[camera] == nil, let feed = makeFeed(camera) {
                    feeds[camera] = FeedEntry(feed: feed, incidents: [])
                    feed.start()
                }
                feeds[camera]?.incidents.insert(incident)
                feeds[camera]?.idleSince = nil
            }
        }
    }

    /// The cameras with an open feed, and their state.
    var feedStates: [String: FeedState] {
        feeds.withLock { $0.mapValues { $0.feed.state } }
    }

    /// A feed for `camera`, or nil when it has no source. The fixtures' `sim://` cameras have a
    /// picture only when the server simulates them, and only once someone watches: encoding every
    /// selected camera would take a small machine's whole CPU (a simulated camera starts with a
    /// keyframe, so the first picture does not wait).
    private func makeFeed(_ camera: String, forView: Bool = false) -> CameraFeed? {
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

    func onCameraState(_ listener: @escaping @Sendable (String, FeedState, Set<Int64>) -> Void) {
        stateListener.withLock { $0 = listener }
    }

    func onThumbnail(_ listener: @escaping @Sendable (Thumbnail, Set<Int64>) -> Void) {
        thumbnailListener.withLock { $0 = listener }
    }

    /// The newest thumbnail of a camera whose feed is open.
    func latestThumbnail(_ camera: String) -> Thumbnail? {
        thumbnails.latest(camera)
    }

    /// The registry was reloaded: new cameras' sources (open feeds keep theirs until released).
    func updateSources(_ sources: [String: Source]) {
        self.sources.withLock { $0 = sources }
    }

    // MARK: Views

    func handle(_ request: BusRequest) async {
        let header: BusProtocol.RequestHeader
        do {
            header = try BusProtocol.decodeHeader(request.payload)
        } catch {
            bus.sendMedia(to: request.peer, header: BusProtocol.errorReply(id: nil, error), payload: nil)
            return
        }
        do {
            switch header.op {
            case "feed.open":
                let body = try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload)
                let (result, feed, view) = try await open(body, for: request, delivery: .media(peer: request.peer))
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
                // Only now may the pump send packets: the reply is queued before the first of them.
                views.withLock { views in
                    views[result.view] = view
                    views[result.view]?.subscriber = feed.subscribe(id: result.view, capacity: 256)
                }
            case "feed.link":
                guard let base = linkBase.withLock({ $0 }) else {
                    throw BusProtocol.ErrorBody(code: "links_unavailable", message: "this relay serves no HTTP links", field: "op")
                }
                let body = try BusProtocol.decodeBody(FeedOpenBody.self, from: request.payload)
                let token = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16).leftPadded(to: 16) }.joined()
                let (opened, _, view) = try await open(body, for: request, delivery: .link(token: token))
                views.withLock { $0[opened.view] = view }
                let result = FeedLinkResult(
                    view: opened.view, grant: opened.grant, stream: opened.stream, url: "\(base)/views/\(token)/stream.ts",
                    thumbnailUrl: "\(base)/views/\(token)/thumbnail.jpg", unusedLinkExpiresAfterS: Int(Self.linkLinger.components.seconds))
                bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
            case "feed.close":
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
    private func open(_ body: FeedOpenBody, for request: BusRequest, delivery: Delivery) async throws -> (FeedOpenResult, CameraFeed, View) {
        let allowed = try await authority.begin(body, for: request.identity)
        let feed = feeds.withLock { feeds -> CameraFeed? in
            if feeds[body.camera] == nil, let feed = makeFeed(body.camera, forView: true) {
                feeds[body.camera] = FeedEntry(feed: feed, incidents: [])
                feed.start()
            }
            feeds[body.camera]?.views += 1
            feeds[body.camera]?.idleSince = nil
            return feeds[body.camera]?.feed
        }
        // The picture may still be connecting: wait a little for its description.
        var description = feed?.streamDescription
        let deadline = ContinuousClock.now + .seconds(5)
        while description == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            description = feed?.streamDescription
        }
        guard let feed, let description else {
            await authority.end(allowed.view, identity: request.identity)
            releaseView(of: body.camera)
            throw BusProtocol.ErrorBody(
                code: "camera_unavailable", message: "camera \(body.camera) is \(feed.map { "\($0.state)" } ?? "without a source")", field: "body.camera")
        }
        var view = View(delivery: delivery, identity: request.identity, camera: body.camera, allowed: allowed)
        if case .link = delivery { view.idleSince = .now }
        return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: description), feed, view)
    }

    private func releaseView(of camera: String) {
        feeds.withLock { feeds in
            feeds[camera]?.views -= 1
            if let entry = feeds[camera], entry.views == 0, entry.incidents.isEmpty { feeds[camera]!.idleSince = ContinuousClock.now }
        }
    }

    /// Ends a view: no more packets, the end audited, the viewer told why (unless it asked).
    private func end(_ id: String, reason: String, notify: Bool) async throws {
        guard let view = views.withLock({ $0.removeValue(forKey: id) }) else {
            throw BusProtocol.ErrorBody(code: "view_not_found", message: "there is no view \(id)", field: "body.view")
        }
        feeds.withLock { $0[view.camera]?.feed }?.unsubscribe(id: id)
        releaseView(of: view.camera)
        if notify, case .media(let peer) = view.delivery {
            let header = try BusProtocol.encoder.encode(FeedMessage(view: id, type: "feed.ended", seq: view.sequence + 1, reason: reason))
            bus.sendMedia(to: peer, header: header, payload: nil)
        }
        await authority.end(id, identity: view.identity)
    }

    // MARK: Links (MPEG-TS over HTTP)

    /// Makes `feed.link` available: links point at `base` (`http://HOST:PORT`).
    func serveLinks(at base: String) {
        linkBase.withLock { $0 = base }
    }

    /// The HTTP media endpoint's answer to `GET path`: `/views/TOKEN/stream.ts` plays the view
    /// as MPEG-TS (one player at a time, starting at the cached keyframe), `/views/TOKEN/thumbnail.jpg`
    /// is the camera's newest thumbnail. The token is the view's authorisation: it was given only
    /// to the user whose justified consultation the relay allowed, and dies with the view.
    func httpResponse(_ path: String) -> HTTPEndpoint.Response {
        let parts = path.split(separator: "?").first?.split(separator: "/") ?? []
        guard parts.count == 3, parts[0] == "views" else { return .error("404 Not Found", "not a view's address") }
        let delivery = Delivery.link(token: String(parts[1]))
        guard let (id, view) = views.withLock({ $0.first { $0.value.delivery == delivery } }) else {
            return .error("404 Not Found", "no such link: it is mistyped, or its view has ended")
        }
        switch parts[2] {
        case "thumbnail.jpg":
            guard let thumbnail = thumbnails.latest(view.camera) else { return .error("404 Not Found", "no thumbnail of \(view.camera) yet") }
            return .complete(status: "200 OK", type: "image/jpeg", body: [UInt8](thumbnail.jpeg))
        case "stream.ts":
            guard let feed = feeds.withLock({ $0[view.camera]?.feed }), let video = feed.video else {
                return .error("503 Service Unavailable", "camera \(view.camera) has no picture now")
            }
            let subscriber = views.withLock { views -> FeedSubscriber? in
                guard views[id] != nil, views[id]?.subscriber == nil else { return nil }
                let subscriber = feed.subscribe(id: id, capacity: 256)
                views[id]?.subscriber = subscriber
                views[id]?.idleSince = nil
                return subscriber
            }
            guard let subscriber else { return .error("409 Conflict", "this link is being played: one player at a time") }
            return .stream(type: "video/mp2t") { [self] connection in
                play(subscriber, video: video, to: connection)
                // The player left (or the view ended): the link may be played again until it lingers out.
                feed.unsubscribe(id: id)
                views.withLock { views in
                    guard views[id]?.subscriber === subscriber else { return }
                    views[id]?.subscriber = nil
                    views[id]?.idleSince = .now
                }
            }
        default:
            return .error("404 Not Found", "a view serves stream.ts and thumbnail.jpg")
        }
    }

    /// Muxes a view's packets as MPEG-TS onto an HTTP connection until the view ends or the player leaves.
    private func play(_ subscriber: FeedSubscriber, video: VideoStreamInfo, to connection: Int32) {
        do {
            let writer = try TransportStreamWriter(output: "pipe:\(connection)", video: video)
            while !subscriber.isClosed, !stopping.load(ordering: .relaxed), !HTTPEndpoint.peerClosed(connection) {
                for packet in subscriber.take(timeout: .seconds(1)) { try writer.write(packet) }
            }
            try writer.finish()
        } catch {
            logger.debug("link player left", metadata: ["view": "\(subscriber.id)", "error": "\(error)"])
        }
    }

    // MARK: Running

    /// Starts the thumbnail worker and the pump, which moves packets from the views' queues to
    /// the media endpoint until stopped (its own thread).
    func start() {
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

    /// Once a second: each view is decided again (a revoked grant or a closed incident ends it),
    /// viewers that left are dropped, and idle feeds past their linger are released.
    func supervise() async {
        while !stopping.load(ordering: .relaxed) {
            try? await Task.sleep(for: Self.recheckInterval)
            let gone = unreachable.withLock { peers in
                defer { peers.removeAll() }
                return peers
            }
            for (id, view) in views.withLock({ $0.map { ($0.key, $0.value) } }) {
                var reason: String?
                if case .media(let peer) = view.delivery, gone.contains(peer) {
                    reason = "the viewer is gone"
                } else if let idle = view.idleSince, ContinuousClock.now - idle >= Self.linkLinger {
                    reason = "the link was not played for \(Self.linkLinger.components.seconds) s"
                } else {
                    reason = await authority.reasonToEnd(view.allowed, camera: view.camera, identity: view.identity)
                }
                if let reason { try? await end(id, reason: reason, notify: true) }
            }
            let now = ContinuousClock.now
            let released = feeds.withLock { feeds -> [CameraFeed] in
                let expired = feeds.filter { $0.value.idleSince.map { now - $0 >= Self.linger } ?? false }.map(\.key)
                return expired.compactMap { feeds.removeValue(forKey: $0)?.feed }
            }
            for feed in released {
                feed.stop()
                thumbnails.forget(feed.camera)
            }
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        pumpFinished.wait()
        thumbnails.stop()
        let all = feeds.withLock { feeds in
            defer { feeds.removeAll() }
            return feeds.values.map(\.feed)
        }
        all.forEach { $0.stop() }
    }
}

/// The body of `feed.open` on the media endpoint.
struct FeedOpenBody: Codable {
    var camera: String
    var justification: WireJustification?
}

/// The reply to `feed.open`: the view, the grant that allowed it, and the stream to mux.
struct FeedOpenResult: Codable {
    var view: String
    var grant: String
    var stream: VideoStreamInfo.Description
}

/// The reply to `feed.link`: the view, and where a player plays it (its thumbnail beside it).
struct FeedLinkResult: Codable {
    var view: String
    var grant: String
    var stream: VideoStreamInfo.Description
    var url: String
    var thumbnailUrl: String
    var unusedLinkExpiresAfterS: Int
}

extension String {
    func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - count)) + self
    }
}

/// The header frame of every message after the reply: a packet (the payload frame follows) or
/// the end of the view.
struct FeedMessage: Codable {
    var view: String
    var type: String
    var seq: Int64
    var pts: Int64?
    var dts: Int64?
    var duration: Int64?
    var key: Bool?
    var reason: String?
}
