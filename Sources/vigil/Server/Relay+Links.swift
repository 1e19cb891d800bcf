import Foundation
import Streams

/// Links: a view played as MPEG-TS over HTTP by an ordinary player.
extension Relay {
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
}
