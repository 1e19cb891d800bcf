import Bus
import Foundation
import Logging
import VigilProtocol

/// The bus of a coordinator that does not lead its cluster: it binds the coordinator's command
/// and event endpoints and answers every request `not_leader`, with where the leader is when
/// its member knows. Nothing else is served, read or written: it holds no state to be stale.
///
/// Any CURVE key is let in (it must still know the server key the coordinators share): the
/// answer tells nothing but the leader's endpoints, which every client's list already names.
final class StandbyResponder: Sendable {
    private let bus: BusServer
    private let leader: @Sendable () -> BusProtocol.CoordinatorEndpoints?

    init(configuration: BusServerConfiguration, logger: Logger, leader: @escaping @Sendable () -> BusProtocol.CoordinatorEndpoints?) throws {
        var configuration = configuration
        configuration.mediaEndpoint = nil
        bus = try BusServer(
            configuration: configuration, logger: logger, authorize: { _ in BusIdentity(agency: "standby") }, authorizeSubscription: { _, _ in false })
        self.leader = leader
    }

    /// Binds the endpoints and answers until the task is cancelled; then unbinds them.
    func run() async throws {
        try bus.start()
        await withTaskCancellationHandler {
            for await request in bus.requests {
                let id = try? BusProtocol.decodeHeader(request.payload).id
                bus.reply(to: request.peer, payload: BusProtocol.errorReply(id: id, .notLeader(leader: leader())))
            }
        } onCancel: {
            // At once, in the canceller's call: once `cancel()` returns, the endpoints are free
            // for the coordinator that takes over. (It joins the bus thread: a few milliseconds.)
            bus.stop()
        }
    }
}
