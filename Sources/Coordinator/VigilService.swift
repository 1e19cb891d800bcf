import Bus
import Foundation
import Incidents
import Logging
import MediaRelay
import ServiceLifecycle

/// The long-running server: handles bus requests one at a time, through the same gate as the
/// expiry sweep and registry reloads (so a channel's events are published in sequence order),
/// until graceful shutdown stops the bus.
public struct VigilService: Service {
    let bus: BusServer
    let dispatcher: CommandDispatcher
    let relay: Relay
    let audit: AuditStore
    let checkpoints: AuditCheckpoints
    /// The gate every change of the server passes, one at a time.
    let changes: SerialGate
    let logger: Logger

    static let expirySweepInterval = Duration.seconds(5)
    static let handshakeAuditWindow = Duration.seconds(10)
    static let auditChannelInterval = Duration.milliseconds(250)
    /// Requests that only read are answered by this many workers beside the serial gate.
    static let readWorkers = 4

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // Every authentication decision is audited, refusals with the key that was presented.
                    // Failed handshakes carry no key or peer (the monitor sees only the endpoint) and a
                    // misconfigured client retries ten times a second: they are recorded at most once
                    // per window, with the number of repeats since the last record.
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
                        let record = AuditRecord(
                            action: event.accepted ? "auth.accepted" : "auth.refused", agency: event.agency, user: event.identity?.user,
                            reason: event.reason, source: event.address, details: details)
                        do {
                            try await audit.append(record)
                        } catch {
                            logger.error("audit append failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                group.addTask {
                    // Every subscription decision but heartbeats is audited.
                    for await event in bus.subscriptions {
                        do {
                            try await audit.append(AuditRecord(
                                action: event.granted ? "subscription.granted" : "subscription.refused", agency: event.identity?.agency,
                                user: event.identity?.user, details: ["topic": event.topic]))
                        } catch {
                            logger.error("audit append failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                group.addTask {
                    // The audit channel: every new entry in order, its sequence the chain's own, for
                    // auditors (the bus lets only them subscribe); `audit.query` is its snapshot.
                    var last = (try? await audit.lastSequence()) ?? 0
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.auditChannelInterval)
                        guard let entries = try? await audit.entries(from: nil, to: nil, after: last, limit: AuditQueryBody.maximumLimit) else { continue }
                        for entry in entries {
                            bus.publish(
                                topic: ChannelMembers.auditTopic,
                                payload: BusProtocol.event(channel: "audit", seq: entry.sequence, type: "audit.entry", body: entry))
                            last = entry.sequence
                        }
                    }
                }
                group.addTask {
                    // Grants and holds expire by themselves; the audit log records when.
                    while !Task.isCancelled {
                        do {
                            try await changes.serially {
                                let grants = try await dispatcher.access.auditExpiries()
                                let holds = try await dispatcher.holds.auditExpiries()
                                for grant in grants {
                                    // The grantee's channels lose what the grant showed.
                                    await dispatcher.publisher.accessChanged(
                                        for: grant.agency, by: IncidentService.systemActor, reason: "grant_expired:\(grant.id)")
                                }
                                if !grants.isEmpty || !holds.isEmpty {
                                    logger.info("expiries recorded", metadata: ["grants": "\(grants.map(\.id))", "holds": "\(holds)"])
                                }
                            }
                        } catch {
                            logger.error("expiry sweep failed", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: Self.expirySweepInterval)
                    }
                }
                group.addTask { await checkpoints.run() }
                group.addTask { await relay.serveRequests() }
                group.addTask { await relay.supervise() }
                relay.start()
                // Changes pass the serial gate one at a time, in the order they came. Requests that
                // change nothing but the audit log (listings, snapshots, the audit log's reads and
                // checks) do not wait behind them: a few workers answer them meanwhile.
                let (changeRequests, changeSink) = AsyncStream.makeStream(of: BusRequest.self)
                let (readRequests, readSink) = AsyncStream.makeStream(of: BusRequest.self)
                group.addTask {
                    for await request in changeRequests { await changes.serially { await dispatcher.handle(request) } }
                }
                for _ in 0..<Self.readWorkers {
                    group.addTask {
                        for await request in readRequests { await dispatcher.handle(request) }
                    }
                }
                for await request in bus.requests {
                    if CommandDispatcher.isReadOnly(request) { readSink.yield(request) } else { changeSink.yield(request) }
                }
                changeSink.finish()
                readSink.finish()
                relay.stop()
                // The bus has stopped: end the sweep too.
                group.cancelAll()
            }
        } onGracefulShutdown: {
            // The last checkpoint covers everything up to the stop, and goes out before the bus
            // closes; the bus's stop joins its thread, so it waits off the cooperative pool.
            Task {
                await checkpoints.signIfGrown()
                DispatchQueue.global().async { bus.stop() }
            }
        }
    }

    public init(
        bus: BusServer, dispatcher: CommandDispatcher, relay: Relay, audit: AuditStore, checkpoints: AuditCheckpoints, changes: SerialGate,
        logger: Logger
    ) {
        self.bus = bus
        self.dispatcher = dispatcher
        self.relay = relay
        self.audit = audit
        self.checkpoints = checkpoints
        self.changes = changes
        self.logger = logger
    }
}
