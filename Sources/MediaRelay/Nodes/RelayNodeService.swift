import Bus
import Foundation
import Logging
import ServiceLifecycle
import Streams
import Synchronization
import VigilProtocol

/// A relay node's life: serve views on the media endpoint, re-check them every second, report
/// to the coordinator every second (registering again whenever it has forgotten the node), and
/// deregister as it stops.
public struct RelayNodeService: Service {
    let bus: BusServer
    let relay: Relay
    let authority: RelayNodeAuthority
    /// The coordinator (the leader of a cluster's), used only by the reporting thread.
    nonisolated(unsafe) let client: LeaderFollowingClient
    let registration: RelayRegisterBody
    let logger: Logger
    let thumbnails = PendingThumbnails()
    /// Nil when the node records nothing.
    let footage: NodeFootage?

    public func run() async throws {
        let stopping = StopFlag()
        let reported = DispatchSemaphore(value: 0)
        let reporter = Thread { [self] in
            report(until: stopping)
            reported.signal()
        }
        reporter.name = "vigil.relay.report"
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await relay.serveRequests() }
                group.addTask { await relay.supervise() }
                // The node's thumbnails go to the server with its next report, which publishes
                // them; its cameras' states go with every report.
                group.addTask {
                    for await case .thumbnail(let thumbnail, _) in relay.events { thumbnails.put(thumbnail) }
                }
                relay.start()
                reporter.start()
                // The bus stops on shutdown; the media requests end with it.
                for await _ in bus.requests {}
                stopping.stop()
                // Joining the reporter and the relay's threads blocks: not on the cooperative pool.
                await withCheckedContinuation { continuation in
                    DispatchQueue.global().async {
                        reported.wait()  // the client is the reporter's until it has stopped
                        relay.stop()
                        // Its views have ended here: the coordinator may now record them so.
                        deregister()
                        continuation.resume()
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            bus.stop()
        }
        client.close()
    }

    private func report(until stopping: StopFlag) {
        var registered = false
        var last = (bytes: 0, at: ContinuousClock.now)
        while !stopping.isStopped {
            do {
                if !registered {
                    let result = try client.request(.relayRegister, body: registration, as: RelayRegisterResult.self)
                    authority.registered(secret: Data(base64Encoded: result.secret) ?? Data(), coordinatorNow: result.now)
                    registered = true
                    logger.info("registered with the coordinator", metadata: ["relay": "\(result.relay)", "media": "\(registration.media)"])
                    let ready = ["relay": result.relay, "media": registration.media, "server_key": registration.serverKey, "http": registration.links ?? ""]
                    FileHandle.standardOutput.write((try? BusProtocol.encoder.encode(ready)).map { $0 + [10] } ?? Data())
                }
                var (body, bytes) = relay.load(since: last)
                last = (bytes, .now)
                body.ended = authority.takeEnded()
                body.thumbnails = thumbnails.take()
                let footageSent = footage?.take()
                (body.segments, body.removed) = (footageSent?.segments, footageSent?.removed)
                // Short: a report a dead coordinator never answers is followed by one to the next.
                let answer = try client.request(.relayReport, body: body, as: RelayReportResult.self, timeout: .seconds(2))
                if let footage, let footageSent { footage.acknowledged(footageSent) }
                authority.answered(ending: answer.end, coordinatorNow: answer.now)
                relay.hold(answer.assignments)
                if let footage {
                    relay.record(Dictionary(uniqueKeysWithValues: (answer.record ?? []).map { ($0, []) }))
                    footage.remove(answer.remove ?? [])
                }
                if !answer.end.isEmpty { Task { [relay] in await relay.endViews(answer.end) } }
            } catch .remote(let error) where error.code == "relay_unknown" {
                registered = false
                continue
            } catch .serverUnreachable(let endpoint, let seconds) {
                // Already waited for the answer: the next coordinator is asked at once (a leader's failover).
                logger.warning("the coordinator did not answer", metadata: ["endpoint": "\(endpoint)", "seconds": "\(seconds)"])
                continue
            } catch {
                logger.warning("the coordinator did not answer", metadata: ["error": "\(error)"])
            }
            // The next report after the interval, or at once when a viewer waits for an assignment.
            _ = relay.assignmentWanted.wait(timeout: .now() + RelayNodeRegistry.reportInterval / .seconds(1))
            // Many viewers waiting at once need one report, not one each.
            while relay.assignmentWanted.wait(timeout: .now()) == .success {}
        }
    }

    /// Stopping, once its views have ended: the coordinator drops the node at once, rather than
    /// sending viewers to it until it notices the silence.
    private func deregister() {
        do {
            _ = try client.request(.relayDeregister, body: [String: String](), as: [String: String].self, timeout: .seconds(2))
            logger.info("deregistered from the coordinator")
        } catch {
            logger.warning("could not deregister: the coordinator drops the node when it falls silent", metadata: ["error": "\(error)"])
        }
    }

    public init(
        bus: BusServer, relay: Relay, authority: RelayNodeAuthority, client: LeaderFollowingClient, registration: RelayRegisterBody, footage: NodeFootage?,
        logger: Logger
    ) {
        self.footage = footage
        self.bus = bus
        self.relay = relay
        self.authority = authority
        self.client = client
        self.registration = registration
        self.logger = logger
    }
}

/// Tells a thread to stop.
public final class StopFlag: Sendable {
    private let stopped = Atomic<Bool>(false)

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }
}

/// A node's thumbnails waiting for the next report: the newest per camera.
public final class PendingThumbnails: Sendable {
    private let pending = Mutex<[String: Thumbnail]>([:])

    func put(_ thumbnail: Thumbnail) {
        pending.withLock { $0[thumbnail.camera] = thumbnail }
    }

    /// The newest ones, at most a report's worth; the others wait for the next report.
    func take() -> [ThumbnailEvent] {
        pending.withLock { pending in
            let taken = pending.values.sorted { $0.takenAt > $1.takenAt }.prefix(RelayReportBody.maximumThumbnails)
            for thumbnail in taken { pending[thumbnail.camera] = nil }
            return taken.map(ThumbnailEvent.init)
        }
    }
}
