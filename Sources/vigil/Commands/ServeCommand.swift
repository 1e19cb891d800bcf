import ArgumentParser
import Bus
import Coordinator
import Foundation
import MediaRelay
import Geo
import Incidents
import Streams
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Vigil server: the database, the geospatial engine and the CURVE-secured bus.",
        discussion: """
            On first start it creates the data folder, loads the region's camera registry, and creates \
            the server's and each agency's CURVE certificates under DATA/keys. When ready it prints one \
            JSON line naming both endpoints and writes the same to DATA/server.json.
            """)

    @Option(help: "The data folder.")
    var data = "vigil-data"

    @Option(help: "The deployment region: \(Deployment.allCases.map(\.rawValue).joined(separator: ", ")).")
    var region: Deployment = .brussels

    @Option(help: "The fixtures folder (default: ./fixtures, else the checkout's).")
    var fixtures: String?

    @Option(help: "The address to bind (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "The command endpoint's TCP port (0: any free port).")
    var commandPort = 7710

    @Option(help: "The event endpoint's TCP port (0: any free port).")
    var eventPort = 7711

    @Option(help: "The TCP port of the Prometheus endpoint, GET http://HOST:PORT/metrics (0: any free port).")
    var metricsPort = 7712

    @Option(help: "The media endpoint's TCP port, where the embedded relay serves camera feeds (0: any free port).")
    var mediaPort = 7713

    @Option(help: "The TCP port of the HTTP media endpoint, where feed links play as MPEG-TS (0: any free port).")
    var httpPort = 7714

    @Flag(help: "Generate the cameras whose stream is sim://ID in process (H.264 showing the id and the time), for demos.")
    var simulate = false

    @Option(help: "The most camera streams the embedded relay serves when relay nodes share the load (0: all go to the nodes).")
    var relayMaxStreams = 500

    @Option(help: "The most Mbit/s the embedded relay serves when relay nodes share the load.")
    var relayMaxMbps = 2_000.0

    @Option(help: "The shortest time between two thumbnails of a camera, in seconds.")
    var thumbnailInterval = 5.0

    @Option(help: "Seconds between signed checkpoints of the audit chain (one more is signed when the server stops).")
    var checkpointInterval = 60.0

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        try validatePorts([
            "--command-port": commandPort, "--event-port": eventPort, "--metrics-port": metricsPort, "--media-port": mediaPort, "--http-port": httpPort,
        ])
        guard relayMaxStreams >= 0, relayMaxMbps >= 0 else { throw ValidationError("--relay-max-streams and --relay-max-mbps must be 0 or more") }
        guard thumbnailInterval >= 0.1, thumbnailInterval <= 3600 else { throw ValidationError("--thumbnail-interval must be 0.1 to 3600 seconds") }
        guard checkpointInterval >= 0.5, checkpointInterval <= 86_400 else { throw ValidationError("--checkpoint-interval must be 0.5 to 86400 seconds") }
    }

    func run() async throws {
        // A player that leaves an HTTP feed must end its write with EPIPE, not the server.
        signal(SIGPIPE, SIG_IGN)
        logging.bootstrap()
        let logger = Logger(label: "vigil")
        let metricsRegistry = PrometheusCollectorRegistry()
        var metricsFactory = PrometheusMetricsFactory(registry: metricsRegistry)
        metricsFactory.durationHistogramBuckets[ServerMetrics.commandDurationLabel] = ServerMetrics.commandDurationBuckets
        MetricsSystem.bootstrap(metricsFactory)
        let folder = DataFolder(path: data)
        var folderLock: DataFolderLock?
        try reportingFailures {
            try folder.create()
            folderLock = try folder.lockForServer()
            try folder.record(region: region)
        }
        defer { withExtendedLifetime(folderLock) {} }

        let database = try Database(path: folder.database.path)
        let registry = RegistryStore(database: database)
        let fixturesFolder = try Deployment.fixturesFolder(fixtures)
        let camerasFile = fixturesFolder.appendingPathComponent(region.rawValue).appendingPathComponent("cameras.geojson")
        if try registry.loadIfEmpty(
            cameras: try CameraRegistryFile.read(contentsOf: camerasFile),
            fixture: try RegistryFixture.read(contentsOf: fixturesFolder.appendingPathComponent("agencies.json")))
        {
            logger.info("registry loaded", metadata: ["registry.file": "\(camerasFile.path)"])
        }
        let cameras = try registry.cameras()
        let projection = try Projection(crs: region.crs)
        // Selections depend on a confidential camera's 500 m square only (see LocationDisclosure).
        let index = try CameraIndex(admitting: cameras, projection: projection, disclosure: .confidentialCells)
        IncidentService.logRefusals(index.refused, logger: logger)
        let roads = try region.roadNetwork(fixtures: fixturesFolder, projection: projection)
        let users = UserDirectory(database: database)
        let clientKeys = ClientKeys(
            agencies: try await agencyKeys(folder: folder, agencies: try registry.agencies().map(\.id), users: users), users: try await users.users())
        let engine = CameraEngine(index: index)
        let incidents = IncidentService(database: database, engine: engine, roads: roads, logger: logger)
        let channels = ChannelMembers(liveIncidents: try await incidents.liveIncidents()) { clientKeys.holds(.auditor, $0) }

        let bus = try BusServer(
            configuration: BusServerConfiguration(
                commandEndpoint: "tcp://\(host):\(commandPort)", eventEndpoint: "tcp://\(host):\(eventPort)",
                serverKeys: try folder.serverKeys(), mediaEndpoint: "tcp://\(host):\(mediaPort)"),
            logger: logger,
            authorize: { clientKeys.identity(forKey: $0) },
            authorizeSubscription: { channels.allows($0, topic: $1) })
        try bus.start()
        let metrics = try HTTPEndpoint(host: host, port: metricsPort, name: "metrics") { path in
            guard path == "/metrics" || path.hasPrefix("/metrics?") else { return .error("404 Not Found", "only GET /metrics is served here") }
            return .complete(status: "200 OK", type: "text/plain; version=0.0.4; charset=utf-8", body: metricsRegistry.emitToBuffer())
        }
        metrics.start()
        defer { metrics.stop() }

        let access = AccessService(database: database)
        // The fixture agreements name agencies and owners of both regions; the territories are the Brussels police zones.
        let loaded = try access.loadIfEmpty(try AgreementFixture.read(
            contentsOf: fixturesFolder.appendingPathComponent("agreements.json"),
            policeZones: try AgreementFixture.policeZones(contentsOf: fixturesFolder.appendingPathComponent("sources/brussels_police_zones.geojson")),
            validFrom: Date()))
        if loaded > 0 { logger.info("sharing agreements loaded", metadata: ["grants": "\(loaded)"]) }
        let audit = AuditStore(database: database)
        let checkpoints = AuditCheckpoints(
            audit: audit, key: try folder.auditSigningKey(), bus: bus, owners: try registry.ownerIDs(),
            interval: .milliseconds(Int(checkpointInterval * 1000)), logger: logger)
        // Views cannot outlive the relay that served them: those a crash left open end now.
        let dangling = try await access.closeDanglingViews()
        if dangling > 0 { logger.notice("views left open by the previous run closed", metadata: ["views": "\(dangling)"]) }
        let relay = Relay(
            bus: bus, authority: LocalViewAuthority(access: access, incidents: incidents), sources: Relay.Source.of(index.cameras), simulate: simulate,
            thumbnailInterval: .milliseconds(Int(thumbnailInterval * 1000)),
            coordination: Relay.Coordination(
                nodes: RelayNodes(), capacity: RelayPlacement.Relay(name: "vigil:serve", maximumStreams: relayMaxStreams, maximumMbps: relayMaxMbps),
                publicKey: { clientKeys.publicKey(of: $0) }),
            logger: logger)
        for incident in try await incidents.liveIncidents() {
            relay.prewarm(try await incidents.snapshot(incident.id).cameras.map(\.id), for: incident.id)
        }
        let publisher = ChannelPublisher(bus: bus, incidents: incidents, access: access, channels: channels, relay: relay, logger: logger)
        // Requests, the expiry sweep and reloads change things one at a time (see SerialGate).
        let changes = SerialGate()
        // SIGHUP: reload the registry from the database (after `vigil cameras import`), swap in a
        // new index, and recompute the open incidents' selections (followers receive the difference).
        // Also run, in turn, by a camera.update or camera.retire request.
        let reloadRegistry: @Sendable () async throws -> Void = {
            try await incidents.reloadRegistry()
            relay.updateSources(Relay.Source.of(engine.index.cameras))
            try await recomputeSelections(incidents, publisher: publisher, logger: logger)
        }
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP)
        reload.setEventHandler {
            Task {
                do {
                    try await changes.serially { try await reloadRegistry() }
                } catch {
                    logger.error("registry reload failed; the previous index stays", metadata: ["error": "\(error)"])
                }
            }
        }
        reload.resume()
        defer { reload.cancel() }
        relay.onCameraState { camera, state, incidents in
            Task { await publisher.cameraState(camera, state, incidents: incidents) }
        }
        relay.onThumbnail { thumbnail, incidents in
            Task { await publisher.thumbnail(thumbnail, incidents: incidents) }
        }
        let links = try HTTPEndpoint(host: host, port: httpPort, name: "media") { relay.httpResponse($0) }
        links.start()
        defer { links.stop() }
        relay.serveLinks(at: "http://\(host):\(links.port)")
        let info = ServerInfo(
            command: bus.boundCommandEndpoint, events: bus.boundEventEndpoint,
            serverKey: try folder.serverKeys().publicKey, auditKey: checkpoints.publicKey, data: folder.url.path, region: region.rawValue,
            metrics: "http://\(host):\(metrics.port)/metrics", media: bus.boundMediaEndpoint, http: "http://\(host):\(links.port)",
            cameras: index.cameras.count, pid: ProcessInfo.processInfo.processIdentifier)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = try encoder.encode(info)
        try line.write(to: folder.serverInfo, options: .atomic)
        FileHandle.standardOutput.write(line + Data("\n".utf8))

        let dispatcher = CommandDispatcher(
            bus: bus, incidents: incidents, access: access, holds: EvidenceHolds(database: database), users: users, clientKeys: clientKeys,
            publisher: publisher, audit: audit, auditKey: checkpoints.publicKey, registry: registry, engine: engine, reloadRegistry: reloadRegistry, logger: logger)
        // After a restart (a crash included) the registry may have changed: open incidents recompute
        // their selections, and followers receive the difference like any other change.
        try await changes.serially { try await recomputeSelections(incidents, publisher: publisher, logger: logger) }
        let service = VigilService(
            bus: bus, dispatcher: dispatcher, relay: relay, audit: audit, checkpoints: checkpoints, changes: changes, logger: logger)
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        try? FileManager.default.removeItem(at: folder.serverInfo)
        logger.info("stopped")
    }

    /// Each agency's public key: the one recorded in the database (rotations change it there),
    /// else the certificate in the data folder (made on first start), which is then recorded.
    private func agencyKeys(folder: DataFolder, agencies: [String], users: UserDirectory) async throws -> [String: String] {
        let recorded = try await users.agencyKeys()
        let withKey = Set(recorded.values)
        var keys = recorded
        for (key, agency) in try folder.agencyPublicKeys(for: agencies.filter { !withKey.contains($0) }) {
            try await users.setAgencyKey(agency, to: key, rotatedBy: nil)
            keys[key] = agency
        }
        return keys
    }

    /// Recomputes every open incident's selection against the current registry and publishes
    /// each difference, like any other change.
    private func recomputeSelections(_ incidents: IncidentService, publisher: ChannelPublisher, logger: Logger) async throws {
        let recomputed = try await incidents.recomputeSelections()
        for change in recomputed { await publisher.publish(change) }
        if !recomputed.isEmpty { logger.info("selections recomputed", metadata: ["incidents": "\(recomputed.map(\.incidentId))"]) }
    }
}
