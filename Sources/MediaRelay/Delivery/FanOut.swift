import CLinuxEvents
import Foundation
import Glibc
import Logging
import Streams
import Synchronization
import VigilProtocol

/// Writes each camera's bytes, made once, to every player of the camera, from one thread.
///
/// A camera's packets are taken from one subscription of its feed and made into chunks once
/// (``ChunkKind``: MPEG-TS for links), whatever the number of players; every player's queue
/// holds the same chunks (no copy per player), and the thread sends them from the camera's
/// memory file with `sendfile` (``ChunkFile``: the kernel takes the file's pages, no copy per
/// player either), or where there is none with `sendmsg` (gathered, as `writev` would), on
/// non-blocking sockets, waiting on epoll for those that are full. No thread per player, and
/// no cap on players but the process's descriptors.
///
/// A player behind live (the chunk its reader takes older than `maximumLateness`, or the newest
/// one bound to be by the time its reader gets to it, at its pace; or more than
/// `maximumQueuedBytes` waiting) is moved to the next keyframe: what it had queued is dropped,
/// but for the rest of a chunk already begun (its stream stays whole), the drops are counted,
/// and its socket buffer shrinks so that its backlog waits where it can be dropped. A player
/// that joins starts at the newest keyframe (the chunks since it are kept per camera, up to
/// `maximumJoinBytes`). A player that takes nothing for `stallTimeout` is
/// cut off.
public final class FanOut: Sendable {
    /// A player of a camera (``newPlayer()``, then ``play(_:on:feed:kind:onLeave:)``).
    public struct Player: Hashable, Sendable {
        let number: UInt64
    }

    public struct Limits: Sendable {
        public var maximumLateness = FeedSubscriber.defaultMaximumLateness
        /// About 2 s of a 16 Mbit/s camera.
        public var maximumQueuedBytes = 4 * 1024 * 1024
        /// What is kept of a camera since its newest keyframe, for players that join.
        public var maximumJoinBytes = 16 * 1024 * 1024
        public var stallTimeout = Duration.seconds(5)
        /// Each player's socket buffer (the kernel doubles it): about an eighth of a second of a
        /// 4 Mbit/s camera, so that a slow player's backlog waits in its queue, which can be
        /// dropped, not in the kernel's, which nothing can take back (a player that fell behind
        /// once keeps the kernel's least from then on).
        public var socketBufferBytes: Int32 = 32 * 1024
        /// How long a player's bytes may wait for the camera's next ones, so that one write
        /// carries both. On TCP most of a write's cost is per call and per segment, not per byte
        /// (on loopback half the relay's CPU at 25 frames a second), so writing frames in pairs
        /// costs about a quarter less. A player's first bytes go at once, and so do a camera's
        /// whose frames come further apart than this (nothing to gather): at 25 frames a second
        /// a frame waits 20 ms on average, 40 at most. Zero writes each frame as it comes.
        public var writeCoalescing = Duration.milliseconds(50)

        public init() {}
    }

    /// Counts since start.
    public struct Statistics: Sendable, Equatable {
        public var players = 0
        public var cameras = 0
        /// Chunks players lost to their own slowness.
        public var droppedChunks = 0
        public var bytesWritten = 0
    }

    enum Command {
        case add(Player, socket: Int32, feed: CameraFeed, kind: ChunkKind, key: ContentKey?, onLeave: @Sendable (String) -> Void)
        case remove(Player)
        case rekey(CameraFeed, ContentKey)
    }

    let limits: Limits
    private let logger: Logger
    private let commands = Mutex<[Command]>([])
    private let nextPlayer = Atomic<UInt64>(1)
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let counts = Mutex(Statistics())
    /// Wakes the thread: a command, or packets waiting on a camera's subscription.
    private let wake: Int32
    private let epoll: Int32

    public init(limits: Limits = Limits(), logger: Logger) throws(MediaError) {
        self.limits = limits
        self.logger = logger
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard epoll >= 0, wake >= 0 else {
            if epoll >= 0 { close(epoll) }
            throw MediaError(.deliveryFailed, message: "epoll: \(String(cString: strerror(errno)))")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0  // players are numbered from 1
        epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event)
        (self.epoll, self.wake) = (epoll, wake)
    }

    deinit {
        close(wake)
        close(epoll)
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            // sendfile has no MSG_NOSIGNAL: on this thread a player gone is an EPIPE, never a
            // SIGPIPE for whatever process embeds the relay.
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            Loop(fanOut: self).run()
            finished.signal()
        }
        thread.name = "vigil.fanout"
        thread.start()
    }

    /// Ends every player and the thread.
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed), started.load(ordering: .relaxed) else { return }
        wakeUp()
        finished.wait()
    }

    /// A name for a player to come, so that it may be recorded before it plays.
    public func newPlayer() -> Player {
        Player(number: nextPlayer.add(1, ordering: .relaxed).oldValue)
    }

    /// Plays `feed`'s camera, made into `kind`, on `socket`, which the fan-out owns from now on
    /// (it closes it when the player ends). `onLeave` is told why when the player leaves by
    /// itself (it hung up, stopped reading, or the feed stopped), on the fan-out's thread, and
    /// must return at once; not when ``end(_:)`` ends it. A sealed camera's first player names
    /// its `key` (later ones follow ``rekey(_:with:)``).
    public func play(
        _ player: Player, on socket: Int32, feed: CameraFeed, kind: ChunkKind, key: ContentKey? = nil, onLeave: @escaping @Sendable (String) -> Void
    ) {
        guard !stopping.load(ordering: .relaxed) else {
            close(socket)
            return
        }
        commands.withLock { $0.append(.add(player, socket: socket, feed: feed, kind: kind, key: key, onLeave: onLeave)) }
        wakeUp()
    }

    /// Ends `player`: its socket is closed; its queue is dropped.
    public func end(_ player: Player) {
        commands.withLock { $0.append(.remove(player)) }
        wakeUp()
    }

    /// Seals `feed`'s camera with `key` from now on (``ChunkKind/sealed``): every chunk made
    /// after this command, and what a player joining later starts with (the chunks since the
    /// newest keyframe, sealed again). Commands are carried out in order, so a player ended
    /// before a new key never gets a chunk sealed with it.
    public func rekey(_ feed: CameraFeed, with key: ContentKey) {
        commands.withLock { $0.append(.rekey(feed, key)) }
        wakeUp()
    }

    public var statistics: Statistics { counts.withLock { $0 } }

    fileprivate func wakeUp() {
        eventfd_write(wake, 1)
    }

    // MARK: The thread

    /// Everything the thread owns: no lock, but for the commands it takes.
    private final class Loop {
        let fanOut: FanOut
        var channels: [ChannelKey: Channel] = [:]
        var players: [UInt64: PlayerQueue] = [:]
        /// Players with bytes waiting whose socket may take more (each once: ``PlayerQueue/isReady``).
        var ready: [PlayerQueue] = []
        /// The cameras distributed in one turn of the loop (a player leaving may remove one meanwhile).
        private var turnChannels: [Channel] = []

        init(fanOut: FanOut) {
            self.fanOut = fanOut
        }

        func run() {
            var events = [epoll_event](repeating: epoll_event(), count: 256)
            var lastSweep = ContinuousClock.now
            var nextWrite: ContinuousClock.Instant?
            while !fanOut.stopping.load(ordering: .relaxed) {
                // Wakes for the next write due, if any comes before the next packet.
                let timeout = nextWrite.map { due in max(0, Int32(((due - .now) / .milliseconds(1)).rounded(.up))) } ?? 100
                let count = epoll_wait(fanOut.epoll, &events, Int32(events.count), min(100, timeout))
                for event in events.prefix(max(0, Int(count))) {
                    let number = event.data.u64
                    if number == 0 {
                        var value: eventfd_t = 0
                        eventfd_read(fanOut.wake, &value)
                        continue
                    }
                    guard let player = players[number] else { continue }
                    if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 {
                        leave(number, reason: "the player left")
                    } else if event.events & EPOLLOUT.rawValue != 0 {
                        player.writable = true
                        markReady(player)
                    }
                }
                for command in fanOut.commands.withLock({ commands in defer { commands.removeAll() }; return commands }) {
                    switch command {
                    case .add(let player, let socket, let feed, let kind, let key, let onLeave):
                        add(player, socket: socket, feed: feed, kind: kind, key: key, onLeave: onLeave)
                    case .remove(let player): remove(player.number)
                    case .rekey(let feed, let key): channels[ChannelKey(feed: ObjectIdentifier(feed), kind: .sealed)]?.rekey(with: key)
                    }
                }
                let now = ContinuousClock.now
                turnChannels.append(contentsOf: channels.values)
                for channel in turnChannels { distribute(channel, now: now) }
                turnChannels.removeAll(keepingCapacity: true)
                var written = 0
                nextWrite = nil
                for player in ready where !player.isGone {
                    if player.writeDue <= now {
                        written += flush(player, now: now)
                    } else {
                        nextWrite = min(nextWrite ?? player.writeDue, player.writeDue)
                    }
                }
                ready.removeAll { player in
                    player.isReady = !player.isGone && player.writable && player.pendingBytes > 0
                    return !player.isReady
                }
                if written > 0 {
                    RelayMetrics.bytesSent.increment(by: written)
                    fanOut.counts.withLock { $0.bytesWritten += written }
                }
                if now - lastSweep > .milliseconds(500) {
                    lastSweep = now
                    for (number, player) in players where player.pendingBytes > 0 && now - player.lastProgress > fanOut.limits.stallTimeout {
                        leave(number, reason: "the player took nothing for \(fanOut.limits.stallTimeout.components.seconds) s")
                    }
                }
            }
            for number in Array(players.keys) { remove(number) }
        }

        private func add(_ player: Player, socket: Int32, feed: CameraFeed, kind: ChunkKind, key: ContentKey?, onLeave: @escaping @Sendable (String) -> Void) {
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            var buffer = fanOut.limits.socketBufferBytes
            setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
            let channelKey = ChannelKey(feed: ObjectIdentifier(feed), kind: kind)
            let channel: Channel
            if let existing = channels[channelKey] {
                channel = existing
            } else {
                let subscription = "fanout/\(kind)/\(UUID().uuidString.prefix(8))"
                let wake = fanOut.wake
                channel = Channel(
                    key: channelKey, feed: feed, maker: kind.maker(for: feed, key: key),
                    subscriber: feed.subscribe(id: subscription, capacity: 1_024, everyKeyframeDecodable: true) { eventfd_write(wake, 1) })
                channels[channelKey] = channel
            }
            let queue = PlayerQueue(number: player.number, socket: socket, channel: channelKey, onLeave: onLeave, now: .now)
            // The newest keyframe on, as if it had just come (it is not late: it came at once).
            if channel.joinable {
                for chunk in channel.sinceKeyframe { queue.append(chunk, at: .now) }
            } else {
                queue.waitingForKeyframe = true
            }
            players[player.number] = queue
            channel.players.append(queue)
            var event = epoll_event()
            event.events = EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            event.data.u64 = player.number
            epoll_ctl(fanOut.epoll, EPOLL_CTL_ADD, socket, &event)
            markReady(queue)
            fanOut.counts.withLock { ($0.players, $0.cameras) = (players.count, channels.count) }
        }

        /// Takes a player out (its socket closed); a camera without players leaves its feed.
        private func remove(_ number: UInt64) {
            guard let player = players.removeValue(forKey: number) else { return }
            player.isGone = true
            close(player.socket)
            if let channel = channels[player.channel] {
                channel.players.removeAll { $0 === player }
                if channel.players.isEmpty {
                    channel.feed.unsubscribe(id: channel.subscriber.id)
                    channels[player.channel] = nil
                }
            }
            fanOut.counts.withLock { ($0.players, $0.cameras) = (players.count, channels.count) }
        }

        private func leave(_ number: UInt64, reason: String) {
            guard let player = players[number] else { return }
            remove(number)
            player.onLeave(reason)
        }

        /// Makes the camera's new packets into chunks and queues them for each of its players.
        private func distribute(_ channel: Channel, now: ContinuousClock.Instant) {
            let packets = channel.subscriber.take(timeout: .zero)
            if packets.isEmpty {
                if channel.subscriber.isClosed {
                    for player in channel.players { leave(player.number, reason: channel.subscriber.closeReason) }
                }
                return
            }
            var dropped = 0
            // Whether this turn's bytes may wait for the camera's next ones (see ``Limits/writeCoalescing``).
            channel.arrivals.note(now)
            let gathering = channel.arrivals.comeWithin(fanOut.limits.writeCoalescing)
            for packet in packets {
                let chunks: [Chunk]
                do {
                    chunks = try channel.maker.chunks(of: packet)
                } catch {
                    fanOut.logger.notice("a packet could not be made ready for players", metadata: ["error": "\(error)"])
                    continue
                }
                for chunk in chunks {
                    channel.place(chunk)
                    channel.keep(chunk, limit: fanOut.limits.maximumJoinBytes)
                    // Each player of the camera, without looking it up: this runs per player per packet.
                    for player in channel.players { dropped += player.offer(chunk, now: now, limits: fanOut.limits) }
                }
            }
            for player in channel.players {
                player.scheduleWrite(now: now, gathering: gathering, limits: fanOut.limits)
                markReady(player)
            }
            if dropped > 0 {
                RelayMetrics.packetsDropped.increment(by: dropped)
                fanOut.counts.withLock { $0.droppedChunks += dropped }
            }
        }

        /// Lists `player` among those to write to, once, when it has bytes waiting and its socket may take them.
        private func markReady(_ player: PlayerQueue) {
            guard !player.isReady, player.writable, player.pendingBytes > 0 else { return }
            player.isReady = true
            ready.append(player)
        }

        /// Where `flush` points `sendmsg`, made once.
        private var vectors = [iovec](repeating: iovec(), count: 64)
        /// Whether players are sent their chunks' pages from the cameras' files (``ChunkFile``).
        private var sendsFiles = true

        /// Writes what the player's socket takes; the bytes written.
        private func flush(_ player: PlayerQueue, now: ContinuousClock.Instant) -> Int {
            var total = 0
            var allowance = player.writeAllowance(now: now, limits: fanOut.limits)
            while player.pendingBytes > 0, allowance > 0 {
                let written: Int
                if sendsFiles, let run = player.fileRun(upTo: allowance) {
                    // The chunks' pages, without a copy (SIGPIPE is blocked on this thread: a
                    // player gone is an error here, as with MSG_NOSIGNAL below).
                    written = ChunkFile.send(run.file, from: run.offset, count: run.length, to: player.socket)
                    if written < 0, errno == EINVAL || errno == ENOSYS {
                        sendsFiles = false  // a kernel that cannot: copy from now on
                        continue
                    }
                } else {
                    let count = player.fill(&vectors, upTo: allowance)
                    // sendmsg, not writev: MSG_NOSIGNAL, so that a player gone raises no SIGPIPE in
                    // whatever process embeds the relay (the error says it, and epoll too).
                    written = vectors.withUnsafeMutableBufferPointer { buffer in
                        var message = msghdr()
                        message.msg_iov = buffer.baseAddress
                        message.msg_iovlen = count
                        return sendmsg(player.socket, &message, Int32(MSG_NOSIGNAL))
                    }
                }
                if written <= 0 {
                    if written < 0, errno == EINTR { continue }
                    // Full (EAGAIN): epoll says when it takes more. Any other error is a player
                    // gone, which epoll reports too (EPOLLHUP, EPOLLERR), and it is ended then.
                    // (Nothing sent without an error would be a file shorter than its chunks:
                    // never spin on it.)
                    player.writable = false
                    break
                }
                player.consume(written)
                player.lastProgress = now
                total += written
                allowance -= written
            }
            return total
        }
    }
}

/// A piece of a camera's stream, made once for all its players.
public struct Chunk: Sendable {
    let bytes: SharedBytes
    /// A player may start here (a keyframe, with what a player needs before it).
    let startsAtKeyframe: Bool
    /// What a sealed chunk seals, kept to seal it again under a new key for players that join.
    let plain: SharedBytes?

    init(_ bytes: [UInt8], startsAtKeyframe: Bool, plain: SharedBytes? = nil) {
        self.bytes = SharedBytes(bytes)
        self.startsAtKeyframe = startsAtKeyframe
        self.plain = plain
    }
}

/// Bytes written once and then only read, so that many queues may hold them and `sendmsg` may
/// point at them: their address never moves. Placed in their camera's ``ChunkFile`` as well,
/// they are sent from there without a copy per player.
final class SharedBytes: @unchecked Sendable {  // @unchecked: immutable after init, but for `placement`, set once on the fan-out's thread before any player holds them.
    let base: UnsafeMutableRawPointer
    let count: Int
    /// Where they are in their camera's memory file, if they were placed there.
    private(set) var placement: (file: ChunkFile, offset: Int)?

    init(_ bytes: [UInt8]) {
        count = bytes.count
        base = .allocate(byteCount: max(1, count), alignment: 16)
        bytes.withUnsafeBytes { if let source = $0.baseAddress { base.copyMemory(from: source, byteCount: count) } }
    }

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Writes them into `file`, once (before any player is offered them).
    func place(in file: ChunkFile) {
        guard placement == nil, count > 0, let offset = file.append(base, count: count) else { return }
        placement = (file, offset)
    }

    deinit {
        placement.map { $0.file.release($0.offset) }
        base.deallocate()
    }
}

/// What a camera's packets become for one kind of player.
public enum ChunkKind: Hashable, Sendable, CustomStringConvertible {
    /// MPEG-TS, for players of links (VLC, ffplay, ffmpeg).
    case transportStream
    /// MPEG-TS sealed once with the camera's content key (``SealedFrame``), for sealed views.
    case sealed
    /// Fragmented MP4 in WebSocket messages, for browsers (``BrowserChunks``).
    case browser

    func maker(for feed: CameraFeed, key: ContentKey?) -> any ChunkMaker {
        switch self {
        case .transportStream: TransportStreamChunks(feed: feed)
        // A sealed camera's first player names its key; without one, a key nobody was given
        // would only make the stream unreadable.
        case .sealed: SealedChunks(inner: TransportStreamChunks(feed: feed), key: key ?? .random(id: 0))
        case .browser: BrowserChunks(feed: feed)
        }
    }

    public var description: String {
        switch self {
        case .transportStream: "ts"
        case .sealed: "sealed"
        case .browser: "browser"
        }
    }
}

/// Makes a camera's packets into chunks of one kind (on the fan-out's thread).
protocol ChunkMaker: AnyObject {
    func chunks(of packet: MediaPacket) throws -> [Chunk]
    /// Seals what comes next with `key`, and returns `kept` (chunks already made) sealed with it.
    func rekey(with key: ContentKey, kept: [Chunk]) -> [Chunk]
}

extension ChunkMaker {
    func rekey(with key: ContentKey, kept: [Chunk]) -> [Chunk] { kept }
}

/// A camera's MPEG-TS chunks, each sealed once with the camera's content key: the one
/// encryption of the camera's stream, whatever the number of its players.
final class SealedChunks: ChunkMaker {
    private let inner: any ChunkMaker
    private var key: ContentKey
    /// The next frame's number under `key` (the nonce: never twice under one key).
    private var counter: UInt64 = 0

    init(inner: any ChunkMaker, key: ContentKey) {
        (self.inner, self.key) = (inner, key)
    }

    func chunks(of packet: MediaPacket) throws -> [Chunk] {
        try inner.chunks(of: packet).map { seal($0.bytes, startsAtKeyframe: $0.startsAtKeyframe) }
    }

    func rekey(with key: ContentKey, kept: [Chunk]) -> [Chunk] {
        (self.key, counter) = (key, 0)
        return kept.compactMap { chunk in chunk.plain.map { seal($0, startsAtKeyframe: chunk.startsAtKeyframe) } }
    }

    private func seal(_ plain: SharedBytes, startsAtKeyframe: Bool) -> Chunk {
        defer { counter += 1 }
        return Chunk(SealedFrame.seal(plain.buffer, key: key, counter: counter, startsAtKeyframe: startsAtKeyframe), startsAtKeyframe: startsAtKeyframe, plain: plain)
    }
}

/// A camera's packets muxed as MPEG-TS once: each packet one chunk, and each keyframe a place to
/// start (the muxer writes the PAT and PMT before it). A new stream description at a keyframe
/// (a source that restarted with another codec or size) starts a new muxer there.
final class TransportStreamChunks: ChunkMaker {
    private let muxer: CameraMuxer

    init(feed: CameraFeed) {
        muxer = CameraMuxer(feed: feed, container: .transportStream)
    }

    func chunks(of packet: MediaPacket) throws -> [Chunk] {
        guard let (bytes, _) = try muxer.mux(packet), !bytes.isEmpty else { return [] }
        return [Chunk(bytes, startsAtKeyframe: packet.isKeyframe)]
    }
}

/// A camera's packets muxed once into `container`, for the chunk makers: nothing before the
/// first keyframe, and a new muxer at a keyframe that brings a new stream description (a source
/// that restarted with another codec or size).
final class CameraMuxer {
    private let feed: CameraFeed
    private let container: StreamWriter.Container
    private var writer: StreamWriter?
    private var video: VideoStreamInfo?

    init(feed: CameraFeed, container: StreamWriter.Container) {
        (self.feed, self.container) = (feed, container)
    }

    /// The bytes `packet` muxes to, and whether a new muxer started with it; nil before the first keyframe.
    func mux(_ packet: MediaPacket) throws -> (bytes: [UInt8], restarted: Bool)? {
        var restarted = false
        if packet.isKeyframe, let current = feed.video, current !== video {
            try writer?.finish()
            writer = try StreamWriter(video: current, container: container)
            (video, restarted) = (current, true)
        }
        guard let writer else { return nil }
        try writer.write(packet)
        return (writer.takeOutput(), restarted)
    }
}

struct ChannelKey: Hashable {
    let feed: ObjectIdentifier
    let kind: ChunkKind
}

/// One camera for one kind of player: its subscription, its maker, what a joiner starts with.
private final class Channel {
    let key: ChannelKey
    let feed: CameraFeed
    let maker: any ChunkMaker
    let subscriber: FeedSubscriber
    /// Its players, in the order they came (a list: the fan-out runs through it per packet).
    var players: [PlayerQueue] = []
    /// The chunks since the newest keyframe.
    private(set) var sinceKeyframe: [Chunk] = []
    private var sinceKeyframeBytes = 0
    /// Whether `sinceKeyframe` starts at a keyframe (not while the GOP is beyond the limit).
    private(set) var joinable = false
    /// How far apart its packets come.
    var arrivals = ArrivalInterval()
    /// Its chunks' bytes, sent from there (nil where the system has no memory files: copied then).
    let file: ChunkFile?

    init(key: ChannelKey, feed: CameraFeed, maker: any ChunkMaker, subscriber: FeedSubscriber) {
        (self.key, self.feed, self.maker, self.subscriber) = (key, feed, maker, subscriber)
        file = ChunkFile(name: "vigil.fanout.\(key.kind)")
    }

    /// Writes a new chunk into the channel's file, before any player is offered it.
    func place(_ chunk: Chunk) {
        if let file { chunk.bytes.place(in: file) }
    }

    /// Seals what comes next with `key`; what a joiner starts with is sealed again with it.
    func rekey(with key: ContentKey) {
        sinceKeyframe = maker.rekey(with: key, kept: sinceKeyframe)
        sinceKeyframe.forEach(place)
    }

    func keep(_ chunk: Chunk, limit: Int) {
        if chunk.startsAtKeyframe {
            sinceKeyframe.removeAll(keepingCapacity: true)
            sinceKeyframeBytes = 0
            joinable = true
        }
        guard joinable else { return }
        sinceKeyframe.append(chunk)
        sinceKeyframeBytes += chunk.bytes.count
        if sinceKeyframeBytes > limit {
            sinceKeyframe.removeAll()
            sinceKeyframeBytes = 0
            joinable = false
        }
    }
}

/// How far apart a camera's packets come: a moving average of the time between arrivals.
struct ArrivalInterval {
    private var last: ContinuousClock.Instant?
    private(set) var average: Duration?

    mutating func note(_ now: ContinuousClock.Instant) {
        if let last { average = average.map { ($0 * 3 + (now - last)) / 4 } ?? (now - last) }
        last = now
    }

    /// Whether they usually come within `interval` of each other (so a player's bytes may wait for the next).
    func comeWithin(_ interval: Duration) -> Bool {
        average.map { $0 < interval } ?? false
    }
}

/// One player's chunks, oldest first: those written that its reader may not have taken yet,
/// then those not written, and how far into the first of those it is.
///
/// How far behind live a player is, and will be: the age of the chunk its reader takes now,
/// which the socket tells (the bytes written that its reader has not taken), and the lateness
/// the newest chunk will have when the reader gets to it, at the pace the reader has been
/// taking bytes. The second is why a slow player stays within the bound: by the time the chunk
/// it reads is a second old, what the kernel still holds would take it further behind.
final class PlayerQueue {
    let number: UInt64
    let socket: Int32
    let channel: ChannelKey
    let onLeave: @Sendable (String) -> Void
    /// A chunk as a player's queue holds it: what is read of it per player per packet is in
    /// the entry itself (no reference to follow, nothing retained to read it).
    private struct Queued {
        let bytes: SharedBytes
        let count: Int
        /// Where the bytes are in their camera's memory file (descriptor -1: in none).
        let file: Int32
        let fileOffset: Int
        let arrival: ContinuousClock.Instant
        /// Where the chunk ends in the player's stream.
        let end: Int
    }

    private var chunks: [Queued] = []
    /// The first chunk the reader may not have taken yet.
    private var reading = 0
    /// The first chunk not written whole.
    private var head = 0
    /// Bytes of `chunks[head]` already written.
    private var offset = 0
    /// Bytes queued and written since the player started: where each chunk ends in its stream.
    private var queuedTotal = 0
    private var writtenTotal = 0
    private(set) var pendingBytes = 0
    var writable = true
    /// Whether it is listed among the players to write to (``FanOut/Loop/ready``).
    var isReady = false
    /// Whether it was taken out (its socket closed): a list may still hold it for the turn.
    var isGone = false
    /// When what waits should be written: at once, or once the camera's next bytes had time to
    /// come (``FanOut/Limits/writeCoalescing``). A new player's are due from the start: a joiner's
    /// keyframe goes at once.
    var writeDue = ContinuousClock.Instant.now
    /// Whether what waits came in one turn only (then it may wait for a second).
    private var waitingOneTurn = false
    var waitingForKeyframe = false
    var lastProgress: ContinuousClock.Instant
    /// What the socket said when last asked: bytes written that the reader has not taken, and
    /// when; the reader's pace (bytes a second), measured over a quarter of a second or more.
    private var unread = 0
    private var asked: ContinuousClock.Instant?
    private var paceSample: (taken: Int, at: ContinuousClock.Instant, keptUp: Bool)?
    /// The most a pace is taken to be, in bytes a second (10 Gbit/s): doubling stops there.
    private static let fastestPace = 1.25e9
    private var pace: Double?
    /// A TCP peer: the largest window it advertised, and how long sending had waited on its
    /// window when last asked.
    private var largestWindow: UInt32 = 0
    private var windowLimited: UInt64 = 0
    /// Whether what it is given is paced by its reader's pace (``writeAllowance(now:limits:)``):
    /// from when it falls behind until it keeps up again.
    private var paced = false
    /// Whether its socket's buffer was made small (it fell behind once: what waits should wait
    /// here, where it can be dropped, not in the kernel, where nothing can take it back).
    private var bufferShrunk = false

    init(number: UInt64, socket: Int32, channel: ChannelKey, onLeave: @escaping @Sendable (String) -> Void, now: ContinuousClock.Instant) {
        (self.number, self.socket, self.channel, self.onLeave, self.lastProgress) = (number, socket, channel, onLeave, now)
    }

    func append(_ chunk: Chunk, at arrival: ContinuousClock.Instant) {
        if pendingBytes == 0 { lastProgress = arrival }  // an idle player is not stalled
        queuedTotal += chunk.bytes.count
        let placement = chunk.bytes.placement
        chunks.append(Queued(
            bytes: chunk.bytes, count: chunk.bytes.count, file: placement?.file.descriptor ?? -1, fileOffset: placement?.offset ?? 0,
            arrival: arrival, end: queuedTotal))
        pendingBytes += chunk.bytes.count
    }

    /// Asks the socket (one or two system calls) how much of what was written the reader has
    /// not taken, moves `reading` to the chunk it takes now, and measures its pace.
    ///
    /// A TCP peer's own buffer is out of the socket's sight: what it has acknowledged but not
    /// read. When sending has been waiting on its window since last asked and the window is
    /// under half the largest it advertised, its buffer is taken to hold what the window shrank
    /// by. (Estimating it at every shrink was tried and taken out: an autotuned window that
    /// shrinks a little made a player keeping up look seconds behind.)
    private func askTheSocket(now: ContinuousClock.Instant) {
        guard writtenTotal > 0 else { return }
        var held = max(0, Int(vigil_unread_bytes(socket)))
        var window: UInt32 = 0
        var limited: UInt64 = 0
        if vigil_peer_window(socket, &window, &limited) == 0 {
            largestWindow = max(largestWindow, window)
            if limited > windowLimited, window < largestWindow / 2 { held += Int(largestWindow - window) }
            windowLimited = limited
        }
        unread = min(held, writtenTotal)
        asked = now
        let taken = writtenTotal - unread
        if let sample = paceSample {
            let seconds = (now - sample.at) / .seconds(1)
            if seconds >= 0.25 {
                // What the reader took is its pace only when the reader held the player back
                // (bytes waited for it: here, or in a full socket). Otherwise it could have taken
                // more: its pace is taken as twice what it was (at most 10 Gbit/s), so that a
                // reader that paused, or a fast one between two keyframes, is not held to what
                // it took. One with less than a quarter of a second's reading waiting, here and
                // in the kernels, twice running, keeps up.
                let measured = Double(max(0, taken - sample.taken)) / seconds
                let readerLimited = unread > 0 && (pendingBytes > 0 || !writable)
                pace = readerLimited ? pace.map { ($0 + measured) / 2 } ?? measured : min(Self.fastestPace, max(2 * (pace ?? 0), measured))
                let keepsUp = Double(unread + pendingBytes) < (pace ?? 0) / 4
                if keepsUp, sample.keptUp { paced = false }
                paceSample = (taken, now, keepsUp)
            }
        } else {
            paceSample = (taken, now, false)
        }
        while reading < head, chunks[reading].end <= taken { reading += 1 }
    }

    /// Whether the player is, or will be, more than `lateness` behind live: the chunk its
    /// reader takes now came longer ago, or (its pace known) the newest chunk, `incoming` bytes
    /// on, will have waited longer when the reader gets to it. The socket is asked when the
    /// chunk it may still be reading is that old, of a paced player at most every 20 ms, of one
    /// whose socket is full at most every 100 ms: a player that keeps up costs no system call.
    private func isLate(now: ContinuousClock.Instant, lateness: Duration, incoming: Int) -> Bool {
        let oldEnough = reading < chunks.count && now - chunks[reading].arrival > lateness
        let since = asked.map { now - $0 } ?? .seconds(1)
        if oldEnough || (paced && since > .milliseconds(20)) || (!writable && since > .milliseconds(100)) { askTheSocket(now: now) }
        if reading < chunks.count, now - chunks[reading].arrival > lateness { return true }
        // Three quarters of the bound: the reader's position and pace are estimates, asked
        // at intervals, and the promise is the bound itself.
        guard let pace, asked != nil else { return false }
        return Double(unread + pendingBytes + incoming) > pace * 0.75 * (lateness / .seconds(1))
    }

    /// Queues `chunk`, first moving a player behind live to the next keyframe; the chunks dropped.
    func offer(_ chunk: Chunk, now: ContinuousClock.Instant, limits: FanOut.Limits) -> Int {
        var dropped = 0
        let late = isLate(now: now, lateness: limits.maximumLateness, incoming: chunk.bytes.count)
        if !waitingForKeyframe, late || pendingBytes + chunk.bytes.count > limits.maximumQueuedBytes {
            // Keep the rest of a chunk begun: the player's stream must not be cut mid-packet.
            let kept = head < chunks.count && offset > 0 ? 1 : 0
            let first = min(chunks.count, head + kept)
            dropped += chunks.count - first
            for dropping in chunks[first...] { pendingBytes -= dropping.count }
            chunks.removeSubrange(first...)
            queuedTotal = chunks.last?.end ?? writtenTotal
            waitingForKeyframe = true
            fellBehind()
        }
        if waitingForKeyframe {
            guard chunk.startsAtKeyframe else { return dropped + 1 }
            // Still behind (the kernels hold what it was sent, more than its reader takes in
            // the time allowed): the next keyframe, then. The keyframe's own size is not held
            // against it: a reader slower than one keyframe a second still gets pictures.
            guard !isLate(now: now, lateness: limits.maximumLateness, incoming: 0) else { return dropped + 1 }
            waitingForKeyframe = false
        }
        append(chunk, at: now)
        return dropped
    }

    /// How many bytes to write to the socket now. A paced player (one that fell behind) is
    /// given no more than what its reader takes in half the lateness allowed (64 KiB until its
    /// pace is known; 16 KiB at least), so that the rest waits here, where it is dropped when it
    /// grows old, instead of filling the kernels' buffers at once and reaching the reader later
    /// and later. Its socket is asked at most every 20 ms; a player that keeps up is not asked.
    func writeAllowance(now: ContinuousClock.Instant, limits: FanOut.Limits) -> Int {
        guard paced else { return .max }
        if asked.map({ now - $0 > .milliseconds(20) }) ?? true { askTheSocket(now: now) }
        guard paced else { return .max }
        let budget = pace.map { max(16 * 1024, Int($0 * (limits.maximumLateness / .seconds(2)))) } ?? 64 * 1024
        return max(0, budget - unread)
    }

    /// A player that fell behind is paced until it keeps up again, and keeps only a small
    /// socket buffer from then on (the kernel's least: about 4.5 KiB, doubled), so that its
    /// backlog waits in this queue.
    private func fellBehind() {
        paced = true
        guard !bufferShrunk else { return }
        bufferShrunk = true
        var bytes: Int32 = 4_096
        setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The unwritten bytes from the next one on that lie one after another in one camera file,
    /// `limit` of them at most; nil when the next chunk is not in a file.
    func fileRun(upTo limit: Int) -> (file: Int32, offset: Int, length: Int)? {
        guard head < chunks.count, chunks[head].file >= 0 else { return nil }
        let (file, start) = (chunks[head].file, chunks[head].fileOffset + offset)
        var length = min(chunks[head].count - offset, limit)
        var index = head + 1
        while index < chunks.count, length < limit, chunks[index].file == file, chunks[index].fileOffset == start + length {
            length += min(chunks[index].count, limit - length)
            index += 1
        }
        return (file, start, length)
    }

    /// Points `vectors` at the unwritten bytes, `limit` of them at most; how many it filled.
    func fill(_ vectors: inout [iovec], upTo limit: Int) -> Int {
        var count = 0
        var index = head
        var left = limit
        while index < chunks.count, count < vectors.count, left > 0 {
            let bytes = chunks[index].bytes
            let skip = index == head ? offset : 0
            let length = min(bytes.count - skip, left)
            vectors[count] = iovec(iov_base: bytes.base + skip, iov_len: length)
            left -= length
            count += 1
            index += 1
        }
        return count
    }

    /// Sets when to write what waits, this turn's bytes having come `now`: bytes that are all
    /// this turn's may wait (if `gathering`) for the camera's next turn, which is then written
    /// with them at once; anything else is due now, or already was.
    func scheduleWrite(now: ContinuousClock.Instant, gathering: Bool, limits: FanOut.Limits) {
        guard pendingBytes > 0 else {
            waitingOneTurn = false
            return
        }
        let onlyThisTurns = head < chunks.count && chunks[head].arrival == now
        if waitingOneTurn {
            writeDue = now
            waitingOneTurn = false
        } else if onlyThisTurns, gathering, writtenTotal > 0 {
            writeDue = now + limits.writeCoalescing
            waitingOneTurn = true
        } else {
            writeDue = min(writeDue, now)
        }
    }

    /// `count` bytes were written.
    func consume(_ count: Int) {
        var left = count
        pendingBytes -= count
        if pendingBytes == 0 { waitingOneTurn = false }
        writtenTotal += count
        while left > 0, head < chunks.count {
            let remaining = chunks[head].count - offset
            if left >= remaining {
                left -= remaining
                head += 1
                offset = 0
            } else {
                offset += left
                left = 0
            }
        }
        // What the reader has taken is forgotten, in steps (removing from the front moves the
        // rest), the socket asked once every 64 chunks written.
        if head - reading > 64 { askTheSocket(now: .now) }
        if reading > 64 || reading == chunks.count {
            chunks.removeFirst(reading)
            head -= reading
            reading = 0
        }
    }
}
