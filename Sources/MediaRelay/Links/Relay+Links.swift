import Bus
import Foundation
import Glibc
import Streams
import Synchronization
import VigilProtocol

/// Links: a view played as MPEG-TS over HTTP by an ordinary player.
extension Relay {
    /// How long a link's view stays open while no player plays it.
    static var linkLinger: Duration { State.linkLinger }

    /// Makes `feed.link` available: links point at `base` (`http://HOST:PORT`).
    public func serveLinks(at base: String) {
        state.withLock { ($0.linkBase, $0.sealedBase) = (base, base) }
    }

    /// `feed.link`: a view decided like `feed.open`, played at an address (here with a random
    /// token, or on the relay node that serves the camera with a link ticket as the token).
    func openLink(_ body: FeedOpenBody, for request: BusRequest) async throws -> FeedLinkResult {
        guard let base = state.withLock({ $0.linkBase }) else {
            throw BusProtocol.ErrorBody(.linksUnavailable, message: "this relay serves no HTTP links", field: "op")
        }
        let token = Self.randomToken()
        let (opened, player, view): (FeedOpenResult, FootagePlayer?, State.View)
        if let moment = body.at {
            // A playback: decided as one, and played from a feed of the footage, never the live one.
            (opened, player, view) = try await openPlayback(body, at: moment, for: request, link: token)
        } else {
            let live = try await open(body, for: request, delivery: .link(token: token))
            (opened, player, view) = (live.0, nil, live.2)
        }
        _ = state.withLock { $0.insert(view, id: opened.view) }
        if let player { prepareLinkPlayback(player, camera: body.camera, for: opened.view) }
        var address = (base: base, token: token)
        if let redirect = opened.redirect {
            guard let links = state.withLock({ $0.links(ofNode: redirect.relay) }) else {
                try await end(opened.view, reason: "relay node \(redirect.relay) serves no links", notify: false)
                throw BusProtocol.ErrorBody(
                    .cameraUnavailable, message: "camera \(body.camera) is served by relay node \(redirect.relay), which serves no links; use feed.open",
                    field: "body.camera")
            }
            address = (links, redirect.ticket)
        }
        return linkResult(opened, base: address.base, token: address.token)
    }

    private func linkResult(_ opened: FeedOpenResult, base: String, token: String) -> FeedLinkResult {
        FeedLinkResult(
            view: opened.view, grant: opened.grant, stream: opened.stream, relay: opened.redirect?.relay,
            url: "\(base)/views/\(token)/stream.ts", thumbnailUrl: "\(base)/views/\(token)/thumbnail.jpg",
            unusedLinkExpiresAfterS: Int(Self.linkLinger.components.seconds))
    }

    /// The HTTP media endpoint's answer to a request: `/views/TOKEN/stream.ts` plays the view
    /// as MPEG-TS (one player at a time, the latest taking over, starting at the cached keyframe),
    /// `/views/TOKEN/live` opens a WebSocket that plays it as fragmented MP4 for a browser (the
    /// same rules), `/views/TOKEN/thumbnail.jpg` is the camera's newest thumbnail. The token is the view's authorisation: it was given only
    /// to the user whose justified consultation the relay allowed, and dies with the view. On a
    /// relay node the token is a link ticket the coordinator signed, and its first use opens the view.
    public func httpResponse(_ request: HTTPEndpoint.Request) -> HTTPEndpoint.Response {
        let parts = request.path.split(separator: "?").first?.split(separator: "/") ?? []
        guard parts.count == 3, parts[0] == "views" else { return .error("404 Not Found", "not a view's address") }
        let token = String(parts[1])
        var found = state.withLock { $0.view(withToken: token) }
        if found == nil, let allowance = authority.allowLink(token) {
            switch openLinkView(allowance, delivery: .link(token: token)) {
            case .success(let view): found = (allowance.allowed.view, view)
            case .failure(let error): return .error("503 Service Unavailable", error.message)
            }
        }
        guard let (id, view) = found else {
            return .error("404 Not Found", "no such link: it is mistyped, or its view has ended")
        }
        switch parts[2] {
        case "thumbnail.jpg":
            // A playback's link shows no thumbnail: the camera's newest is live, not the footage's.
            guard !view.playback else { return .error("404 Not Found", "a playback's link has no thumbnail") }
            guard let thumbnail = thumbnails.latest(view.camera) else { return .error("404 Not Found", "no thumbnail of \(view.camera) yet") }
            return .complete(status: "200 OK", type: "image/jpeg", body: [UInt8](thumbnail.jpeg))
        case "sealed":
            guard case .sealed = view.delivery else { return .error("404 Not Found", "a link's view serves stream.ts, not a sealed stream") }
            return sealedStream(id, of: view)
        case "stream.ts", "live":
            guard case .link = view.delivery else { return .error("404 Not Found", "a sealed view's stream is at sealed, not \(parts[2])") }
            // HEAD answers what GET would without playing: a playback's footage starts for a
            // player only, so a player that asks first still starts at the chosen moment.
            if request.headOnly, view.playback {
                let unplayed: @Sendable (Int32) -> Void = { close($0) }
                return parts[2] == "live" ? .webSocket(take: unplayed) : .stream(type: "video/mp2t", take: unplayed)
            }
            let played = view.playback ? playbackFeed(of: id) : state.withLock({ $0.feed(of: view.camera) })
            // A playback's feed starts with its first player: its footage is open within moments.
            if view.playback, let played {
                let deadline = ContinuousClock.now + .seconds(3)
                while played.video == nil, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
            }
            guard let feed = played, feed.video != nil else {
                return .error("503 Service Unavailable", "camera \(view.camera) has no picture now")
            }
            let browser = parts[2] == "live"
            // Browsers play H.264 only (Chromium on Linux refuses H.265): another codec is said
            // plainly. (A request without the WebSocket handshake gets 426 from the endpoint.)
            if browser, feed.video?.codec != .h264 {
                return .error("415 Unsupported Media Type", "camera \(view.camera) is not H.264: browsers cannot play it; use stream.ts in an external player")
            }
            let play: @Sendable (Int32) -> Void = { [self] connection in
                // The camera is muxed once for all its players; this one joins at the newest keyframe.
                let player = fanOut.newPlayer()
                guard let takeover = state.withLock({ $0.startPlaying(id, player: player) }) else {
                    close(connection)
                    return
                }
                if let replaced = takeover.replaced { fanOut.end(replaced) }
                fanOut.play(player, on: connection, feed: feed, kind: browser ? .browser : .transportStream) { [self] reason in
                    // The player left (or the feed stopped): the link may be played again until it lingers out.
                    logger.debug("link player left", metadata: ["view": "\(id)", "reason": "\(reason)"])
                    state.withLock { $0.stopPlaying(id, player: player, now: clock.now()) }
                }
            }
            return browser ? .webSocket(take: play) : .stream(type: "video/mp2t", take: play)
        default:
            return .error("404 Not Found", "a view serves stream.ts and live (a link), sealed (a sealed view) and thumbnail.jpg")
        }
    }

    /// On a relay node: opens the view a link ticket allows (the coordinator decided and recorded
    /// it before signing). Runs on the HTTP connection's own thread, which may wait for the feed.
    private func openLinkView(_ allowance: LinkAllowance, delivery: State.Delivery) -> Result<State.View, BusProtocol.ErrorBody> {
        let outcome = Mutex<Result<State.View, BusProtocol.ErrorBody>>(.failure(.init(.internalError, message: "the view did not open")))
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let view: State.View
                if let moment = allowance.at {
                    // A playback the coordinator decided: the footage this node holds, from a feed of its own.
                    let (_, player, opened) = try await playback(
                        allowance.allowed, camera: allowance.camera, identity: allowance.identity, at: moment, delivery: delivery)
                    guard let player else {
                        throw BusProtocol.ErrorBody(.footageUnavailable, message: "this node holds no footage of \(allowance.camera) at \(moment)", field: "body.at")
                    }
                    prepareLinkPlayback(player, camera: allowance.camera, for: allowance.allowed.view)
                    view = opened
                } else {
                    view = try await attach(allowance.allowed, camera: allowance.camera, identity: allowance.identity, delivery: delivery).2
                }
                outcome.withLock { $0 = .success(view) }
            } catch {
                let refusal = error as? BusProtocol.ErrorBody ?? BusProtocol.ErrorBody(.cameraUnavailable, message: "\(error)")
                outcome.withLock { $0 = .failure(refusal) }
            }
            done.signal()
        }
        done.wait()
        guard case .success(let view) = outcome.withLock({ $0 }) else { return outcome.withLock { $0 } }
        // The thumbnail and the stream may be asked for at once: the first view opened is kept.
        let kept = state.withLock { state in
            let (kept, inserted) = state.insertOrKeep(view, id: allowance.allowed.view)
            // A playback holds no share of the camera's live feed.
            if !inserted, !view.playback { state.releaseView(of: allowance.camera, now: clock.now()) }
            return kept
        }
        return .success(kept)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - count)) + self
    }
}
