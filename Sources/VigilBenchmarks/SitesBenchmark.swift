import Bus
import Foundation
import Glibc
import VigilProtocol

/// `vigil bench sites`: a coordinator, an origin relay node at the camera owner's site
/// (127.0.1.1) and one relay node at each of three other sites (127.0.2.1, .3.1, .4.1); 100
/// viewers of one camera. First every viewer is served by the origin (they name no site), then
/// they say their site (a third each): the edges pull the camera once each. The kernel's own
/// count (`ss`) of the connections that carry video out of the origin's media port, and of
/// their bytes, is the number of streams leaving the camera's site, both ways in the same run.
public struct SitesBenchmark {
    let vigil: String
    let viewers: Int
    let seconds: Int

    public init(vigil: String, viewers: Int, seconds: Int) {
        self.vigil = vigil
        self.viewers = viewers
        self.seconds = seconds
    }

    static let edgeSites = ["north", "south", "east"]

    /// One way of serving the viewers: the streams and bytes that left the origin while they watched.
    struct Phase {
        var streams: Int
        var mbps: Double
        var firstPackets: [Double]
        var servedBy: [String: Int]
        var failures: [String]
    }

    public func run() throws {
        Measurement.say("vigil bench sites: a coordinator, an origin relay node at the camera owner's site, relay nodes at 3 other sites; \(viewers) viewers of one camera, \(seconds) s each way")
        let folder = try makeBenchFolder("sites")
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try BenchServer(vigil: vigil, name: "sites", arguments: ["--simulate", "--relay-max-streams", "0"])
        // The origin is zone 5339's own node (an owner decides where its cameras are pulled); the edges the crisis centre's.
        for (user, agency, role) in [("pz.officer", "pz-5339", "operator"), ("relay-origin", "pz-5339", "relay")] + Self.edgeSites.map({ ("relay-\($0)", "crisis-centre", "relay") }) {
            try server.run(["user", "add", user, "--name", "N", "--badge", "B-\(user)", "--role", role, "--agency", agency])
        }
        var nodes: [Child] = []
        defer { nodes.forEach { $0.kill() } }
        func startNode(_ name: String, address: String, arguments: [String]) throws -> [String: Any] {
            let node = try Child(vigil, [
                "relay", "--coordinator", try server.printed("command"), "--server-key", server.data.appendingPathComponent("keys/server.key").path,
                "--cert", server.userKey("relay-\(name)").path, "--host", address, "--media-port", "0", "--http-port", "0", "--no-recording",
                "--site", name == "origin" ? "pz-5339-hq" : name,
            ] + arguments, log: folder.appendingPathComponent("\(name).log"))
            nodes.append(node)
            let line = try node.waitForLine(containing: #""relay""#, timeout: 30).line
            return (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
        }
        let origin = try startNode("origin", address: "127.0.1.1", arguments: ["--origin-of", "pz-5339", "--simulate"])
        for (index, site) in Self.edgeSites.enumerated() { _ = try startNode(site, address: "127.0.\(index + 2).1", arguments: []) }
        guard let originMedia = origin["media"] as? String, let originPort = originMedia.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw BenchSetupFailure("the origin node printed no media endpoint")
        }
        let opened = try server.run(["incident", "open", "--kind", "public-order", "--at", "50.8467,4.3525", "--radius", "350", "--agency", "pz-5339", "--json"])
        guard let incident = ((try JSONSerialization.jsonObject(with: opened) as? [String: Any])?["incident"] as? [String: Any])?["id"] as? Int else {
            throw BenchSetupFailure("incident open printed no incident")
        }
        let shown = try server.run(["incident", "show", "\(incident)", "--agency", "pz-5339", "--json"])
        guard let camera = ((try JSONSerialization.jsonObject(with: shown) as? [String: Any])?["cameras"] as? [[String: Any]])?
            .first(where: { $0["owner"] as? String == "pz-5339" })?["id"] as? String
        else { throw BenchSetupFailure("the incident selects no camera of pz-5339") }
        let access = SiteViewer.Access(
            media: try server.printed("media"), serverKey: try CurveCertificate.read(server.data.appendingPathComponent("keys/server.key")).publicKey,
            keys: try CurveCertificate.read(server.userKey("pz.officer")), camera: camera, incident: incident)
        // Without edges first: once viewers said their sites, the edges linger 30 s after them.
        let direct = try phase(access, sites: Array(repeating: nil, count: viewers), originPort: originPort)
        let sites = (0..<viewers).map { Self.edgeSites[$0 % Self.edgeSites.count] }
        let edges = try phase(access, sites: sites, originPort: originPort)

        for (name, phase) in [("every viewer served by the origin", direct), ("viewers at their sites' edges", edges)] {
            let served = phase.servedBy.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            Measurement.say("  \(name): served by \(served); \(phase.failures.count) viewers failed\(phase.failures.first.map { " (\($0))" } ?? "")")
        }
        print(Measurement.row(
            "streams out of the camera's site, \(viewers) viewers", Double(edges.streams), unit: "", target: Double(Self.edgeSites.count),
            note: "connections carrying video out of the origin's media port, counted by ss"))
        print(Measurement.row(
            "  the same viewers, all served by the origin", Double(direct.streams), unit: "", target: nil, note: "same run"))
        print(Measurement.row(
            "video leaving the camera's site, through edges", edges.mbps, unit: "Mbit/s", target: nil,
            note: String(format: "%.1f Mbit/s when the origin serves every viewer", direct.mbps)))
        func median(_ values: [Double]) -> Double { values.isEmpty ? .infinity : values.sorted()[values.count / 2] }
        print(Measurement.row(
            "a viewer's first packet, through an edge, p50", median(edges.firstPackets) * 1000, unit: "ms", target: nil,
            note: String(format: "%.0f ms from the origin; the first viewer at each site waits for its edge's pull", median(direct.firstPackets) * 1000)))
        print(Measurement.row("viewers that got no video", Double(direct.failures.count + edges.failures.count), unit: "", target: 0))
    }

    /// Starts a viewer per entry of `sites` (nil: it names none), waits for their first packets,
    /// then counts for `seconds` what leaves the origin's media port.
    private func phase(_ access: SiteViewer.Access, sites: [String?], originPort: Int) throws -> Phase {
        let viewers = sites.map { SiteViewer(access: access, site: $0) }
        defer { viewers.forEach { $0.stop() } }
        viewers.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, viewers.contains(where: { $0.outcome.firstPacket == nil && $0.outcome.failure == nil }) {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let before = try Self.bytesSent(fromPort: originPort)
        Thread.sleep(forTimeInterval: Double(seconds))
        let after = try Self.bytesSent(fromPort: originPort)
        // A connection that carried at least a second's worth of a small stream in the window.
        let carried = after.map { connection, bytes in bytes - (before[connection] ?? 0) }.filter { $0 > 16 * 1024 }
        let outcomes = viewers.map(\.outcome)
        return Phase(
            streams: carried.count, mbps: Double(carried.reduce(0, +)) * 8 / Double(seconds) / 1e6, firstPackets: outcomes.compactMap(\.firstPacket),
            servedBy: Dictionary(grouping: outcomes.compactMap(\.servedBy), by: { $0 }).mapValues(\.count),
            failures: outcomes.compactMap(\.failure) + outcomes.filter { $0.firstPacket == nil && $0.failure == nil }.map { _ in "no packet in 30 s" })
    }

    /// The bytes each established TCP connection from local `port` has had acknowledged, by peer
    /// (`ss -tin`: the kernel's count, whatever the process thinks it sent).
    static func bytesSent(fromPort port: Int) throws -> [String: Int] {
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        ss.arguments = ["-tinH", "state", "established", "( sport = :\(port) )"]
        let output = Pipe()
        ss.standardOutput = output
        ss.standardError = FileHandle.nullDevice
        do {
            try ss.run()
        } catch {
            throw BenchSetupFailure("ss (iproute2) did not run: \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ss.waitUntilExit()
        // Each connection: a line with its addresses, then an indented one with its counters.
        var sent: [String: Int] = [:]
        var peer: String?
        for line in text.split(separator: "\n") {
            if !line.hasPrefix(" ") && !line.hasPrefix("\t") {
                peer = line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init)
            } else if let peer, let field = line.split(separator: " ").first(where: { $0.hasPrefix("bytes_acked:") }) {
                sent[peer] = Int(field.dropFirst("bytes_acked:".count))
            }
        }
        return sent
    }
}

/// One viewer of the sites benchmark, on a thread of its own: `feed.open` at the coordinator
/// (saying its site, if any), then at the relay node it is sent to, then packets until stopped.
private final class SiteViewer: @unchecked Sendable {
    struct Access {
        var media: String
        var serverKey: String
        var keys: CurveKeyPair
        var camera: String
        var incident: Int
    }

    struct Outcome {
        var servedBy: String?
        var firstPacket: Double?
        var failure: String?
    }

    private let access: Access
    private let site: String?
    private let lock = NSLock()
    private var current = Outcome()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    init(access: Access, site: String?) {
        self.access = access
        self.site = site
    }

    var outcome: Outcome { lock.withLock { current } }

    func start() {
        let thread = Thread { [self] in
            do {
                try watch()
            } catch {
                lock.withLock { current.failure = "\(error)" }
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() {
        lock.withLock { stopping = true }
        finished.wait()
    }

    private func client(_ media: String, serverKey: String) throws -> BusClient {
        try BusClient(configuration: BusClientConfiguration(commandEndpoint: media, eventEndpoint: media, serverPublicKey: serverKey, keys: access.keys))
    }

    private func watch() throws {
        let started = Date()
        let justification = WireJustification(reason: "public-order", text: "Watching from a site", incident: Int64(access.incident))
        var bus = try client(access.media, serverKey: access.serverKey)
        defer { bus.close() }
        var opened = try bus.request(
            .feedOpen, body: FeedOpenBody(camera: access.camera, justification: justification, delivery: .packets, site: site), as: FeedOpenResult.self,
            timeout: .seconds(30))
        guard let redirect = opened.redirect else { throw BenchSetupFailure("the coordinator served the camera itself") }
        bus.close()
        bus = try client(redirect.media, serverKey: redirect.serverKey)
        opened = try bus.request(.feedOpen, body: FeedOpenBody(camera: access.camera, ticket: redirect.ticket, delivery: .packets), as: FeedOpenResult.self, timeout: .seconds(30))
        lock.withLock { current.servedBy = redirect.relay }
        while !lock.withLock({ stopping }) {
            guard let frames = try bus.receiveMessage(timeout: .milliseconds(200)), frames.count == 2 else { continue }
            lock.withLock { if current.firstPacket == nil { current.firstPacket = Date().timeIntervalSince(started) } }
        }
        _ = try? bus.send(.feedClose, body: ViewStopBody(view: opened.view))
    }
}
