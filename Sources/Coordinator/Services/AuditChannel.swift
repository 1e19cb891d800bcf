import Bus
import Incidents
import ServiceLifecycle
import VigilProtocol

/// The audit channel: every new entry of the audit log in order, its sequence the chain's own,
/// for auditors (the bus lets only them subscribe); `audit.query` is its snapshot. It reads
/// the log when a write appended to it (no polling), until graceful shutdown.
struct AuditChannel: Service {
    let bus: BusServer
    let audit: AuditStore

    func run() async {
        let appended = audit.appended()  // before reading where the log ends, so that no append is missed
        try? await cancelWhenGracefulShutdown {
            var last = (try? await audit.lastSequence()) ?? 0
            for await _ in appended {
                // A batch at a time: a burst of appends folds into one signal, read to its end.
                while let entries = try? await audit.entries(from: nil, to: nil, after: last, limit: AuditQueryBody.maximumLimit), !entries.isEmpty {
                    for entry in entries {
                        bus.publish(on: .audit, seq: entry.sequence, type: "audit.entry", body: entry)
                        last = entry.sequence
                    }
                }
            }
        }
    }
}
