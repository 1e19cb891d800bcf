import Bus
import Logging
import ServiceLifecycle

/// The long-running server: handles bus requests one at a time (so a channel's events are
/// published in sequence order) until graceful shutdown stops the bus.
struct VigilService: Service {
    let bus: BusServer
    let dispatcher: CommandDispatcher
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await event in bus.authentications where !event.accepted {
                        logger.notice("authentication refused", metadata: [
                            "bus.peer": "\(event.address)", "bus.public_key": "\(event.publicKey ?? "none")",
                        ])
                    }
                }
                for await request in bus.requests {
                    await dispatcher.handle(request)
                }
            }
        } onGracefulShutdown: {
            bus.stop()
        }
    }
}
