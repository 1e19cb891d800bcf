import Bus
import Foundation
import Streams
import Synchronization

/// Links: a view played as MPEG-TS over HTTP by an ordinary player.
extension Relay {
    /// Makes `feed.link` available: links point at `base` (`http://HOST:PORT`).
    public func serveLinks(at base: String) {
        linkBase.withLock { $0 = base }
    }

    /// The HTTP media endpoint's answer to `GET path`: `/views/TOKEN/stream.ts` plays the view
    /// as MPEG-TS (one player at a time, starting at the cached keyframe), `/views/TOKEN/thumbnail.jpg`
    /// is the camera's newest thumbnail. The token is the view's authorisation: it was given only
    /// to the user whose justified consultation the relay allowed, and dies with the view. On a
    /// relay node the token is a link ticket the coordinator signed, and its first use opens the view.
    public func httpResponse(_ path: String) -> HTTPEndpoint.Response {
        let parts = path.split(separator: "?").first?.split(separator: "/") ?? []
        guard parts.count == 3, parts[0] == "views" else { return .error("404 Not Found", "not a view's address") }
        let delivery = Delivery.link(token: String(parts[1]))
        var found = views.withLock { $0.first { $0.value.delivery == delivery } }
        if found == nil, let allowance = authority.allowLink(String(parts[1])) {
            switch openLinkView(allowance, delivery: delivery) {
            case .success(let view): found = (allowance.allowed.view, view)
            case .failure(let error): return .error("503 Service Unavailable", error.message)
            }
        }
        guard let (id, view) = found else {
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

    /// On a relay node: opens the view a link ticket allows (the coordinator decided and recorded
    /// it before signing). Runs on the HTTP connection's own thread, which may wait for the feed.
    private func openLinkView(_ allowance: LinkAllowance, delivery: Delivery) -> Result<View, BusProtocol.ErrorBody> {
        let outcome = Mutex<Result<View, BusProtocol.ErrorBody>>(.failure(.init(code: "internal_error", message: "the view did not open")))
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let (_, _, view) = try await attach(allowance.allowed, camera: allowance.camera, identity: allowance.identity, delivery: delivery)
                outcome.withLock { $0 = .success(view) }
            } catch {
                let refusal = error as? BusProtocol.ErrorBody ?? BusProtocol.ErrorBody(code: "camera_unavailable", message: "\(error)")
                outcome.withLock { $0 = .failure(refusal) }
            }
            done.signal()
        }
        done.wait()
        guard case .success(let view) = outcome.withLock({ $0 }) else { return outcome.withLock { $0 } }
        // The thumbnail and the stream may be asked for at once: the first view opened is kept.
        let (kept, inserted) = views.withLock { views -> (View, Bool) in
            if let existing = views[allowance.allowed.view] { return (existing, false) }
            views[allowance.allowed.view] = view
            return (view, true)
        }
        if !inserted { releaseView(of: allowance.camera) }
        return .success(kept)
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
}
