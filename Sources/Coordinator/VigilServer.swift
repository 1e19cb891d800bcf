import Bus
import Crypto
import Foundation
import Geo
import Incidents
import Logging
import MediaRelay
import ServiceLifecycle
import Streams

/// One coordinator with its embedded relay, composed from a deployment's settings: the database,
/// the camera index, the bus, the relay and its HTTP links, the channels, the dispatcher and the
/// audit checkpoints. `vigil serve` builds one from its data folder; a test builds one over a
/// temporary database and talks to it in process (``attachInProcess(as:)``).
///
/// Use: `init`, then any ``attachInProcess(as:)``, then ``start()``, then run ``services`` in one
/// `ServiceGroup` (which stops them gracefully, the last first); ``stop()`` closes what `start`
/// opened.
public final class VigilServer: Sendable {
    public struct Configuration: Sendable {
        public var databasePath: String
        /// The database already open (a cluster's, replicated by dqlite); nil: the SQLite file at `databasePath`.
        public var database: Database?
        /// The bus's network endpoints and keys (`tcp://HOST:0` picks free ports).
        public var bus: BusServerConfiguration
        /// Where the relay serves its HTTP links (port 0 picks a free one).
        public var linksHost: HostAddress
        public var linksPort: Int
        public var crs: MetricCRS
        /// The road network of the march window's side streets, if the region has one.
        public var roads: @Sendable (Projection) throws -> RoadNetwork?
        /// The registry loaded into an empty database (first start only).
        public var initialRegistry: @Sendable () throws -> (cameras: [Camera], fixture: RegistryFixture)
        /// The sharing agreements loaded when there is no grant yet (first start only).
        public var initialAgreements: @Sendable () throws -> [Grant]
        /// Public keys (agency by key) for the agencies that have none recorded yet.
        public var newAgencyKeys: @Sendable ([String]) throws -> [String: String]
        /// The Ed25519 key (raw) that signs audit checkpoints.
        public var auditSigningKey: Data
        public var thumbnailInterval: Duration
        public var checkpointInterval: Duration
        /// The embedded relay's caps while relay nodes share the load.
        public var relayMaximumStreams: Int
        public var relayMaximumMbps: Double
        /// Whether `sim://` cameras are generated in process.
        public var simulate: Bool
        /// Incident recording by the embedded relay; nil: nothing is recorded.
        public var footage: FootageService.Configuration?

        public init(
            databasePath: String, bus: BusServerConfiguration, linksHost: HostAddress, linksPort: Int, crs: MetricCRS,
            roads: @escaping @Sendable (Projection) throws -> RoadNetwork?,
            initialRegistry: @escaping @Sendable () throws -> (cameras: [Camera], fixture: RegistryFixture),
            initialAgreements: @escaping @Sendable () throws -> [Grant], newAgencyKeys: @escaping @Sendable ([String]) throws -> [String: String],
            auditSigningKey: Data, thumbnailInterval: Duration = .seconds(5), checkpointInterval: Duration = .seconds(60),
            relayMaximumStreams: Int = 500, relayMaximumMbps: Double = 2_000, simulate: Bool = false, footage: FootageService.Configuration? = nil
        ) {
            self.footage = footage
            self.databasePath = databasePath
            self.bus = bus
            self.linksHost = linksHost
            self.linksPort = linksPort
            self.crs = crs
            self.roads = roads
            self.initialRegistry = initialRegistry
            self.initialAgreements = initialAgreements
            self.newAgencyKeys = newAgencyKeys
            self.auditSigningKey = auditSigningKey
            self.thumbnailInterval = thumbnailInterval
            self.checkpointInterval = checkpointInterval
            self.relayMaximumStreams = relayMaximumStreams
            self.relayMaximumMbps = relayMaximumMbps
            self.simulate = simulate
        }
    }

    /// Where a started server is reached.
    public struct Endpoints: Sendable {
        public var command: String
        public var events: String
        public var media: String?
        public var links: String
        public var serverKey: String
        public var auditKey: String
        public var cameras: Int
    }

    public let bus: BusServer
    public let relay: Relay
    public let incidents: IncidentService
    public let access: AccessService
    public let audit: AuditStore
    /// The agencies' named users (the console checks each request's user against them).
    public let users: UserDirectory
    /// The operator console's one-time login codes (`console.code`).
    public let consoleCodes: ConsoleCodes
    /// Recording, retention and playback's catalog; nil when the server records nothing.
    public let footage: FootageService?
    /// The long-running parts, one loop each, in the order a `ServiceGroup` must start them: it
    /// stops them in reverse, so the bus's requests end first (after a last audit checkpoint),
    /// then the relay, and the loops that only need the bus or the database last.
    public let services: [ServiceGroupConfiguration.ServiceConfiguration]
    private let links: HTTPEndpoint
    private let checkpoints: AuditCheckpoints
    private let changes: SerialGate
    /// The camera index every selection reads.
    public let engine: CameraEngine
    private let reload: @Sendable () async throws -> Void
    private let configuration: Configuration
    private let channels: ChannelMembers

    /// Whether the bus lets `identity` subscribe to `topic` (the rule of its event endpoint).
    public func mayFollow(_ identity: BusIdentity, topic: String) -> Bool {
        channels.allows(identity, topic: topic)
    }

    /// Whether `agency`'s `view.list` under `incident` shows a view of `camera` by `viewer`
    /// (an agency); false when that cannot be read.
    public func viewListShows(camera: String, viewer: String, incident: Int64, to agency: String) async -> Bool {
        (try? await access.viewsShown(under: incident, to: agency, of: [(camera, viewer)]))?.first ?? false
    }

    public init(_ configuration: Configuration, logger: Logger) async throws {
        self.configuration = configuration
        let database = try configuration.database ?? Database(path: configuration.databasePath)
        let registry = RegistryStore(database: database)
        // The fixture files are read on first start only (the registry is 1.4 MB of GeoJSON).
        if try registry.isEmpty() {
            let initial = try configuration.initialRegistry()
            if try registry.loadIfEmpty(cameras: initial.cameras, fixture: initial.fixture) { logger.info("registry loaded") }
        }
        let projection = try Projection(crs: configuration.crs)
        // Selections depend on a confidential camera's 500 m square only (see LocationDisclosure).
        let index = try CameraIndex(admitting: try registry.cameras(), projection: projection, disclosure: .confidentialCells)
        IncidentService.logRefusals(index.refused, logger: logger)
        let users = UserDirectory(database: database)
        let clientKeys = ClientKeys(
            agencies: try await Self.agencyKeys(agencies: try registry.agencies().map(\.id), users: users, making: configuration.newAgencyKeys),
            users: try await users.users())
        let engine = CameraEngine(index: index)
        let incidents = IncidentService(database: database, engine: engine, roads: try configuration.roads(projection), logger: logger)
        let channels = ChannelMembers(liveIncidents: try await incidents.liveIncidents()) { clientKeys.holds(.auditor, $0) }
        let bus = try BusServer(
            configuration: configuration.bus, logger: logger,
            authorize: { clientKeys.identity(forKey: $0) },
            authorizeSubscription: { channels.allows($0, topic: $1) })

        let access = AccessService(database: database)
        let loaded = try access.loadIfEmpty(try configuration.initialAgreements())
        if loaded > 0 { logger.info("sharing agreements loaded", metadata: ["grants": "\(loaded)"]) }
        let audit = AuditStore(database: database)
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: configuration.auditSigningKey)
        let checkpoints = AuditCheckpoints(
            audit: audit, key: key, bus: bus, owners: try registry.ownerIDs(), interval: configuration.checkpointInterval, logger: logger)
        let relay = try Relay(
            bus: bus, authority: LocalViewAuthority(access: access, incidents: incidents), sources: Relay.Source.of(index.cameras),
            simulate: configuration.simulate, thumbnailInterval: configuration.thumbnailInterval,
            coordination: Relay.Coordination(
                capacity: RelayPlacement.Relay(
                    name: "vigil:serve", maximumStreams: configuration.relayMaximumStreams, maximumMbps: configuration.relayMaximumMbps),
                publicKey: { clientKeys.publicKey(of: $0) }),
            logger: logger)
        // The views recorded open before this start (a restart, or a failover in a cluster): those
        // relay nodes still serve go on once they report them; the others, which died with the
        // relay that served them, are recorded stopped when the nodes' window has passed.
        relay.adoptViews(try await access.recordedOpenViews())
        for incident in try await incidents.liveIncidents() {
            relay.prewarm(try await incidents.snapshot(incident.id).cameras.map(\.id), for: incident.id)
        }
        let publisher = ChannelPublisher(bus: bus, incidents: incidents, access: access, channels: channels, relay: relay, logger: logger)
        // Requests, the expiry sweep and reloads change things one at a time (see SerialGate).
        let changes = SerialGate()
        // A reload (SIGHUP after `vigil cameras import`, or a camera.update or camera.retire
        // request) swaps in a new index and recomputes the open incidents' selections; followers
        // receive the differences.
        let reload: @Sendable () async throws -> Void = {
            _ = try await incidents.reloadRegistry()
            publisher.visibility.forgetAll()
            relay.updateSources(Relay.Source.of(engine.index.cameras))
            try await Self.recomputeSelections(incidents, publisher: publisher, logger: logger)
        }
        links = try HTTPEndpoint(host: configuration.linksHost, port: configuration.linksPort, name: "media") { relay.httpResponse($0) }
        let footage = configuration.footage.map {
            FootageService(
                configuration: $0, database: database, relay: relay, incidents: incidents, access: access, audit: audit, bus: bus, engine: engine,
                signingKey: key, logger: logger)
        }
        let consoleCodes = ConsoleCodes()
        let dispatcher = CommandDispatcher(
            bus: bus, incidents: incidents, access: access, holds: EvidenceHolds(database: database), users: users, clientKeys: clientKeys,
            publisher: publisher, audit: audit, auditKey: checkpoints.publicKey, registry: registry, engine: engine, footage: footage,
            consoleCodes: consoleCodes, reloadRegistry: reload, logger: logger)
        // `session.identity` is answered on the bus thread, without a hand-off (a client's first
        // request, and its liveness check).
        try bus.answerAtOnce { dispatcher.answerAtOnce($0) }
        // After a restart (a crash included) the registry may have changed: open incidents recompute
        // their selections, and followers receive the difference like any other change.
        try await changes.serially { try await Self.recomputeSelections(incidents, publisher: publisher, logger: logger) }
        // Before anything is recorded: what a crash left in the footage folder joins the catalog.
        try await footage?.adoptUnknownSegments()
        services = [
            .init(service: BusAudit(bus: bus, audit: audit, logger: logger)),
            .init(service: MetricsSampler(relay: relay, channels: channels, holds: EvidenceHolds(database: database))),
            .init(service: AuditChannel(bus: bus, audit: audit)),
            .init(service: ExpirySweep(dispatcher: dispatcher, changes: changes, logger: logger)),
            .init(service: ViewAdoption(relay: relay, access: access, logger: logger)),
        ] + (footage.map { [.init(service: $0)] } ?? []) + [
            .init(service: checkpoints),
            // Stops after the relay, whose last camera events it publishes.
            .init(service: CameraEvents(relay: relay, publisher: publisher)),
            .init(service: RelayService(relay: relay)),
            .init(service: RequestService(bus: bus, dispatcher: dispatcher, checkpoints: checkpoints, changes: changes)),
        ]
        (self.bus, self.relay, self.incidents, self.access, self.audit, self.footage) = (bus, relay, incidents, access, audit, footage)
        (self.checkpoints, self.changes, self.reload, self.engine) = (checkpoints, changes, reload, engine)
        (self.users, self.consoleCodes, self.channels) = (users, consoleCodes, channels)
    }

    /// A client configuration for code in this process that acts as `identity` (over
    /// `inproc://`, no CURVE: see `BusServer.attachInProcess`). Before ``start()`` only.
    public func attachInProcess(as identity: BusIdentity) throws -> BusClientConfiguration {
        try bus.attachInProcess(as: identity)
    }

    /// Binds the bus and starts its thread, and serves the relay's links.
    public func start() throws -> Endpoints {
        try bus.start()
        links.start()
        let linksBase = configuration.linksHost.httpBase(port: links.port)
        relay.serveLinks(at: linksBase)
        return Endpoints(
            command: bus.boundCommandEndpoint, events: bus.boundEventEndpoint, media: bus.boundMediaEndpoint, links: linksBase,
            serverKey: configuration.bus.serverKeys.publicKey, auditKey: checkpoints.publicKey, cameras: engine.index.cameras.count)
    }

    /// Reloads the registry from the database, in turn with every other change.
    public func reloadRegistry() async throws {
        try await changes.serially { try await reload() }
    }

    /// Runs `body` while no change can pass the serial gate (requests that change something wait
    /// until it returns; reads do not): for maintenance that needs a still state, and for tests.
    public func holdingChanges<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await changes.serially(body)
    }

    /// Stops the links (the bus stops with ``service``).
    public func stop() {
        links.stop()
    }

    /// Each agency's public key: the one recorded in the database (rotations change it there),
    /// else a new one (`making`), which is then recorded.
    private static func agencyKeys(
        agencies: [String], users: UserDirectory, making: @Sendable ([String]) throws -> [String: String]
    ) async throws -> [String: String] {
        let recorded = try await users.agencyKeys()
        let withKey = Set(recorded.values)
        var keys = recorded
        for (key, agency) in try making(agencies.filter { !withKey.contains($0) }) {
            try await users.setAgencyKey(agency, to: key, rotatedBy: nil)
            keys[key] = agency
        }
        return keys
    }

    /// Recomputes every open incident's selection against the current registry and publishes
    /// each difference, like any other change.
    private static func recomputeSelections(_ incidents: IncidentService, publisher: ChannelPublisher, logger: Logger) async throws {
        let recomputed = try await incidents.recomputeSelections()
        for change in recomputed { await publisher.publish(change) }
        if !recomputed.isEmpty { logger.info("selections recomputed", metadata: ["incidents": "\(recomputed.map(\.incidentId))"]) }
    }
}
