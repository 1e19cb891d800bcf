import Bus
import Incidents
import Logging
import ServiceLifecycle

/// The long-running server: handles bus requests one at a time (so a channel's events are
/// published in sequence order) until graceful shutdown stops the bus.
struct VigilService: Service {
    let bus: BusServer
    let dispatcher: CommandDispatcher
    let audit: AuditStore
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // Every authentication decision is audited, refusals with the key that was presented.
                    for await event in bus.authentications {
                        if !event.accepted {
                            logger.notice("authentication refused", metadata: [
                                "bus.peer": "\(event.address)", "bus.public_key": "\(event.publicKey ?? "none")",
                            ])
                        }
                        let record = AuditRecord(
                            action: event.accepted ? "auth.accepted" : "auth.refused", agency: event.agency, user: event.identity?.user, source: event.address,
                            details: ["mechanism": event.mechanism, "public_key": event.publicKey ?? "none"])
                        do {
                            try await audit.append(record)
                        } catch {
                            logger.error("audit append failed", metadata: ["error": "\(error)"])
                        }
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
