import Foundation
import Incidents
import Logging
import MediaRelay
import ServiceLifecycle

/// Once relay nodes have had ``Relay/adoptionWindow`` to report the views recorded open before
/// this coordinator started, records the others stopped (`server_restarted`): no relay serves
/// them any more (the previous process's own relay died with it; a node that did not report in
/// time has ended them itself).
struct ViewAdoption: Service {
    let relay: Relay
    let access: AccessService
    let logger: Logger

    func run() async {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: Relay.adoptionWindow) }
        } catch {
            return  // stopping first: the next start adopts or closes them
        }
        let left = relay.takeUnadoptedViews()
        if !left.isEmpty {
            do {
                let closed = try await access.closeDanglingViews(only: left)
                logger.notice("views left open before this start, served by no relay now, closed", metadata: ["views": "\(closed)"])
            } catch {
                logger.error("views left open before this start could not be closed", metadata: ["error": "\(error)"])
            }
        }
        // A service that returns before its turn would end the group with an error.
        try? await gracefulShutdown()
    }
}
