import ArgumentParser
import Bus
import Foundation
import MediaRelay
import Logging
import ServiceLifecycle
import Streams
import Synchronization
import VigilProtocol

struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Run a relay node on this host: it serves the cameras a vigil serve (the coordinator) assigns it.",
        discussion: """
            The node registers with the coordinator's command endpoint using a user certificate with the \
            relay role (vigil user add ID --role relay ... on the coordinator's host), reports its load and \
            its cameras' states every second, and opens the cameras it is assigned (rendezvous hashing on the \
            camera id, within each relay's caps). Viewers reach it through the coordinator: feed.open there \
            runs the consultation and answers with this node's endpoint and a signed ticket; feed.link \
            answers with an address on this node's HTTP port whose token is a signed ticket. When the \
            coordinator stops answering for 10 s, the node ends every view.
            """)

    @Option(
        help: "The coordinator's command endpoint, tcp://HOST:PORT (`command` in its server.json); for a replicated cluster, every coordinator's, comma-separated: the node follows the leader.",
        transform: { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } })
    var coordinator: [String]
    @Option(help: "The coordinator's public certificate (its DATA/keys/server.key).")
    var serverKey: String
    @Option(help: "This node's certificate: a user of the coordinator with the relay role (DATA/keys/users/ID.key_secret).")
    var cert: String
    @Option(help: "The address to bind, IPv4 or IPv6 (names are not resolved); 0.0.0.0 or :: binds every address and needs --advertise.",
            transform: HostAddress.argument)
    var host = HostAddress("127.0.0.1")!
    @Option(help: "The address viewers reach this node at, when it is not --host (every address bound, or a NAT in between). Default: --host.",
            transform: HostAddress.argument)
    var advertise: HostAddress?
    @Option(help: "The media endpoint's TCP port (0: any free port).")
    var mediaPort = 7723
    @Option(help: "The TCP port of the links this node serves, http://HOST:PORT/views/... (0: any free port).")
    var httpPort = 7724
    @Option(help: "The most camera streams this node serves.")
    var maxStreams = 200
    @Option(help: "The most Mbit/s this node serves.")
    var maxMbps = 1_000.0
    @Flag(help: "Generate the cameras whose stream is sim://ID in process, for demos.")
    var simulate = false
    @Option(help: "The site this node stands at (a building or network, e.g. stib-dc): viewers who say they watch from it (vigil watch --site) are served by a node here.")
    var site: String?
    @Option(
        name: .customLong("origin-of"),
        help: "The camera owners whose cameras are pulled at this node's site, comma-separated (e.g. stib,pz-5339): only this site's nodes open them.",
        transform: { $0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } })
    var origins: [String] = []
    @Option(help: "Where this node records the footage the coordinator asks it to (one folder per camera).")
    var footage = "vigil-relay-footage"
    @OptionGroup var recording: FootageOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard !coordinator.isEmpty, coordinator.allSatisfy({ $0.hasPrefix("tcp://") }) else {
            throw ValidationError("--coordinator is a tcp://HOST:PORT endpoint, or several separated by commas")
        }
        // An unspecified address reaches no viewer: the coordinator would send them nowhere.
        if host.isUnspecified, advertise == nil {
            throw ValidationError("--host \(host) binds every address of this host: say with --advertise which one viewers reach")
        }
        if let advertise, advertise.isUnspecified { throw ValidationError("--advertise \(advertise) reaches no viewer: give this host's address") }
        try validatePorts(["--media-port": mediaPort, "--http-port": httpPort])
        guard maxStreams >= 0, maxMbps >= 0 else { throw ValidationError("--max-streams and --max-mbps must be 0 or more") }
        if let site, site.isEmpty || site.count > 100 { throw ValidationError("--site is a name of 1 to 100 characters") }
        guard origins.allSatisfy({ !$0.isEmpty && $0.count <= 100 }) else { throw ValidationError("--origin-of lists owners' names, separated by commas") }
        if !origins.isEmpty, site == nil { throw ValidationError("--origin-of needs --site: the owners' cameras are pulled at this node's site") }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        logging.bootstrap()
        let logger = Logger(label: "vigil.relay")
        let coordinatorKey = try CurveCertificate.read(URL(fileURLWithPath: serverKey))
        let keys = try CurveCertificate.read(URL(fileURLWithPath: cert))
        // The media endpoint's own keys, new at each start: the coordinator hands them to viewers.
        let nodeKeys = try CurveKeyPair.generate()
        // A node serves media only; its command and event sockets are bound in process, where nobody connects.
        let bus = try BusServer(
            configuration: BusServerConfiguration(
                commandEndpoint: "inproc://vigil.relay.command", eventEndpoint: "inproc://vigil.relay.events", serverKeys: nodeKeys,
                mediaEndpoint: host.tcpEndpoint(port: mediaPort)),
            logger: logger,
            authorize: { RelayNodeAuthority.identity(forKey: $0) },
            authorizeSubscription: { _, _ in false })
        try bus.start()
        guard let bound = bus.boundMediaEndpoint, let boundPort = bound.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw CommandFailure(.internalError, message: "no media endpoint")
        }
        // What the coordinator hands viewers: the advertised address, on the ports bound.
        let reachable = advertise ?? host
        let media = reachable.tcpEndpoint(port: boundPort)
        let authority = RelayNodeAuthority()
        let relay = try Relay(
            bus: bus, authority: authority, sources: [:], simulate: simulate, thumbnailInterval: .seconds(5), coordination: nil, upstreamKeys: keys,
            logger: logger)
        // Links: a player opens the address the coordinator gave, whose token is a link ticket.
        let nodeFootage = recording.noRecording ? nil : NodeFootage(directory: URL(fileURLWithPath: footage))
        if let nodeFootage {
            try FileManager.default.createDirectory(at: nodeFootage.directory, withIntermediateDirectories: true)
            nodeFootage.reportFolder()
            relay.enableFootage(nodeFootage.settings(segmentSeconds: recording.segmentSeconds))
        }
        let links = try HTTPEndpoint(host: host, port: httpPort, name: "media") { relay.httpResponse($0) }
        links.start()
        relay.serveSealedStreams(at: reachable.httpBase(port: links.port))
        defer { links.stop() }
        let client = LeaderFollowingClient(coordinators: coordinator.map { .init(command: $0, events: $0) }) { coordinator throws(BusClientError) in
            try BusClient(configuration: BusClientConfiguration(
                commandEndpoint: coordinator.command, eventEndpoint: coordinator.command, serverPublicKey: coordinatorKey.publicKey, keys: keys))
        }
        let registration = RelayRegisterBody(
            media: media, serverKey: nodeKeys.publicKey, maximumStreams: maxStreams, maximumMbps: maxMbps, links: reachable.httpBase(port: links.port),
            footageBudgetBytes: recording.budgetBytes, site: site, origins: origins.isEmpty ? nil : origins)
        let service = RelayNodeService(
            bus: bus, relay: relay, authority: authority, client: client, registration: registration, footage: nodeFootage, logger: logger)
        try await ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
