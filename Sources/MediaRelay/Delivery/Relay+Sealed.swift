import Bus
import Foundation
import Glibc
import Streams
import Synchronization
import VigilProtocol

/// Sealed views: a camera's MPEG-TS sealed once with its content key (``SealedFrame``), the
/// same bytes written by the fan-out to every viewer's HTTP connection; the key goes to each
/// viewer alone, over its CURVE connection to the media endpoint. The key is replaced whenever
/// a sealed viewer of the camera joins or leaves (a revocation ends the view, so it leaves): a
/// viewer can read only what was sealed while it was allowed to watch.
extension Relay {
    /// Makes sealed views available on a relay node, whose HTTP endpoint is at `base`
    /// (`http://HOST:PORT`); `vigil serve` makes them available with its links.
    public func serveSealedStreams(at base: String) {
        state.withLock { $0.sealedBase = base }
    }

    /// `feed.open` with `delivery: sealed`: the consultation as for any view; then the camera
    /// gets a new content key, which the reply carries with the stream's address. Nil on a relay
    /// without an HTTP endpoint, which serves the view as packets instead (its reply has no `sealed`).
    /// The reply is sent here (true), with the key, before any later key reaches the viewer.
    func openSealed(_ body: FeedOpenBody, for request: BusRequest, replying header: BusProtocol.RequestHeader) async throws -> Bool {
        guard let base = state.withLock({ $0.sealedBase }) else { return false }
        let token = Self.randomToken()
        let (result, feed, allowedView) = try await open(body, for: request, delivery: .sealed(peer: request.peer, token: token))
        var (opened, view) = (result, allowedView)
        // Until its stream is read, the view lingers like an unplayed link.
        view.idleSince = clock.now()
        guard state.withLock({ $0.insert(view, id: opened.view) }) else {
            state.withLock { $0.releaseView(of: view.camera, now: clock.now()) }
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "this ticket's view is already being served", field: "body.ticket")
        }
        func reply(_ result: FeedOpenResult) {
            bus.sendMedia(to: request.peer, header: BusProtocol.successReply(id: header.id, result: result), payload: nil)
        }
        // A relay node serves the camera: the viewer asks it, with the ticket, for a sealed view there.
        guard opened.redirect == nil, let feed else {
            reply(opened)
            return true
        }
        // Answered under the camera's key lock: a viewer joining at the same moment replaces the
        // key after this reply, so its new key reaches this viewer after the reply, not before.
        let key = rekey(view.camera, feed: feed, joining: opened.view) { key in
            opened.sealed = SealedStreamAccess(url: "\(base)/views/\(token)/sealed", contentKey: key)
            reply(opened)
        }
        if key == nil { reply(opened) }
        return true
    }

    /// A new content key for `camera`: sent to its other sealed viewers first, then used by the
    /// fan-out for every chunk it seals after that (a viewer keeps a chunk sealed with a key
    /// it does not have yet until the key comes). With no sealed viewer left (nor one joining),
    /// the camera's key is forgotten and nil returned. `answer` is given the key first (the
    /// joining viewer's reply), before the others and before any later key.
    @discardableResult
    func rekey(_ camera: String, feed: CameraFeed, joining: String? = nil, answer: ((ContentKey) -> Void)? = nil) -> ContentKey? {
        // One camera's replacements in one order: on the fan-out's commands and the viewers' connections alike.
        contentKeys.withLock { keys in
            let others = state.withLock { $0.sealedViews(of: camera, excluding: joining) }
            guard joining != nil || !others.isEmpty else {
                keys[camera] = nil
                return nil
            }
            // A join replaces the key for everyone: a replacement still waiting for leavers is done by it.
            if joining != nil { leftSealed.withLock { _ = $0.remove(camera) } }
            let key = ContentKey.random(id: nextContentKey.add(1, ordering: .relaxed).newValue)
            keys[camera] = key
            answer?(key)
            for (view, peer) in others {
                if let header = try? BusProtocol.encoder.encode(FeedMessage(view: view, type: "content.key", seq: 0, contentKey: key)) {
                    bus.sendMedia(to: peer, header: header, payload: nil)
                }
            }
            fanOut.rekey(feed, with: key)
            return key
        }
    }

    /// `GET /views/TOKEN/sealed`: the camera's sealed stream for the view `id`, from its newest
    /// keyframe. The stream is read once: when its connection ends, so does the view.
    func sealedStream(_ id: String, of view: State.View) -> HTTPEndpoint.Response {
        guard let feed = state.withLock({ $0.feed(of: view.camera) }), feed.video != nil else {
            return .error("503 Service Unavailable", "camera \(view.camera) has no picture now")
        }
        return .stream(type: SealedFrame.mediaType) { [self] connection in
            let player = fanOut.newPlayer()
            // Read once: a second request for the same stream is refused, and the first goes on.
            guard state.withLock({ state in state.view(id).map { $0.player == nil } == true && state.startPlaying(id, player: player) != nil }),
                let key = contentKeys.withLock({ $0[view.camera] })
            else {
                close(connection)
                return
            }
            fanOut.play(player, on: connection, feed: feed, kind: .sealed, key: key) { [self] reason in
                Task { try? await end(id, reason: "the viewer's sealed stream ended: \(reason)", notify: true) }
            }
        }
    }

    /// How long the replacement after a sealed viewer left waits for others leaving too.
    static var leavingRekeyDelay: Duration { .milliseconds(100) }

    /// A sealed viewer of `camera` left: its key is replaced within ``leavingRekeyDelay``, once
    /// for all who leave meanwhile (a closed incident ends every view at once; replacing the key
    /// for each would send every remaining viewer a key per departure). The viewer that left
    /// is cut off at once (its connection closed), so it is sent nothing sealed meanwhile; a
    /// viewer joining meanwhile replaces the key anyway.
    func rekeyAfterLeaving(_ camera: String, feed: CameraFeed) {
        guard leftSealed.withLock({ $0.insert(camera).inserted }) else { return }
        Task {
            try? await Task.sleep(for: Self.leavingRekeyDelay)
            guard leftSealed.withLock({ $0.remove(camera) != nil }) else { return }
            rekey(camera, feed: feed)
        }
    }

    /// 128 random bits, in hexadecimal: the secret part of a link's or a sealed stream's address.
    static func randomToken() -> String {
        (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16).leftPadded(to: 16) }.joined()
    }
}
