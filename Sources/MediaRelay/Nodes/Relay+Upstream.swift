import Bus
import Foundation
import Streams
import VigilProtocol

/// Origin and edge relay nodes. A camera whose owner's site has relay nodes is pulled there
/// once (its origin); a viewer at another site that has relay nodes is served by one of them
/// (an edge), which pulls the camera from the origin with `feed.upstream`, once for all the
/// viewers of its site. The coordinator chooses both and signs the edge's upstream ticket with
/// the origin's secret; the edge reads it with ``UpstreamSource``.
extension Relay {
    /// On an origin node: an edge node's `feed.upstream`. Its ticket must be the coordinator's,
    /// for this camera and the key the edge connected with; the pull then gets the camera's
    /// packets as a media view does. The ticket is the coordinator's word (30 s at most), so it
    /// is served before this node's own next report lists the edge (a camera that just moved
    /// here); it ends once the coordinator has not listed the edge for a moment
    /// (``RelayState/unlistedPullGrace``).
    func openUpstream(_ body: FeedOpenBody, for request: BusRequest) async throws -> (FeedOpenResult, CameraFeed?, State.View) {
        guard let nodeAuthority = authority as? RelayNodeAuthority, let ticket = nodeAuthority.upstreamTicket(body.ticket), let edge = ticket.edge else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "feed.upstream takes an edge's ticket from the coordinator, on a relay node", field: "body.ticket")
        }
        guard ticket.camera == body.camera, RelayNodeAuthority.identity(forKey: ticket.viewerKey) == request.identity else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "the ticket is for another camera or relay node", field: "body.ticket")
        }
        let allowed = AllowedView(view: "upstream-\(edge)-\(UUID().uuidString.lowercased())", grant: "", incident: State.assignedByCoordinator)
        var (result, feed, view) = try await attach(allowed, camera: body.camera, identity: request.identity, delivery: .media(peer: request.peer))
        view.edge = edge
        logger.info("edge pulls a camera", metadata: ["camera": "\(body.camera)", "edge": "\(edge)", "view": "\(result.view)"])
        result.grant = ""
        return (result, feed, view)
    }
}
