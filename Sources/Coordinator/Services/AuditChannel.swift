import Bus
import Incidents
import ServiceLifecycle
import VigilProtocol

/// The audit channel: every new entry of the audit log in order, its sequence the chain's own,
/// for auditors (the bus lets only them subscribe); `audit.query` is its snapshot. Until
/// graceful shutdown.
struct AuditChannel: Service {
    let bus: BusServer
    let audit: AuditStore

    static let interval = Duration.milliseconds(250)

    func run() async {
        var last = (try? await audit.lastSequence()) ?? 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
            guard let entries = try? await audit.entries(from: nil, to: nil, after: last, limit: AuditQueryBody.maximumLimit) else { continue }
            for entry in entries {
                bus.publish(on: .audit, seq: entry.sequence, type: "audit.entry", body: entry)
                last = entry.sequence
            }
        }
    }
}
