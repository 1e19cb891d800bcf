import Foundation
import Glibc
import Logging
import Synchronization
import Testing
import TestSupport
@testable import MediaRelay
@testable import Streams
import VigilProtocol

/// The links' fan-out with a real camera (an H.264 file made by ffmpeg, played in real time) and
/// players at the other end of real sockets: one mux per camera, every player a whole stream.
@Suite("Fan-out to players")
struct FanOutTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-fanout-\(UUID().uuidString)")

    /// A camera playing a 4 s file in a loop (640×360, 25 fps, a keyframe a second, 2 Mbit/s), once it is live.
    func liveCamera() async throws -> CameraFeed {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("camera.ts").path
        try ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "4", "-c:v", "libx264", "-g", "25", "-b:v", "2M",
                    "-x264-params", "scenecut=0", "-pix_fmt", "yuv420p", "-f", "mpegts", path])
        var configuration = CameraFeed.Configuration()
        configuration.loopFiles = true
        let feed = CameraFeed(camera: "c1", url: path, configuration: configuration) { _, _ in }
        feed.start()
        let deadline = ContinuousClock.now + .seconds(20)
        while feed.video == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try #require(feed.video != nil, "the camera is live")
        return feed
    }

    /// Runs `body` with the live camera and a running fan-out, then stops both and removes the files.
    func withLiveCamera(limits: FanOut.Limits = FanOut.Limits(), _ body: (CameraFeed, FanOut) async throws -> Void) async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let feed = try await liveCamera()
        defer { feed.stop() }
        let fanOut = try FanOut(limits: limits, logger: Logger(label: "test"))
        fanOut.start()
        defer { fanOut.stop() }
        try await body(feed, fanOut)
    }

    /// A connected pair of sockets: the player's end, and the end handed to the fan-out.
    func socketPair() throws -> (player: Int32, relay: Int32) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { throw TestSetupFailure("socketpair: \(errno)") }
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        return (ends[0], ends[1])
    }

    /// A connected loopback TCP pair: the player's end (non-blocking, its receive buffer set
    /// before it connects when asked), and the end handed to the fan-out.
    func tcpPair(receiveBuffer: Int32? = nil) throws -> (player: Int32, relay: Int32) {
        let (listener, port) = try loopbackSocket(listening: true)
        defer { close(listener) }
        let player = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var bytes = receiveBuffer { setsockopt(player, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size)) }
        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(player, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        let relay = accept(listener, nil, nil)
        guard connected, relay >= 0 else { throw TestSetupFailure("connect: \(errno)") }
        _ = fcntl(player, F_SETFL, fcntl(player, F_GETFL) | O_NONBLOCK)
        return (player, relay)
    }

    /// Reads what waits on a non-blocking socket, up to `limit` bytes.
    func readAvailable(_ socket: Int32, limit: Int = .max) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let count = read(socket, &buffer, min(buffer.count, limit - bytes.count))
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return bytes
    }

    @Test func threeHundredPlayersOfOneCameraEachGetAWholeStreamFromAKeyframe() async throws {
        // Wholeness is the subject here, not lateness: a loaded machine (the whole suite at once)
        // may leave these 300 sockets unread for more than a second, which would move them on.
        // For the same reason a player is not cut off as stalled here.
        var limits = FanOut.Limits()
        limits.maximumLateness = .seconds(60)
        limits.stallTimeout = .seconds(60)
        try await withLiveCamera(limits: limits) { feed, fanOut in try await threeHundredPlayers(feed, fanOut) }
    }

    private func threeHundredPlayers(_ feed: CameraFeed, _ fanOut: FanOut) async throws {
        let left = Mutex<[String]>([])
        var players: [(socket: Int32, bytes: [UInt8])] = []
        for _ in 0..<300 {
            let (player, relay) = try socketPair()
            fanOut.play(fanOut.newPlayer(), on: relay, feed: feed, kind: .transportStream) { reason in left.withLock { $0.append(reason) } }
            players.append((player, []))
        }
        // Each reads until it has its first 256 KiB (a few seconds of the camera): a loaded
        // machine's readers may take a while (and a player that falls behind is paced: what it
        // is given follows what it takes), so the bound is on bytes, within a generous time.
        let enough = 256 * 1_024 / 188 * 188
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, players.contains(where: { $0.bytes.count < enough }) {
            // Every player is read, those with enough too: one left unread would be cut off as stalled.
            for index in players.indices { players[index].bytes += readAvailable(players[index].socket) }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(fanOut.statistics.players == 300 && fanOut.statistics.cameras == 1, "one camera muxed once: \(fanOut.statistics)")
        for (index, player) in players.enumerated() {
            // The first 256 KiB (a few seconds) of each: parsing all of it, 300 times, takes a debug build minutes.
            var stream = TransportStreamScanner()
            stream.append(player.bytes.prefix(enough))
            #expect(stream.isWhole, "player \(index): \(player.bytes.count) bytes, every packet in sync")
            #expect(stream.startsWithTablesAndAKeyframe, "player \(index) starts where a decoder can")
            #expect(stream.pictures.count >= 10, "player \(index) got \(stream.pictures.count) pictures in its first 256 KiB")
        }
        // The players hang up: each is told, and the camera is left.
        for player in players { close(player.socket) }
        let hungUp = ContinuousClock.now + .seconds(5)
        while left.withLock({ $0.count }) < 300, ContinuousClock.now < hungUp { try await Task.sleep(for: .milliseconds(20)) }
        #expect(left.withLock { $0.count } == 300 && left.withLock { $0.allSatisfy { $0 == "the player left" } }, "\(Set(left.withLock { $0 }))")
        #expect(fanOut.statistics.players == 0 && fanOut.statistics.cameras == 0)
    }

    /// A player reading at a fifth of the stream's rate, beside one that keeps up: the slow one
    /// is kept near live (moved to keyframes, its drops counted), the fast one loses nothing.
    /// Both are read by a thread of their own that waits in `poll`, so the fast one keeps up
    /// however busy the test's own tasks are; the slow one's pace follows the fast one's bytes.
    @Test func aSlowPlayerIsKeptNearLiveAndAFastOneLosesNothing() async throws {
        try await withLiveCamera { feed, fanOut in
            try await slowAndFast(feed, fanOut, fast: try socketPair(), slow: try socketPair(), bound: 2)
        }
    }

    /// The same over loopback TCP, the slow player with a small receive buffer (as a slow
    /// device has): what its kernel acknowledged but its reader has not taken is out of the
    /// relay's sight but for the window it advertises. The bound allows the first burst, which
    /// the kernels take at once before the relay knows the player is slow (seconds of this
    /// small test camera at a fifth of its rate); `vigil bench relay` measures the figure on a
    /// 4 Mbit/s camera.
    @Test func aSlowPlayerOverTCPIsKeptNearLive() async throws {
        try await withLiveCamera { feed, fanOut in
            try await slowAndFast(feed, fanOut, fast: try tcpPair(), slow: try tcpPair(receiveBuffer: 32 * 1024), bound: 3)
        }
    }

    private func slowAndFast(
        _ feed: CameraFeed, _ fanOut: FanOut, fast: (player: Int32, relay: Int32), slow: (player: Int32, relay: Int32), bound: Double
    ) async throws {
        fanOut.play(fanOut.newPlayer(), on: fast.relay, feed: feed, kind: .transportStream) { _ in }
        let slowPlayer = fanOut.newPlayer()
        fanOut.play(slowPlayer, on: slow.relay, feed: feed, kind: .transportStream) { _ in }
        let readers = PacedReaders(fast: fast.player, slow: slow.player, slowShare: 5)
        try await offThePool { readers.run(for: .seconds(8)) }
        let fastPictures = readers.fastStream.pictures.map(\.decodingTime)
        #expect(fastPictures.count >= 150, "8 s at 25 fps: \(fastPictures.count)")
        let steps = Set(zip(fastPictures, fastPictures.dropFirst()).map { $1 - $0 })
        #expect(steps == [3_600], "the fast player lost no picture: steps of \(steps)")
        let afterTheFirstSeconds = readers.lateness.filter { $0.at > .seconds(2) }.map(\.seconds)
        #expect(!afterTheFirstSeconds.isEmpty)
        // A second at most (the relay also weighs what the socket holds at the reader's pace),
        // plus a loaded machine's pauses; unbounded, it would fall 0.8 s further behind every second.
        #expect(afterTheFirstSeconds.allSatisfy { $0 <= bound }, "behind live by at most \(afterTheFirstSeconds.max() ?? -1) s")
        #expect(fanOut.statistics.droppedChunks > 50, "what the slow player could not take is counted: \(fanOut.statistics)")
        #expect(readers.slowStream.isWhole, "moved to keyframes, never cut inside a packet")
        // Ended by the relay: its socket is closed.
        fanOut.end(slowPlayer)
        let closed = ContinuousClock.now + .seconds(5)
        var hungUp = false
        while !hungUp, ContinuousClock.now < closed {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while case let count = read(slow.player, &buffer, buffer.count), count >= 0 {
                if count == 0 { hungUp = true; break }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(hungUp, "an ended player's connection is closed")
        close(fast.player)
        close(slow.player)
    }

    /// Sealed players: the camera's MPEG-TS sealed once (the same bytes for every player), a new
    /// key for what follows a replacement, and a player joining after it starts at the newest
    /// keyframe sealed with the new key; the old key opens nothing sealed after.
    @Test func sealedPlayersShareTheSameBytesAndAReplacedKeySealsWhatFollows() async throws {
        try await withLiveCamera { feed, fanOut in try await sealedPlayers(feed, fanOut) }
    }

    private func sealedPlayers(_ feed: CameraFeed, _ fanOut: FanOut) async throws {
        let first = ContentKey.random(id: 1), second = ContentKey.random(id: 2)
        let early = try socketPair()
        fanOut.play(fanOut.newPlayer(), on: early.relay, feed: feed, kind: .sealed, key: first) { _ in }
        // Each player's frames, read as their bytes come (not parsed again from the start each
        // turn: on a loaded machine that grew until the reading fell behind the stream).
        var (earlyReader, lateReader) = (SealedFrame.Reader(), SealedFrame.Reader())
        var (earlyFrames, lateFrames): ([[UInt8]], [[UInt8]]) = ([], [])
        func take(_ bytes: [UInt8], into reader: inout SealedFrame.Reader, _ frames: inout [[UInt8]]) throws {
            reader.append(bytes)
            while let frame = try reader.next() { frames.append(frame) }
        }
        try take(try await readFor(.seconds(1.5), early.player), into: &earlyReader, &earlyFrames)
        fanOut.rekey(feed, with: second)
        let late = try socketPair()
        fanOut.play(fanOut.newPlayer(), on: late.relay, feed: feed, kind: .sealed, key: second) { _ in }
        // Both read until they have live frames in common (a loaded machine may take a while: 15 s
        // were not enough once while the cluster tests ran three coordinators beside).
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline {
            var earlyBytes: [UInt8] = []
            let lateBytes = try await readFor(.milliseconds(500), late.player, alongside: early.player, into: &earlyBytes)
            try take(earlyBytes, into: &earlyReader, &earlyFrames)
            try take(lateBytes, into: &lateReader, &lateFrames)
            if commonFrames(earlyFrames, lateFrames).count >= 10 { break }
        }
        let opened = try earlyFrames.map { try SealedFrame.open($0, keys: [1: first, 2: second]) }
        #expect(opened.first?.keyID == 1 && opened.last?.keyID == 2, "\(opened.map(\.keyID))")
        #expect(opened.map(\.keyID) == opened.map(\.keyID).sorted(), "one replacement: the old key's frames, then the new one's")
        var earlyStream = TransportStreamScanner()
        for frame in opened { earlyStream.append(frame.transportStream) }
        #expect(earlyStream.isWhole && earlyStream.startsWithTablesAndAKeyframe, "a replacement does not cut the stream")

        // The late player never sees the first key: it starts at the newest keyframe, sealed anew.
        let lateOpened = try lateFrames.map { try SealedFrame.open($0, keys: [2: second]) }
        #expect(!lateOpened.isEmpty && lateOpened.allSatisfy { $0.keyID == 2 } && lateOpened.first?.startsAtKeyframe == true)
        var lateStream = TransportStreamScanner()
        for frame in lateOpened { lateStream.append(frame.transportStream) }
        #expect(lateStream.isWhole && lateStream.startsWithTablesAndAKeyframe && lateStream.pictures.count >= 10)
        // Sealed once: a live frame both players got (the same key and counter) is the same bytes.
        let shared = commonFrames(earlyFrames, lateFrames)
        #expect(shared.count >= 10 && shared.allSatisfy { $0.early == $0.late }, "\(shared.count) frames in common")
        // The first key opens none of the frames sealed with the second.
        for frame in lateFrames.prefix(20) {
            var relabelled = frame
            relabelled[4..<8] = [0, 0, 0, 1]
            #expect(throws: SealedFrame.Failure.self) { try SealedFrame.open(relabelled, keys: [1: first]) }
        }
        close(early.player)
        close(late.player)
    }

    /// What a non-blocking socket receives during `duration`, and what `other` receives meanwhile.
    /// Browsers of a camera that changes resolution (two GOPs at 320×240, then 640×360, looped):
    /// WebSocket binary messages, the first an initialization segment, every keyframe's fragment
    /// after one, and after the change an initialization segment of the new size; a player that
    /// joins later starts at a keyframe with the segment in force.
    @Test func browsersGetFragmentsWithTheInitializationSegmentInForceAtEveryKeyframe() async throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try makeResizingStream(in: folder)
        var configuration = CameraFeed.Configuration()
        configuration.loopFiles = true
        let feed = CameraFeed(camera: "c2", url: path.path, configuration: configuration) { _, _ in }
        feed.start()
        defer { feed.stop() }
        let deadline = ContinuousClock.now + .seconds(20)
        while feed.video == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        // A reader descheduled for seconds (the suite's busiest minute, on two cores) is not cut
        // off as stalled: this test is about what browsers receive, not about stalls.
        var limits = FanOut.Limits()
        limits.stallTimeout = .seconds(60)
        let fanOut = try FanOut(limits: limits, logger: Logger(label: "test"))
        fanOut.start()
        defer { fanOut.stop() }

        let first = try socketPair()
        fanOut.play(fanOut.newPlayer(), on: first.relay, feed: feed, kind: .browser) { _ in }
        // Read until what is looked for came (generous bounds: the suite runs beside heavier tests).
        let early = try await readUntil(first.player, within: .seconds(30)) { bytes in
            Set(((try? webSocketMessages(bytes)) ?? []).filter(isInitialization).compactMap(trackWidth)).count == 2
        }
        let second = try socketPair()
        fanOut.play(fanOut.newPlayer(), on: second.relay, feed: feed, kind: .browser) { _ in }
        let late = try await readUntil(second.player, within: .seconds(30)) { ((try? webSocketMessages($0)) ?? []).count >= 3 }
        close(first.player)
        close(second.player)

        for messages in [try webSocketMessages(early), try webSocketMessages(late)] {
            #expect(messages.first.map(isInitialization) == true, "a player starts with the initialization segment")
            // Each initialization segment is followed by a keyframe's fragment; the rest are fragments.
            #expect(messages.allSatisfy { isInitialization($0) || boxType($0) == "moof" })
        }
        // Both sizes came, in initialization segments (tkhd carries the width in 16.16 fixed point).
        let sizes = Set(try webSocketMessages(early).filter(isInitialization).compactMap(trackWidth))
        #expect(sizes == [320, 640], "\(sizes)")
    }

    /// What `socket` gives until `done` says it has what it needs, or `within` ran out. The
    /// socket is read every 10 ms, `done` asked at most every 100 ms and only of new bytes: it
    /// parses everything read so far, which asked at every read fell behind the stream on a
    /// loaded machine until the fan-out dropped the player as stalled.
    func readUntil(_ socket: Int32, within: Duration, done: ([UInt8]) -> Bool) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        let deadline = ContinuousClock.now + within
        var asked = (at: ContinuousClock.now, count: -1)
        while ContinuousClock.now < deadline {
            if bytes.count != asked.count, ContinuousClock.now - asked.at >= .milliseconds(100) {
                asked = (ContinuousClock.now, bytes.count)
                if done(bytes) { break }
            }
            bytes += readAvailable(socket)
            try await Task.sleep(for: .milliseconds(10))
        }
        return bytes
    }

    func boxType(_ message: [UInt8]) -> String { message.count >= 8 ? String(decoding: message[4..<8], as: UTF8.self) : "" }

    func isInitialization(_ message: [UInt8]) -> Bool { boxType(message) == "ftyp" }

    /// The track's width in an initialization segment, from its `tkhd` box (version 0).
    func trackWidth(_ message: [UInt8]) -> Int? {
        guard let at = (0..<max(0, message.count - 4)).first(where: { message[$0..<$0 + 4] == Array("tkhd".utf8)[...] }) else { return nil }
        let width = at + 4 + 76  // after version, flags, times, ids, layer, volume and matrix
        guard width + 4 <= message.count else { return nil }
        return message[width..<width + 2].reduce(0) { $0 << 8 | Int($1) }
    }

    /// The server's unmasked binary messages in `bytes` (RFC 6455 §5.2); a message cut at the end is left out.
    func webSocketMessages(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var messages: [[UInt8]] = [], offset = 0
        while offset + 2 <= bytes.count {
            #expect(bytes[offset] == 0x82 && bytes[offset + 1] & 0x80 == 0, "a final, unmasked binary frame")
            var length = Int(bytes[offset + 1] & 0x7F), header = 2
            if length == 126 { (length, header) = (bytes[offset + 2..<offset + 4].reduce(0) { $0 << 8 | Int($1) }, 4) }
            if length == 127 { (length, header) = (bytes[offset + 2..<offset + 10].reduce(0) { $0 << 8 | Int($1) }, 10) }
            guard offset + header + length <= bytes.count else { break }
            messages.append(Array(bytes[offset + header..<offset + header + length]))
            offset += header + length
        }
        return messages
    }

    func readFor(_ duration: Duration, _ socket: Int32, alongside other: Int32? = nil, into otherBytes: inout [UInt8]) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            bytes += readAvailable(socket)
            if let other { otherBytes += readAvailable(other) }
            try await Task.sleep(for: .milliseconds(10))
        }
        return bytes
    }

    func readFor(_ duration: Duration, _ socket: Int32) async throws -> [UInt8] {
        var unused: [UInt8] = []
        return try await readFor(duration, socket, into: &unused)
    }

    /// The frames two players got under the same key and counter.
    func commonFrames(_ early: [[UInt8]], _ late: [[UInt8]]) -> [(early: [UInt8], late: [UInt8])] {
        let earlyByPosition = Dictionary(early.map { (Array($0[4..<16]), $0) }, uniquingKeysWith: { first, _ in first })
        return late.compactMap { frame in earlyByPosition[Array(frame[4..<16])].map { ($0, frame) } }
    }

    func frames(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var reader = SealedFrame.Reader()
        reader.append(bytes)
        var frames: [[UInt8]] = []
        while let frame = try reader.next() { frames.append(frame) }
        return frames
    }
}

/// Two players' ends read by one thread waiting in `poll`: the fast one drained as bytes come,
/// the slow one allowed `1/slowShare` of what the fast one got; how far behind live each picture
/// the slow one got was, when it got it (the fast one is live).
final class PacedReaders: @unchecked Sendable {  // used by one thread at a time: run, then the test
    let fast: Int32, slow: Int32, slowShare: Int
    var fastStream = TransportStreamScanner(), slowStream = TransportStreamScanner()
    var lateness: [(at: Duration, seconds: Double)] = []

    init(fast: Int32, slow: Int32, slowShare: Int) {
        (self.fast, self.slow, self.slowShare) = (fast, slow, slowShare)
    }

    func run(for duration: Duration) {
        var fastBytes = 0, slowBytes = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let start = ContinuousClock.now
        var lastSlowRead = start
        while ContinuousClock.now - start < duration {
            var ends = [pollfd(fd: fast, events: Int16(POLLIN), revents: 0)]
            _ = poll(&ends, 1, 20)
            while case let count = read(fast, &buffer, buffer.count), count > 0 {
                fastBytes += count
                fastStream.append(Array(buffer[0..<count]))
            }
            // The slow player reads in steps, as a slow player does, every 50 ms.
            guard ContinuousClock.now - lastSlowRead >= .milliseconds(50) else { continue }
            lastSlowRead = .now
            let allowed = max(0, fastBytes / slowShare - slowBytes)
            guard allowed > 0 else { continue }
            let count = read(slow, &buffer, min(buffer.count, allowed))
            guard count > 0 else { continue }
            slowBytes += count
            let seenBefore = slowStream.pictures.count
            slowStream.append(Array(buffer[0..<count]))
            if let live = fastStream.pictures.last?.decodingTime {
                for picture in slowStream.pictures[seenBefore...] {
                    lateness.append((ContinuousClock.now - start, Double(live - picture.decodingTime) / 90_000))
                }
            }
        }
    }
}

/// When a player's bytes are written (``FanOut/Limits/writeCoalescing``), decided on made-up
/// arrival times: the policy itself, which a real camera on a loaded machine would blur.
@Suite("Write coalescing")
struct WriteCoalescingTests {
    let limits = FanOut.Limits()

    /// A player on one end of a socket pair (the other end is never read: nothing is written here).
    func player() throws -> (PlayerQueue, close: () -> Void) {
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { throw TestSetupFailure("socketpair: \(errno)") }
        let key = ChannelKey(feed: ObjectIdentifier(FanOut.self), kind: .transportStream)
        let queue = PlayerQueue(number: 1, socket: ends[1], channel: key, onLeave: { _ in }, now: .now)
        return (queue, { ends.forEach { close($0) } })
    }

    func chunk(keyframe: Bool = false) -> Chunk { Chunk([UInt8](repeating: 0x47, count: 188), startsAtKeyframe: keyframe) }

    @Test func aSecondFrameWithinTheWindowGoesOutWithTheFirst() throws {
        let (queue, closeSockets) = try player()
        defer { closeSockets() }
        let start = ContinuousClock.now
        // A joiner's first bytes go at once.
        _ = queue.offer(chunk(keyframe: true), now: start, limits: limits)
        queue.scheduleWrite(now: start, gathering: true, limits: limits)
        #expect(queue.writeDue <= start)
        queue.consume(queue.pendingBytes)
        // The next frame waits for one more, at most the window; the one after goes with it at once.
        let second = start + .milliseconds(40)
        _ = queue.offer(chunk(), now: second, limits: limits)
        queue.scheduleWrite(now: second, gathering: true, limits: limits)
        #expect(queue.writeDue == second + limits.writeCoalescing)
        let third = second + .milliseconds(40)
        _ = queue.offer(chunk(), now: third, limits: limits)
        queue.scheduleWrite(now: third, gathering: true, limits: limits)
        #expect(queue.writeDue == third)
        #expect(queue.pendingBytes == 2 * 188)
        queue.consume(queue.pendingBytes)
        // Written, the next frame waits again; a camera whose frames come far apart does not.
        let fourth = third + .milliseconds(40)
        _ = queue.offer(chunk(), now: fourth, limits: limits)
        queue.scheduleWrite(now: fourth, gathering: true, limits: limits)
        #expect(queue.writeDue == fourth + limits.writeCoalescing)
        queue.consume(queue.pendingBytes)
        let fifth = fourth + .milliseconds(200)
        _ = queue.offer(chunk(), now: fifth, limits: limits)
        queue.scheduleWrite(now: fifth, gathering: false, limits: limits)
        #expect(queue.writeDue <= fifth)
    }

    @Test func bytesLeftFromAnEarlierTurnAreNotHeldBack() throws {
        let (queue, closeSockets) = try player()
        defer { closeSockets() }
        let start = ContinuousClock.now
        _ = queue.offer(chunk(keyframe: true), now: start, limits: limits)
        queue.consume(100)  // part of it written: the socket was full
        let next = start + .milliseconds(40)
        _ = queue.offer(chunk(), now: next, limits: limits)
        queue.scheduleWrite(now: next, gathering: true, limits: limits)
        #expect(queue.writeDue <= next)
    }

    @Test func aCameraGathersOnlyWhenItsFramesComeWithinTheWindow() {
        var frames = ArrivalInterval()
        let start = ContinuousClock.now
        #expect(!frames.comeWithin(.milliseconds(50)), "nothing known yet: no waiting")
        for index in 0..<5 { frames.note(start + .milliseconds(40) * index) }
        #expect(frames.comeWithin(.milliseconds(50)), "25 frames a second")
        var slow = ArrivalInterval()
        for index in 0..<5 { slow.note(start + .milliseconds(80) * index) }
        #expect(!slow.comeWithin(.milliseconds(50)), "12.5 frames a second: nothing to gather")
    }
}

