import Bus
import Foundation
import Glibc
import Streams
import Synchronization
import VigilProtocol

/// `vigil bench relay`: Vigil's relay beside nginx-rtmp in the same run, on the same H.264
/// stream (1280×720, 25 fps, a keyframe every 2 s, 4 Mbit/s): one camera to N viewers, the CPU
/// each server process spends per Gbit delivered, a late joiner's first keyframe, and how far
/// behind live a viewer reading at a fifth of the stream's rate falls. Vigil is the real `vigil
/// serve` in its own process (links over HTTP, sealed views, and views over its CURVE media endpoint); nginx
/// is Debian's with `libnginx-mod-rtmp`, fed by ffmpeg. The viewers are this process's, the
/// same minimal readers for both.
public struct RelayBenchmark {
    let vigil: String
    let ffmpeg: String
    let nginx: NginxRTMP.Installation?
    let viewers: Int

    public init(vigil: String, ffmpeg: String, viewers: Int) {
        self.vigil = vigil
        self.ffmpeg = ffmpeg
        nginx = NginxRTMP.Installation.find()
        self.viewers = viewers
    }

    /// The camera's stream rate, for the slow viewer's pace.
    static let streamBytesPerSecond = 4_000_000 / 8

    public func run() throws {
        let folder = try makeBenchFolder("relay")
        defer { try? FileManager.default.removeItem(at: folder) }
        let stream = try StreamsBenchmark(ffmpeg: ffmpeg).makeStream(in: folder, name: "camera.ts", size: "1280x720", seconds: 20, bitrate: "4M")
        Measurement.say("vigil bench relay: one 1280x720 H.264 camera (25 fps, a keyframe every 2 s, 4 Mbit/s) to \(viewers) viewers, beside nginx-rtmp")

        let peer = try nginx.map { try NginxRTMP(installation: $0, folder: folder, stream: stream, ffmpeg: ffmpeg) }
        if peer == nil { Measurement.say("  nginx with libnginx-mod-rtmp is not installed (make bench installs it): Vigil's figures only") }
        let links = try VigilLinks(vigil: vigil, stream: stream)

        // CPU per Gbit delivered, N viewers each reading as fast as it can: nginx-rtmp and each
        // of Vigil's deliveries in turn, round after round, so that a ratio compares measurements
        // made within a minute of each other on this shared machine; the medians are printed.
        let keys = try (0..<max(1, viewers / 8)).map { _ in try links.newMediaClient() }
        defer { keys.forEach { $0.close() } }
        let rounds = try (0..<Self.fanOutRounds).map { _ in try fanOutRound(peer: peer, links: links, keys: keys) }
        let curveCost = try links.curveFanOutCost(views: viewers)
        func median(_ figure: (FanOutRound) -> Double?) -> Double? {
            let values = rounds.compactMap(figure).sorted()
            return values.isEmpty ? nil : Measurement.percentile(values, 0.5)
        }
        let rows: [(name: String, figure: (FanOutRound) -> FanOutCost?, note: String?)] = [
            ("nginx-rtmp", \.nginx, nil), ("Vigil HTTP links", \.http, nil), ("Vigil WebSockets (fMP4)", \.browser, nil),
            ("Vigil sealed views", \.sealed, "encrypted once per camera (ChaCha20-Poly1305), keys over CURVE"),
        ]
        for row in rows {
            guard let gigabits = median({ row.figure($0)?.gigabits }), let cost = median({ row.figure($0)?.cpuPerGigabit }) else { continue }
            print(Measurement.row("\(row.name), \(viewers) viewers: delivered", gigabits, unit: "Gb/s", target: nil))
            print(Measurement.row("\(row.name), \(viewers) viewers: CPU per Gbit\(row.name == "nginx-rtmp" ? " (ref.)" : "")", cost, unit: "CPU-s", target: nil, note: row.note))
        }
        print(Measurement.row("Vigil CURVE media endpoint, \(viewers) views: delivered", curveCost.gigabits, unit: "Gb/s", target: nil))
        print(Measurement.row("Vigil CURVE media endpoint, \(viewers) views: CPU per Gbit", curveCost.cpuPerGigabit, unit: "CPU-s", target: nil,
                              note: "encrypted once per view (delivery packets)"))
        if peer != nil {
            let ratios: [(name: String, figure: (FanOutRound) -> FanOutCost?, target: Double)] = [
                ("HTTP", \.http, 0.8), ("WebSocket", \.browser, 0.8), ("encrypted (sealed)", \.sealed, 1.0),
            ]
            for ratio in ratios {
                let perRound = rounds.compactMap { round in round.nginx.flatMap { nginx in ratio.figure(round).map { $0.cpuPerGigabit / nginx.cpuPerGigabit } } }.sorted()
                print(Measurement.row("relay CPU per Gbit, \(ratio.name), N = \(viewers), x nginx-rtmp", Measurement.median(perRound), unit: "x",
                                      target: ratio.target, note: "median of \(perRound.count) rounds: " + Measurement.listed(perRound)))
            }
            if let nginx = median({ $0.nginx?.cpuPerGigabit }) {
                print(Measurement.row("relay CPU per Gbit, encrypted (CURVE per view), N = \(viewers), x nginx-rtmp", curveCost.cpuPerGigabit / nginx, unit: "x", target: nil))
            }
        }

        // A late joiner's first keyframe: from connecting to holding a keyframe picture.
        let nginxJoins = try peer.map { peer in
            try Self.joinTimes(trials: 20) {
                let socket = try RTMPPlayer.play(port: peer.port, app: "live", stream: "camera")
                var reader = RTMPPlayer.ChunkReader()
                return (socket, { reader.append($0).contains(where: \.isKeyframe) })
            }
        }
        let joinLink = try links.freshLink()
        let vigilJoins = try Self.joinTimes(trials: 20) {
            let socket = try HTTPPlayer.get(joinLink)
            var body = HTTPPlayer.Body()
            return (socket, { body.append($0).contains(where: \.isKeyframe) })
        }
        if let nginxJoins {
            print(Measurement.row("nginx-rtmp late joiner's first keyframe, p50 (ref.)", Measurement.percentile(nginxJoins, 0.5), unit: "ms", target: nil))
        }
        print(Measurement.row("Vigil late joiner's first keyframe, p50", Measurement.percentile(vigilJoins, 0.5), unit: "ms", target: nil))
        if let nginxJoins {
            print(Measurement.row("late joiner's first keyframe, x nginx-rtmp", Measurement.percentile(vigilJoins, 0.5) / Measurement.percentile(nginxJoins, 0.5),
                                  unit: "x", target: 0.1))
        }

        // A viewer reading at a fifth of the stream's rate, beside one that keeps up.
        if let peer {
            let lateness = try Self.slowViewerLateness(seconds: 20) { receiveBuffer in
                let socket = try RTMPPlayer.play(port: peer.port, app: "live", stream: "camera", receiveBuffer: receiveBuffer)
                var reader = RTMPPlayer.ChunkReader()
                return (socket, { reader.append($0).map { Double($0.timestamp) / 1_000 } })
            }
            print(Measurement.row("nginx-rtmp slow viewer (1/5 rate): behind live, max (ref.)", lateness, unit: "s", target: nil))
        }
        let (fastLink, slowLink) = (try links.freshLink(), try links.freshLink())
        let lateness = try Self.slowViewerLateness(seconds: 20) { receiveBuffer in
            let socket = try HTTPPlayer.get(receiveBuffer == nil ? fastLink : slowLink, receiveBuffer: receiveBuffer)
            var body = HTTPPlayer.Body()
            return (socket, { body.append($0).map { Double($0.decodingTime) / 90_000 } })
        }
        print(Measurement.row("Vigil slow viewer (1/5 rate): behind live after 2 s, max", lateness, unit: "s", target: 1.0))
    }

    /// Rounds of the fan-out figures (each a few seconds per server and delivery).
    static let fanOutRounds = 3

    /// The fan-out figures of one round, measured one after the other.
    struct FanOutRound {
        var nginx: FanOutCost?
        var http: FanOutCost?
        var browser: FanOutCost?
        var sealed: FanOutCost?
    }

    private func fanOutRound(peer: NginxRTMP?, links: VigilLinks, keys: [BusClient]) throws -> FanOutRound {
        var round = FanOutRound()
        round.nginx = try peer.map { peer in
            try Self.fanOutCost(of: peer.pid) { try (0..<viewers).map { _ in try RTMPPlayer.play(port: peer.port, app: "live", stream: "camera") } }
        }
        round.http = try Self.fanOutCost(of: links.pid) { try links.newLinks(viewers).map { try HTTPPlayer.get($0) } }
        try links.closeLinks()
        // Browsers: the same links as WebSockets of fragmented MP4 (the console's tiles).
        round.browser = try Self.fanOutCost(of: links.pid) { try links.newLinks(viewers).map { try HTTPPlayer.webSocket($0) } }
        try links.closeLinks()
        // Sealed views: the camera encrypted once, the same bytes to every viewer (the readers
        // count the bytes; opening them is the viewers' work, not the relay's).
        round.sealed = try Self.fanOutCost(of: links.pid) { try links.sealedURLs(views: viewers, keys: keys).map { try HTTPPlayer.get($0) } }
        Thread.sleep(forTimeInterval: 1)  // the sealed views end as their players leave
        return round
    }

    /// What the server process `pid` spends while `connect`ed viewers read as fast as they can.
    struct FanOutCost {
        var gigabits: Double
        var cpuPerGigabit: Double
    }

    static func fanOutCost(of pid: Int32, seconds: Double = 6, connect: () throws -> [Int32]) throws -> FanOutCost {
        let readers = PlayerPool(sockets: try connect())
        readers.start()
        defer { readers.stop() }
        Thread.sleep(forTimeInterval: 3)  // every viewer playing, past the joiners' cached GOPs
        let (cpu0, bytes0, start) = (ProcessCPU(ofProcess: pid), readers.bytes, ContinuousClock.now)
        Thread.sleep(forTimeInterval: seconds)
        let (cpu1, bytes1, elapsed) = (ProcessCPU(ofProcess: pid), readers.bytes, (ContinuousClock.now - start) / .seconds(1))
        let gigabits = Double(bytes1 - bytes0) * 8 / 1e9
        return FanOutCost(gigabits: gigabits / elapsed, cpuPerGigabit: cpu1.seconds(since: cpu0) / max(gigabits, 1e-9))
    }

    /// Milliseconds from connecting to the first keyframe, `trials` times at random moments:
    /// `open` connects and returns a reader that says whether the bytes it is handed hold one.
    static func joinTimes(trials: Int, open: () throws -> (Int32, ([UInt8]) -> Bool)) throws -> [Double] {
        var times: [Double] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        for _ in 0..<trials {
            Thread.sleep(forTimeInterval: Double.random(in: 0.2...2.2))
            let start = ContinuousClock.now
            let (socket, holdsKeyframe) = try open()
            defer { close(socket) }
            var waited: Double?
            while waited == nil, ContinuousClock.now - start < .seconds(10) {
                let count = read(socket, &buffer, buffer.count)
                guard count > 0 else { break }
                if holdsKeyframe(Array(buffer[0..<count])) { waited = (ContinuousClock.now - start) / .milliseconds(1) }
            }
            times.append(waited ?? 10_000)
        }
        return times.sorted()
    }

    /// How far behind live (in seconds, the most after the first two) the pictures a viewer
    /// reading at a fifth of the stream's rate gets are, live being what a viewer that keeps up
    /// has. `open` connects a viewer (with a small receive buffer for the slow one, as a slow
    /// device has) and returns a reader of the times of the pictures in the bytes it is handed.
    static func slowViewerLateness(seconds: Double, open: (Int32?) throws -> (Int32, ([UInt8]) -> [Double])) throws -> Double {
        let (fast, fastTimes) = try open(nil)
        let (slow, slowTimes) = try open(32 * 1024)
        defer {
            close(fast)
            close(slow)
        }
        for socket in [fast, slow] { _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK) }
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var live: Double?
        var worst = 0.0
        var slowRead = 0
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(seconds) {
            while case let count = read(fast, &buffer, buffer.count), count > 0 {
                live = fastTimes(Array(buffer[0..<count])).max().map { max(live ?? $0, $0) } ?? live
            }
            let elapsed = (ContinuousClock.now - start) / .seconds(1)
            let allowance = Int(elapsed * Double(streamBytesPerSecond) / 5) - slowRead
            if allowance > 0, case let count = read(slow, &buffer, min(allowance, buffer.count)), count > 0 {
                slowRead += count
                for time in slowTimes(Array(buffer[0..<count])) where elapsed > 2 {
                    if let live { worst = max(worst, live - time) }
                }
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return worst
    }
}

/// Viewers' sockets read as fast as they take, from one thread (poll), counting bytes.
final class PlayerPool: Sendable {
    private let sockets: [Int32]
    private let received = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(sockets: [Int32]) {
        self.sockets = sockets
    }

    var bytes: Int { received.load(ordering: .relaxed) }

    func start() {
        Thread { [self] in
            var polled = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while !stopping.load(ordering: .relaxed) {
                guard poll(&polled, nfds_t(polled.count), 100) > 0 else { continue }
                for index in polled.indices where polled[index].revents != 0 {
                    let count = read(polled[index].fd, &buffer, buffer.count)
                    if count > 0 { received.add(count, ordering: .relaxed) } else { polled[index].events = 0 }
                }
            }
            finished.signal()
        }.start()
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        sockets.forEach { close($0) }
    }
}

/// An HTTP player of a Vigil link: the GET, then MPEG-TS until the connection closes.
enum HTTPPlayer {
    /// A browser's player of a link: the WebSocket handshake on its `live` address, then
    /// fragmented MP4 in binary messages (the reader counts them as bytes).
    static func webSocket(_ url: String) throws -> Int32 {
        guard let parsed = URL(string: url), let port = parsed.port else { throw BenchSetupFailure("not a link: \(url)") }
        let socket = try LoopbackSocket.connect(port: port, receiveBuffer: nil)
        let path = parsed.path.replacingOccurrences(of: "/stream.ts", with: "/live")
        try LoopbackSocket.send(Array("""
            GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dmlnaWwgYmVuY2ggcmVsYXk=\r\nSec-WebSocket-Version: 13\r\n\r\n
            """.utf8), on: socket)
        return socket
    }

    static func get(_ url: String, receiveBuffer: Int32? = nil) throws -> Int32 {
        guard let parsed = URL(string: url), let port = parsed.port else { throw BenchSetupFailure("not a link: \(url)") }
        let socket = try LoopbackSocket.connect(port: port, receiveBuffer: receiveBuffer)
        try LoopbackSocket.send(Array("GET \(parsed.path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), on: socket)
        return socket
    }

    /// The stream after the response's head.
    struct Body {
        private var head: [UInt8] = []
        private var inBody = false
        private var stream = TransportStreamScanner()

        mutating func append(_ bytes: [UInt8]) -> ArraySlice<TransportStreamScanner.Picture> {
            guard !inBody else { return stream.append(bytes) }
            head += bytes
            guard let end = head.indices.dropLast(3).first(where: { head[$0..<$0 + 4].elementsEqual("\r\n\r\n".utf8) }) else { return [] }
            inBody = true
            return stream.append(head[(end + 4)...])
        }
    }
}
