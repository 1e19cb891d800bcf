import Bus
import Crypto
import Foundation
import Geo
import Incidents
import Logging
import MediaRelay
import Metrics
import ServiceLifecycle
import Streams
import VigilProtocol

/// The coordinator's footage: which cameras are recorded, where every segment is, and their
/// deletion.
///
/// - Recording: at each change of a selection, an incident or a grant (and every 5 s), each
///   camera an open incident selects is recorded when the
///   decision function allows `record` for it under that incident to the lead agency or a
///   participant (an owner's own cameras always; another owner's under a grant with the
///   `record` mode). A change starts or stops the camera's recording, audited
///   (`recording.started`, `recording.stopped`, with the incidents). A decision a few seconds
///   late loses nothing: a recording starts with the feed's 10 s pre-roll.
/// - Deletion: every minute, segments past their owner's retention, then the oldest beyond the
///   relay's byte budget, unless an evidence hold covers them (``FootageCatalog``); their files
///   go, the rows stay, the audit log has one entry per camera and range. Held footage that
///   fills the budget raises a `footage.at-risk` request on each owner's channel.
public final class FootageService: Service, Sendable {
    public struct Configuration: Sendable {
        /// Where the embedded relay writes segments (`DATA/footage`).
        public var directory: URL
        /// Where evidence packages are written (`DATA/exports`).
        public var exports: URL
        /// The most bytes of footage the embedded relay keeps.
        public var budgetBytes: Int
        public var segmentSeconds: TimeInterval = 6
        /// How often recordings are decided again without a change (grant windows open and close
        /// by themselves); within the pre-roll (10 s), so a late decision loses nothing.
        public var decisionInterval = Duration.seconds(5)
        public var sweepInterval = Duration.seconds(60)

        public init(directory: URL, exports: URL, budgetBytes: Int) {
            self.directory = directory
            self.exports = exports
            self.budgetBytes = budgetBytes
        }
    }

    /// The name the coordinator's own relay has in the catalog.
    public static let relayName = "coordinator"

    public let catalog: FootageCatalog
    public let configuration: Configuration
    let relay: Relay
    let incidents: IncidentService
    let access: AccessService
    let audit: AuditStore
    let bus: BusServer
    let holds: EvidenceHolds
    let database: Database
    let engine: CameraEngine
    private let sweeps = SerialGate()
    /// The server's Ed25519 key (raw): it signs evidence manifests as it signs audit checkpoints.
    let signingKey: Data
    let logger: Logger

    init(
        configuration: Configuration, database: Database, relay: Relay, incidents: IncidentService, access: AccessService, audit: AuditStore,
        bus: BusServer, engine: CameraEngine, signingKey: Curve25519.Signing.PrivateKey, logger: Logger
    ) {
        self.configuration = configuration
        catalog = FootageCatalog(database: database)
        holds = EvidenceHolds(database: database)
        self.database = database
        (self.engine, self.signingKey) = (engine, signingKey.rawRepresentation)
        (self.relay, self.incidents, self.access, self.audit, self.bus, self.logger) = (relay, incidents, access, audit, bus, logger)
        var recorder = FootageRecorder.Configuration(directory: configuration.directory)
        recorder.segmentSeconds = configuration.segmentSeconds
        let catalog = catalog, directory = configuration.directory
        relay.enableFootage(FootageSettings(
            recorder: recorder, localRelay: Self.relayName,
            library: { camera, moment in
                // A playback runs on one relay: the one holding the moment's segment, for as long as it holds the next ones.
                let segments = try await catalog.playback(camera: camera, from: moment)
                guard let first = segments.first else { return .here([]) }
                guard first.relay == Self.relayName else { return .node(first.relay, start: first.start) }
                return .here(segments.prefix { $0.relay == Self.relayName }.map {
                    FootagePlayer.Item(segment: $0.recorded, url: directory.appendingPathComponent($0.file))
                })
            },
            onSegment: { segment, incidents, relay in
                FootageMetrics.bytesRecorded.increment(by: segment.bytes)
                Task {
                    do {
                        try await catalog.add(FootageSegment(segment, relay: relay, incidents: incidents.sorted()))
                    } catch {
                        logger.error("footage segment not recorded in the catalog", metadata: ["camera": "\(segment.camera)", "error": "\(error)"])
                    }
                }
            },
            onFailure: { camera, error in
                FootageMetrics.writeFailures.increment()
                logger.warning("footage not written", metadata: ["camera": "\(camera)", "error": "\(error)"])
            },
            nodeRemovals: { node, removed in
                do {
                    try await catalog.removed(removed, relay: node)
                    return try await catalog.filesToRemove(relay: node)
                } catch {
                    logger.error("footage removals of a relay node not read", metadata: ["relay": "\(node)", "error": "\(error)"])
                    return []
                }
            }))
    }

    /// Decides again at once when a selection, a grant or an incident changes (a camera is
    /// recorded from the moment an incident selects it), and every few seconds for what changes
    /// with time alone (a grant's window); sweeps every minute. Until graceful shutdown.
    public func run() async {
        let (wake, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for table in ["incident_cameras", "incidents", "grants"] {
                    group.addTask { for await _ in self.database.changes(of: table) { wakeUp.yield() } }
                }
                group.addTask {
                    while !Task.isCancelled {
                        wakeUp.yield()
                        try? await Task.sleep(for: self.configuration.decisionInterval)
                    }
                }
                await self.follow(wake)
                group.cancelAll()
            }
        }
    }

    /// Segment files the catalog does not know (a crash stopped the server while it wrote them,
    /// before it recorded them) are read back and entered, so that retention deletes them like
    /// any; one that holds no readable keyframe is no footage and is removed. A file the
    /// catalog knows as deleted (its removal failed) is removed. Audited (`footage.recovered`).
    /// The server does it as it starts, before anything is recorded.
    public func adoptUnknownSegments() async throws {
        let known = try await catalog.files(relay: Self.relayName)
        let directory = configuration.directory
        var (adopted, removed) = (0, 0)
        for file in RecordedSegment.files(in: directory) where known[file] != true {
            let url = directory.appendingPathComponent(file)
            guard known[file] == nil, let (camera, start) = RecordedSegment.parse(file: file),
                  let segment = try? RecordedSegment.scan(url, camera: camera, file: file, start: start)
            else {
                try? FileManager.default.removeItem(at: url)
                removed += 1
                continue
            }
            try await catalog.add(FootageSegment(segment, relay: Self.relayName, incidents: []))
            adopted += 1
        }
        guard adopted + removed > 0 else { return }
        try await audit.append(AuditRecord(
            action: "footage.recovered", details: ["relay": Self.relayName, "adopted": "\(adopted)", "removed": "\(removed)"]))
        logger.notice("footage folder checked", metadata: ["segments.adopted": "\(adopted)", "files.removed": "\(removed)"])
    }

    /// Decides the recordings at each wake-up, and sweeps when a sweep is due.
    private func follow(_ wake: AsyncStream<Void>) async {
        var recorded: [String: Set<Int64>] = [:]
        var lastSweep = ContinuousClock.now - configuration.sweepInterval
        for await _ in wake {
            do {
                recorded = try await decideRecordings(after: recorded)
                if ContinuousClock.now - lastSweep >= configuration.sweepInterval {
                    lastSweep = .now
                    try await sweep()
                }
            } catch {
                logger.error("footage service failed", metadata: ["error": "\(error)"])
            }
            // Changes that come meanwhile are folded into one decision, at most two a second (each
            // reads every open incident; the pre-roll covers the wait).
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Decides which cameras to record now, tells the relay, and audits what changed since `before`.
    @discardableResult
    public func decideRecordings(after before: [String: Set<Int64>], at now: Date = Date()) async throws -> [String: Set<Int64>] {
        var wanted: [String: Set<Int64>] = [:]
        for incident in try await incidents.liveIncidents() {
            let cameras = try await incidents.snapshot(incident.id).cameras.map(\.id)
            // One read per incident: the decision function for every camera and coordinating agency.
            let allowed = try await access.visibility(
                of: cameras, agencies: [incident.leadAgency] + incident.details.participants, incident: incident.id, mode: .record, at: now)
            for camera in Set(allowed.values.flatMap(\.allowed.keys)) { wanted[camera, default: []].insert(incident.id) }
        }
        relay.record(wanted)
        for camera in Set(wanted.keys).union(before.keys).sorted() where wanted[camera] != before[camera] {
            let action = wanted[camera] == nil ? "recording.stopped" : before[camera] == nil ? "recording.started" : "recording.changed"
            let incidents = (wanted[camera] ?? before[camera] ?? []).sorted()
            try await audit.append(AuditRecord(
                action: action, at: now, cameras: [camera], incident: incidents.first,
                details: ["incidents": incidents.map(String.init).joined(separator: ","), "relay": Self.relayName]))
        }
        return wanted
    }

    /// Deletes what retention and the budget no longer keep (files and all), raises the owners'
    /// requests for held footage at risk, and samples the footage gauges.
    /// Sweeps run one at a time (the minute's and one asked for, as the tests do): a sweep that
    /// returns has removed the files of what it marked deleted, never left them to another.
    public func sweep(at now: Date = Date()) async throws {
        try await sweeps.serially { try await sweepNow(at: now) }
    }

    private func sweepNow(at now: Date) async throws {
        let expired = try await catalog.sweepRetention(at: now)
        var overBudget: [FootageDeletion] = []
        var atRisk: [FootageAtRisk] = []
        for (relayName, budget) in [(Self.relayName, configuration.budgetBytes)] + relay.nodeFootageBudgets().sorted(by: { $0.key < $1.key }) {
            let (deleted, risk) = try await catalog.enforceBudget(relay: relayName, budget: budget, at: now)
            overBudget += deleted
            atRisk += risk
        }
        // The coordinator's own files go now; a relay node's with its next report (until it confirms).
        for deletion in expired + overBudget {
            if deletion.relay == Self.relayName {
                var removed: [String] = []
                for file in deletion.files {
                    let url = configuration.directory.appendingPathComponent(file)
                    if (try? FileManager.default.removeItem(at: url)) != nil || !FileManager.default.fileExists(atPath: url.path) { removed.append(file) }
                }
                try await catalog.removed(removed, relay: Self.relayName)
            }
            FootageMetrics.bytesDeleted.increment(by: deletion.bytes)
            logger.info("footage deleted", metadata: [
                "camera": "\(deletion.camera)", "reason": "\(deletion.reason.rawValue)", "segments": "\(deletion.files.count)",
            ])
        }
        for notice in atRisk {
            bus.publish(on: .owner(notice.owner), seq: notice.sequence, type: "footage.at-risk", at: notice.at, body: notice)
            logger.warning("held footage at risk: owner asked to preserve it", metadata: ["owner": "\(notice.owner)", "cameras": "\(notice.cameras.count)"])
        }
        let (kept, held) = try await catalog.bytes(at: now)
        Gauge(label: "vigil_footage_bytes").record(kept)
        Gauge(label: "vigil_footage_bytes_held").record(held)
    }
}

/// The footage counters (their help is in ``MetricsCatalog``).
enum FootageMetrics {
    static let bytesRecorded = Counter(label: "vigil_footage_bytes_recorded_total")
    static let bytesDeleted = Counter(label: "vigil_footage_bytes_deleted_total")
    static let writeFailures = Counter(label: "vigil_footage_write_failures_total")
}
