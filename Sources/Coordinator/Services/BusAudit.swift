import Bus
import Incidents
import Logging
import ServiceLifecycle

/// Audits every decision the bus makes on its own: each authentication (refusals with the key
/// that was presented) and each subscription but heartbeats. Its streams end when the bus
/// stops (the requests' service stops it first); it then waits for its own turn to stop.
struct BusAudit: Service {
    let bus: BusServer
    let audit: AuditStore
    let logger: Logger

    /// Failed handshakes carry no key or peer (the monitor sees only the endpoint) and a
    /// misconfigured client retries ten times a second: they are recorded at most once per
    /// window, with the number of repeats since the last record.
    static let handshakeAuditWindow = Duration.seconds(10)

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await auditAuthentications() }
            group.addTask {
                for await event in bus.subscriptions {
                    await append(AuditRecord(
                        action: event.granted ? "subscription.granted" : "subscription.refused", at: event.at, agency: event.identity?.agency,
                        user: event.identity?.user, details: ["topic": event.topic]))
                }
            }
        }
        try? await gracefulShutdown()
    }

    private func auditAuthentications() async {
        var lastHandshakeRecord: ContinuousClock.Instant?
        var repeats = 0
        for await event in bus.authentications {
            if event.reason == "handshake_failed" {
                if let last = lastHandshakeRecord, ContinuousClock.now - last < Self.handshakeAuditWindow {
                    repeats += 1
                    continue
                }
                lastHandshakeRecord = ContinuousClock.now
            }
            if !event.accepted {
                logger.notice("authentication refused", metadata: [
                    "bus.peer": "\(event.address)", "bus.public_key": "\(event.publicKey ?? "none")", "reason": "\(event.reason ?? "")",
                ])
            }
            var details = ["mechanism": event.mechanism, "public_key": event.publicKey ?? "none"]
            if event.reason == "handshake_failed" {
                details["repeats_before"] = "\(repeats)"
                repeats = 0
            }
            await append(AuditRecord(
                action: event.accepted ? "auth.accepted" : "auth.refused", at: event.at, agency: event.agency, user: event.identity?.user,
                reason: event.reason, source: event.address, details: details))
        }
    }

    /// Appends `record`; while the database cannot take it (a full disk), tries again after
    /// 1 s, 2 s, 4 s … up to every 30 s, until the server stops. Authentications and
    /// subscriptions go on meanwhile (the people who must mend the disk reach the server): the
    /// bus keeps the newest 1,024 of each waiting, and each record keeps the moment the bus decided.
    private func append(_ record: AuditRecord) async {
        do {
            let appended: Void? = try await Database.retryingStorageFailures({ try await audit.append(record) }) { error in
                logger.error("audit append failed; trying again", metadata: ["error": "\(error)"])
            } wait: { pause async -> Bool in
                guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return false }
                return (try? await cancelWhenGracefulShutdown({ try await Task.sleep(for: pause) })) != nil
            }
            if appended == nil {
                logger.error("audit record lost: the server stops while its database cannot take it", metadata: ["action": "\(record.action)"])
            }
        } catch {
            logger.error("audit append failed", metadata: ["error": "\(error)"])
        }
    }
}
