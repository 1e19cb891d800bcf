import Incidents
import Logging
import ServiceLifecycle

/// Grants and holds expire by themselves: every few seconds the audit log records those that
/// did, and the grantees' channels lose what an expired grant showed, through the serial gate
/// like any change. Until graceful shutdown.
struct ExpirySweep: Service {
    let dispatcher: CommandDispatcher
    let changes: SerialGate
    let logger: Logger

    static let interval = Duration.seconds(5)

    func run() async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await changes.serially {
                    // A grant's validity window may have opened since: what agencies see is decided afresh.
                    dispatcher.publisher.visibility.forgetAll()
                    let grants = try await dispatcher.access.auditExpiries()
                    let holds = try await dispatcher.holds.auditExpiries()
                    ServerMetrics.grantExpiries.increment(by: grants.count)
                    for grant in grants {
                        await dispatcher.publisher.accessChanged(for: grant.agency, by: IncidentService.systemActor, reason: "grant_expired:\(grant.id)")
                    }
                    if !grants.isEmpty || !holds.isEmpty {
                        logger.info("expiries recorded", metadata: ["grants": "\(grants.map(\.id))", "holds": "\(holds)"])
                    }
                }
            } catch {
                logger.error("expiry sweep failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
        }
    }
}
