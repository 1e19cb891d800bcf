import Bus
import Foundation
import VigilProtocol

/// Vigil's side of `vigil bench relay`: `vigil serve` with one more camera (the bench's stream,
/// a looped file at the edge of the Forêt de Soignes, where no fixture camera is), an incident
/// on it, and a named operator of its owner who opens N links (each decided, justified and
/// audited like any view).
final class VigilLinks {
    private let server: BenchServer
    private let camera = "pz5342-bench-relay"
    private let justification: WireJustification
    private let client: BusClient
    /// The links' views, to be closed once measured.
    private var linkViews: [String] = []
    var pid: Int32 { server.process.processIdentifier }

    init(vigil: String, stream: String) throws {
        let camera = self.camera
        // No recording: the relay's cost alone.
        server = try BenchServer(vigil: vigil, name: "relay", arguments: ["--no-recording"]) { server in
            let registry = server.data.appendingPathComponent("bench-camera.csv")
            try """
                id,owner,kind,place_type,lat,lon,heading_deg,fov_deg,range_m,stream,confidentiality,tags
                \(camera),pz-5342,street,square,50.8000,4.4100,,,40,\(stream),public,

                """.write(to: registry, atomically: true, encoding: .utf8)
            try server.run(["cameras", "import", registry.path])
        }
        try server.run(["user", "add", "bench.operator", "--name", "Bench", "--badge", "B-2", "--role", "operator", "--agency", "pz-5342"])
        let opened = try server.run(["incident", "open", "--kind", "public-order", "--at", "50.8000,4.4100", "--radius", "30", "--agency", "pz-5342", "--json"])
        guard let reply = try JSONSerialization.jsonObject(with: opened) as? [String: Any],
              let incident = (reply["incident"] as? [String: Any])?["id"] as? Int,
              (reply["cameras"] as? [[String: Any]])?.contains(where: { $0["id"] as? String == camera }) == true
        else { throw BenchSetupFailure("the bench's incident did not select its camera") }
        justification = WireJustification(reason: "public-order", text: "vigil bench relay", incident: Int64(incident))
        client = try Self.mediaClient(server)
    }

    deinit {
        client.close()
    }

    /// Ends the links' views (else they would end 30 s after their players left, during the
    /// next measurement), and gives the server a moment to record it.
    func closeLinks() throws {
        for view in linkViews { _ = try client.request("feed.close", body: ViewStopBody(view: view), as: [String: String].self, timeout: .seconds(10)) }
        linkViews = []
        Thread.sleep(forTimeInterval: 1)
    }

    /// `count` more links, to be played at once (closed by ``closeLinks()``).
    func newLinks(_ count: Int) throws -> [String] {
        let body = FeedOpenBody(camera: camera, justification: justification)
        let links = try (0..<count).map { [client] _ in try client.request("feed.link", body: body, as: FeedLinkResult.self, timeout: .seconds(10)) }
        linkViews += links.map(\.view)
        return links.map(\.url)
    }

    /// One more link, to be played at once (an unplayed link's view ends after 30 s).
    func freshLink() throws -> String {
        try client.request("feed.link", body: FeedOpenBody(camera: camera, justification: justification), as: FeedLinkResult.self, timeout: .seconds(10)).url
    }

    /// `views` sealed views of the camera, each opened (and so the camera's key replaced) in
    /// turn; their streams' addresses. `keys` are the viewers' CURVE connections, taken in turn,
    /// on which the new keys come: they must stay open while the streams are read. (Each join
    /// sends every other view its new key: on one connection for all, the burst would overflow
    /// its queue, as it never does for a real viewer's own.)
    func sealedURLs(views: Int, keys: [BusClient]) throws -> [String] {
        let body = FeedOpenBody(camera: camera, justification: justification, delivery: .sealed)
        var urls: [String] = []
        for index in 0..<views {
            let keys = keys[index % keys.count]
            let id = try keys.send("feed.open", body: body)
            // The reply, among the new keys sent to the views opened before.
            let deadline = ContinuousClock.now + .seconds(10)
            while urls.count < views, ContinuousClock.now < deadline {
                guard let frames = try keys.receiveMessage(timeout: .milliseconds(100)),
                    let reply = try? BusProtocol.decoder.decode(OpenReply.self, from: frames[0]), reply.id == id
                else { continue }
                guard let sealed = reply.result?.sealed else {
                    throw BenchSetupFailure("the relay served no sealed stream: \(String(decoding: frames[0], as: UTF8.self))")
                }
                urls.append(sealed.url)
                break
            }
        }
        guard urls.count == views else { throw BenchSetupFailure("\(views - urls.count) of \(views) sealed views did not open") }
        return urls
    }

    /// A reply to `feed.open` (the messages around it, new keys, are not replies).
    private struct OpenReply: Decodable {
        var id: String?
        var result: FeedOpenResult?
    }

    func newMediaClient() throws -> BusClient {
        try Self.mediaClient(server)
    }

    private static func mediaClient(_ server: BenchServer) throws -> BusClient {
        let media = try server.printed("media")
        return try BusClient(configuration: BusClientConfiguration(
            commandEndpoint: media, eventEndpoint: media, serverPublicKey: try server.printed("server_key"),
            keys: try CurveCertificate.read(server.userKey("bench.operator"))))
    }

    /// `views` views of the camera over the CURVE media endpoint (four clients, so that this
    /// process's decryption spreads over their I/O threads), read as fast as they come.
    func curveFanOutCost(views: Int, seconds: Double = 10) throws -> RelayBenchmark.FanOutCost {
        let clients = try (0..<4).map { _ in try Self.mediaClient(server) }
        defer { clients.forEach { $0.close() } }
        let body = FeedOpenBody(camera: camera, justification: justification)
        var pending = Set<String>()
        for index in 0..<views { pending.insert(try clients[index % clients.count].send("feed.open", body: body)) }
        var bytes = 0
        /// Reads what has come on every client until `deadline`; the payload bytes.
        func drain(until deadline: ContinuousClock.Instant) throws -> Int {
            var received = 0
            while ContinuousClock.now < deadline {
                for client in clients {
                    // (A zero timeout reads nothing: the client polls at least a millisecond.)
                    while let frames = try client.receiveMessage(timeout: .milliseconds(1)) {
                        if frames.count > 1 {
                            received += frames[1].count
                        } else if let reply = try? JSONSerialization.jsonObject(with: frames[0]) as? [String: Any], let id = reply["id"] as? String {
                            if let error = reply["error"] { throw BenchSetupFailure("feed.open refused: \(error)") }
                            pending.remove(id)
                        }
                    }
                }
            }
            return received
        }
        _ = try drain(until: .now + .seconds(3))
        guard pending.isEmpty else { throw BenchSetupFailure("\(pending.count) of \(views) views did not open on the media endpoint") }
        let (cpu0, start) = (ProcessCPU(ofProcess: pid), ContinuousClock.now)
        bytes = try drain(until: .now + .seconds(seconds))
        let (cpu1, elapsed) = (ProcessCPU(ofProcess: pid), (ContinuousClock.now - start) / .seconds(1))
        let gigabits = Double(bytes) * 8 / 1e9
        return RelayBenchmark.FanOutCost(gigabits: gigabits / elapsed, cpuPerGigabit: cpu1.seconds(since: cpu0) / max(gigabits, 1e-9))
    }
}
