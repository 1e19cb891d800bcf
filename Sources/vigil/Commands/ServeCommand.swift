import ArgumentParser
import Bus
import Console
import Coordinator
import Foundation
import Geo
import ClusterLink
import Incidents
import Logging
import MediaRelay
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import VigilProtocol

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

    @Option(help: "The address to bind, IPv4 or IPv6 (loopback by default; names are not resolved).", transform: HostAddress.argument)
    var host = HostAddress("127.0.0.1")!

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

    // Unconditional: `-1` is this option's value, not an option of its own.
    @Option(parsing: .unconditional, help: "The operator console's TCP port, http://CONSOLE-HOST:PORT (0: any free port; -1: no console).")
    var consolePort = 7715

    @Option(help: "The address the console listens on (loopback by default; see --console-behind-tls).", transform: HostAddress.argument)
    var consoleHost = HostAddress("127.0.0.1")!

    @Flag(help: "Let the console listen off loopback: a TLS proxy in front of it serves browsers (docs/operations.md).")
    var consoleBehindTls = false

    @Option(help: "Where Leaflet's leaflet.js and leaflet.css are (Debian's libjs-leaflet).")
    var leaflet = "/usr/share/javascript/leaflet"

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

    @Option(
        help: ArgumentHelp(
            "The coordinators of a replicated cluster: each one's Raft address HOST:PORT, in member order, the same list on every coordinator.",
            discussion: "Each coordinator binds its bus at its own HOST with the same ports; the member that leads is the active coordinator, the others answer not_leader with where it is (docs/operations.md)."),
        transform: { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } })
    var cluster: [String] = []

    @Option(help: "This coordinator's number in --cluster (1: the first, which starts the cluster).")
    var member: Int?

    @OptionGroup var recording: FootageOptions

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        try validatePorts([
            "--command-port": commandPort, "--event-port": eventPort, "--metrics-port": metricsPort, "--media-port": mediaPort, "--http-port": httpPort,
        ])
        if consolePort != -1 { try validatePorts(["--console-port": consolePort]) }
        // The console's cookies and login codes must not cross a network in clear.
        guard consoleHost.isLoopback || consoleBehindTls || consolePort == -1 else {
            throw ValidationError("--console-host \(consoleHost) is off loopback: put a TLS proxy in front of the console and pass --console-behind-tls (docs/operations.md)")
        }
        guard relayMaxStreams >= 0, relayMaxMbps >= 0 else { throw ValidationError("--relay-max-streams and --relay-max-mbps must be 0 or more") }
        guard thumbnailInterval >= 0.1, thumbnailInterval <= 3600 else { throw ValidationError("--thumbnail-interval must be 0.1 to 3600 seconds") }
        guard checkpointInterval >= 0.5, checkpointInterval <= 86_400 else { throw ValidationError("--checkpoint-interval must be 0.5 to 86400 seconds") }
        try validateCluster()
    }

    /// A cluster needs every member's address, this coordinator's number, its bus on its
    /// member's host, and fixed ports (the others find the leader at its host and these ports).
    private func validateCluster() throws {
        guard !cluster.isEmpty else {
            if member != nil { throw ValidationError("--member needs --cluster") }
            return
        }
        let members = try clusterMembers()
        guard Set(members.map(\.address)).count == members.count else { throw ValidationError("--cluster names an address twice") }
        guard let member else { throw ValidationError("--cluster needs --member: this coordinator's number in the list (1 to \(members.count))") }
        guard (1...members.count).contains(member) else { throw ValidationError("--member must be 1 to \(members.count), the number of addresses in --cluster") }
        let mine = members[member - 1].address
        guard mine.hasPrefix(host.bracketed + ":") else {
            throw ValidationError("member \(member)'s address \(mine) is not on --host \(host): a coordinator's bus and Raft address share its host")
        }
        guard commandPort != 0, eventPort != 0, mediaPort != 0 else {
            throw ValidationError("a cluster's coordinators bind fixed --command-port, --event-port and --media-port (0 picks a port the others cannot know)")
        }
    }

    /// `--cluster`'s members, numbered from 1; each address an IP address and a port.
    private func clusterMembers() throws -> [ReplicatedNode.Member] {
        try cluster.enumerated().map { offset, address in
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
                throw ValidationError("--cluster: \(address) is not HOST:PORT")
            }
            var hostPart = String(address[..<colon])
            if hostPart.hasPrefix("["), hostPart.hasSuffix("]") { hostPart = String(hostPart.dropFirst().dropLast()) }
            guard let host = HostAddress(hostPart), !host.isUnspecified else {
                throw ValidationError("--cluster: \(address)'s host is not an IP address other peers can reach (names are not resolved)")
            }
            return ReplicatedNode.Member(id: UInt64(offset + 1), address: "\(host.bracketed):\(port)")
        }
    }

    func run() async throws {
        // A player that leaves an HTTP feed must end its write with EPIPE, not the server.
        signal(SIGPIPE, SIG_IGN)
        logging.bootstrap()
        let logger = Logger(label: "vigil")
        let metricsRegistry = PrometheusCollectorRegistry()
        var metricsFactory = DocumentedMetricsFactory(registry: metricsRegistry)
        metricsFactory.prometheus.durationHistogramBuckets[ServerMetrics.commandDurationLabel] = ServerMetrics.commandDurationBuckets
        MetricsSystem.bootstrap(metricsFactory)
        MetricsCatalog.registerAtStart(version: VigilVersion.current)
        let folder = DataFolder(path: data)
        var folderLock: DataFolderLock?
        try reportingFailures {
            try folder.create()
            folderLock = try folder.lockForServer()
            try folder.record(region: region)
            if let member, member != 1 { try folder.requireSharedKeys(member: member) }
        }
        defer { withExtendedLifetime(folderLock) {} }

        let fixturesFolder = try Deployment.fixturesFolder(fixtures)
        let metrics = try HTTPEndpoint(host: host, port: metricsPort, name: "metrics") { request in
            guard request.path == "/metrics" || request.path.hasPrefix("/metrics?") else { return .error("404 Not Found", "only GET /metrics is served here") }
            return .complete(
                status: "200 OK", type: "text/plain; version=0.0.4; charset=utf-8", body: metricsRegistry.emitToBuffer() + Array(ProcessMetrics.text().utf8))
        }
        metrics.start()
        defer { metrics.stop() }
        let metricsURL = host.httpBase(port: metrics.port) + "/metrics"
        defer { try? FileManager.default.removeItem(at: folder.serverInfo) }

        guard !cluster.isEmpty, let member else {
            let database = try folder.openDatabase()
            try await serveActive(
                database: database, folder: folder, fixtures: fixturesFolder, metrics: metricsURL, cluster: nil, logger: logger,
                shutdownSignals: [.sigterm, .sigint])
            logger.info("stopped")
            return
        }

        let members = try clusterMembers()
        let bus = try busConfiguration(folder: folder)
        let configuration = ClusterMember.Configuration(
            members: members, me: members[member - 1], folder: folder.raft, transport: try ClusterLink(serverKeys: bus.serverKeys), bus: bus,
            commandPort: commandPort, eventPort: eventPort, mediaPort: mediaPort)
        let coordinators = members.map(configuration.endpoints(of:))
        let mine = configuration.endpoints(of: configuration.me)
        let serverKey = configuration.bus.serverKeys.publicKey
        let clusterInfo = { @Sendable (role: ClusterMember.Role) in
            ServerInfo.Cluster(member: member, role: role.rawValue, coordinators: coordinators, members: members.map(\.address))
        }
        let clusterMember = try ClusterMember(
            configuration: configuration, logger: logger,
            roleChanged: { role in
                // A standby announces itself too: clients that reach it are sent to the leader.
                guard role == .standby else { return }
                try? Self.announce(
                    ServerInfo(
                        command: mine.command, events: mine.events, serverKey: serverKey, auditKey: try? folder.auditPublicKey(),
                        data: folder.url.path, region: region.rawValue, metrics: metricsURL, cameras: nil, pid: ProcessInfo.processInfo.processIdentifier,
                        cluster: clusterInfo(role)),
                    in: folder)
            },
            active: { database, watch in
                try await self.serveActive(
                    database: database, folder: folder, fixtures: fixturesFolder, metrics: metricsURL,
                    cluster: (clusterInfo(.leader), watch), logger: logger,
                    shutdownSignals: [])
            })
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: clusterMember)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped")
    }

    /// The active coordinator over `database`: the server, its registry reloads on SIGHUP, the
    /// console; the ready line once everything listens; returns when its services end (a
    /// signal among `shutdownSignals`, or, in a cluster, the lead lost: `cluster`'s watch then
    /// shuts the services down, the console and the bus's requests first).
    private func serveActive(
        database: Database, folder: DataFolder, fixtures fixturesFolder: URL, metrics: String, cluster: (info: ServerInfo.Cluster, watch: LeadershipWatch)?,
        logger: Logger, shutdownSignals: [UnixSignal]
    ) async throws {
        let server = try await VigilServer(try configuration(folder: folder, fixtures: fixturesFolder, database: database), logger: logger)
        let endpoints = try server.start()
        defer {
            server.stop()
            // Stopped by its service on a graceful shutdown; a cancelled term (the lead lost) frees its ports here.
            server.bus.stop()
        }
        // SIGHUP: reload the registry from the database (after `vigil cameras import`).
        // Trapped before the ready line, so that no SIGHUP sent after it is lost.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reloads = Task {
            for await _ in hangups {
                do {
                    try await server.reloadRegistry()
                } catch {
                    logger.error("registry reload failed; the previous index stays", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { reloads.cancel() }

        // The console listens once its service runs: the ready line waits for its address.
        let (consoleAddresses, consoleListening) = AsyncStream.makeStream(of: String.self)
        var services = server.services
        if let watch = cluster?.watch {
            // The fence: the lead lost shuts the services down, the console and the bus's requests
            // first; meanwhile dqlite refuses every write of a member that does not lead.
            services.insert(.init(service: watch, failureTerminationBehavior: .gracefullyShutdownGroup), at: 0)
        }
        if consolePort != -1 {
            let basemap = region.basemap(fixtures: fixturesFolder)
            let console = ConsoleServer(
                configuration: .init(
                    host: consoleHost, port: consolePort, leafletFolder: URL(fileURLWithPath: leaflet), basemap: basemap.layers,
                    attributions: basemap.attributions, view: basemap.view),
                bus: server.bus, codes: server.consoleCodes, users: server.users, mayFollow: server.mayFollow,
                viewListShows: { camera, viewer, incident, agency in await server.viewListShows(camera: camera, viewer: viewer, incident: incident, to: agency) },
                logger: logger)
            // Last, so that it stops first: no browser request reaches a stopping bus. If it cannot
            // start (its port taken), the server stops as on SIGTERM, and says why.
            services.append(.init(service: console.application { consoleListening.yield($0) }, failureTerminationBehavior: .gracefullyShutdownGroup))
        } else {
            consoleListening.finish()
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: shutdownSignals, logger: logger))
        try await withThrowingDiscardingTaskGroup { running in
            running.addTask {
                defer { consoleListening.finish() }
                // Inside the cluster member's group, that group's graceful shutdown reaches this one by itself.
                try await group.run()
            }
            let console = await consoleAddresses.first { _ in true }
            guard console != nil || consolePort == -1 else { return }  // the group failed: its error follows
            try Self.announce(
                ServerInfo(
                    command: endpoints.command, events: endpoints.events, serverKey: endpoints.serverKey, auditKey: endpoints.auditKey,
                    data: folder.url.path, region: region.rawValue, metrics: metrics, media: endpoints.media,
                    http: endpoints.links, console: console, cameras: endpoints.cameras, pid: ProcessInfo.processInfo.processIdentifier,
                    cluster: cluster?.info),
                in: folder)
        }
    }

    /// The ready line: one JSON line on standard output, the same in DATA/server.json. A
    /// cluster's coordinator writes one each time its role changes.
    private static func announce(_ info: ServerInfo, in folder: DataFolder) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = try encoder.encode(info)
        try line.write(to: folder.serverInfo, options: .atomic)
        FileHandle.standardOutput.write(line + Data("\n".utf8))
    }

    private func busConfiguration(folder: DataFolder) throws -> BusServerConfiguration {
        BusServerConfiguration(
            commandEndpoint: host.tcpEndpoint(port: commandPort), eventEndpoint: host.tcpEndpoint(port: eventPort),
            serverKeys: try folder.serverKeys(), mediaEndpoint: host.tcpEndpoint(port: mediaPort))
    }

    /// The server's settings: the data folder's database and keys, the region's fixtures.
    private func configuration(folder: DataFolder, fixtures fixturesFolder: URL, database: Database) throws -> VigilServer.Configuration {
        let region = self.region
        var configuration = VigilServer.Configuration(
            databasePath: database.path,
            bus: try busConfiguration(folder: folder),
            linksHost: host, linksPort: httpPort, crs: region.crs,
            roads: { try region.roadNetwork(fixtures: fixturesFolder, projection: $0) },
            initialRegistry: {
                (try CameraRegistryFile.read(contentsOf: fixturesFolder.appendingPathComponent(region.rawValue).appendingPathComponent("cameras.geojson")),
                 try RegistryFixture.read(contentsOf: fixturesFolder.appendingPathComponent("agencies.json")))
            },
            // The fixture agreements name agencies and owners of both regions; the territories are the Brussels police zones.
            initialAgreements: {
                try AgreementFixture.read(
                    contentsOf: fixturesFolder.appendingPathComponent("agreements.json"),
                    policeZones: try AgreementFixture.policeZones(
                        contentsOf: fixturesFolder.appendingPathComponent("sources/brussels_police_zones.geojson")),
                    validFrom: Date())
            },
            newAgencyKeys: { try folder.agencyPublicKeys(for: $0) },
            auditSigningKey: try folder.auditSigningKey().rawRepresentation,
            thumbnailInterval: .milliseconds(Int(thumbnailInterval * 1000)), checkpointInterval: .milliseconds(Int(checkpointInterval * 1000)),
            relayMaximumStreams: relayMaxStreams, relayMaximumMbps: relayMaxMbps, simulate: simulate, footage: footage(folder: folder))
        configuration.database = database
        return configuration
    }

    private func footage(folder: DataFolder) -> FootageService.Configuration? {
        guard let budget = recording.budgetBytes else { return nil }
        var footage = FootageService.Configuration(directory: folder.footage, exports: folder.exports, budgetBytes: budget)
        footage.segmentSeconds = recording.segmentSeconds
        return footage
    }
}
