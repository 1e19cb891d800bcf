internal import CZeroMQ
import Foundation
import Logging
import Synchronization

/// Who a client key belongs to: an agency (its own certificate, for systems) or a named user of it.
public struct BusIdentity: Sendable, Equatable, Hashable {
    public let agency: String
    public let user: String?

    public init(agency: String, user: String? = nil) {
        self.agency = agency
        self.user = user
    }

    /// The ZAP user id that carries the identity to each message: `agency` or `agency/user`
    /// (neither id may contain a `/`).
    var zapUserId: String { user.map { "\(agency)/\($0)" } ?? agency }

    init?(zapUserId: String) {
        let parts = zapUserId.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.init(agency: parts[0], user: parts.count == 2 ? parts[1] : nil)
    }
}

/// A command received on the command endpoint from an authenticated agency or user.
public struct BusRequest: Sendable {
    /// The ROUTER routing id of the client connection; pass it back to ``BusServer/reply(to:payload:)``.
    public let peer: Data
    /// Whose CURVE key the client presented, as the ZAP handler established it.
    public let identity: BusIdentity
    /// The request frame (JSON).
    public let payload: Data
    /// What in this process sent it on the identity's behalf (``BusServer/submit(_:as:origin:media:)``,
    /// `console` for the operator console); nil for a client of the bus.
    public var origin: String? = nil

    public var agency: String { identity.agency }
    public var user: String? { identity.user }
}

/// An authentication decision of the ZAP handler.
public struct AuthenticationEvent: Sendable {
    public let accepted: Bool
    /// The agency of an accepted key.
    public var agency: String? { identity?.agency }
    /// Whose key was accepted.
    public let identity: BusIdentity?
    /// The client's Z85 public key, when it presented one.
    public let publicKey: String?
    /// The client's IP address as libzmq reports it.
    public let address: String
    public let mechanism: String
    /// Why a key was refused: `unknown_key` (the ZAP handler), or `handshake_failed` (seen by
    /// the socket monitor: a client that does not speak CURVE with this server's key).
    public let reason: String?
    /// When the bus decided (its record may be written later: a full disk).
    public let at = Date()

    init(accepted: Bool, identity: BusIdentity?, publicKey: String?, address: String, mechanism: String, reason: String? = nil) {
        self.accepted = accepted
        self.identity = identity
        self.publicKey = publicKey
        self.address = address
        self.mechanism = mechanism
        self.reason = reason ?? (accepted ? nil : "unknown_key")
    }
}

/// A subscription the event endpoint granted or refused (`ZMQ_XPUB_MANUAL`).
public struct SubscriptionEvent: Sendable {
    public let granted: Bool
    /// Who asked; nil when the message carried no identity (never for a CURVE peer).
    public let identity: BusIdentity?
    public let topic: String
    /// When the bus decided (its record may be written later: a full disk).
    public let at = Date()
}

/// Where and how the bus listens.
public struct BusServerConfiguration: Sendable {
    /// For example `tcp://127.0.0.1:7710`; port 0 lets the system choose.
    public var commandEndpoint: String
    public var eventEndpoint: String
    public var serverKeys: CurveKeyPair
    public var heartbeatInterval: Duration
    /// libzmq I/O threads: each encrypts (CURVE) and writes for its share of the connections.
    public var ioThreads: Int32
    /// The media endpoint of the relay in this process (ROUTER, CURVE), or nil for none.
    public var mediaEndpoint: String?

    public init(
        commandEndpoint: String, eventEndpoint: String, serverKeys: CurveKeyPair, heartbeatInterval: Duration = .seconds(1),
        ioThreads: Int32 = 2, mediaEndpoint: String? = nil
    ) {
        self.mediaEndpoint = mediaEndpoint
        self.commandEndpoint = commandEndpoint
        self.eventEndpoint = eventEndpoint
        self.serverKeys = serverKeys
        self.heartbeatInterval = heartbeatInterval
        self.ioThreads = ioThreads
    }
}

/// The server side of the bus: a command endpoint (ROUTER), an event endpoint (XPUB), both
/// CURVE-secured, and the ZAP handler that maps client keys to agencies.
///
/// One dedicated thread owns every socket and runs a poll loop (``ZMQPoller``). Requests leave it
/// through ``requests``; replies and events enter it through a locked queue and a wake-up
/// message on an `inproc://` pair.
///
/// Clients in the same process may attach over `inproc://` (``attachInProcess(as:)``): the
/// same loop, requests, replies, subscription checks and events, without CURVE or TCP.
///
/// - Important: Thread-safe. ``stop()`` must be called before the server is released.
public final class BusServer: @unchecked Sendable {  // @unchecked: sockets are confined to the bus thread; shared state is in Mutexes.
    public static let zapDomain = "vigil"
    private static let zapEndpoint = "inproc://zeromq.zap.01"

    public let requests: AsyncStream<BusRequest>
    /// The bus thread as an executor, for a task that answers ``requests`` from memory without
    /// leaving the thread that received them (``BusExecutor``).
    public let executor = BusExecutor()
    public let authentications: AsyncStream<AuthenticationEvent>
    /// Every subscription decision except heartbeats (which everyone may receive).
    public let subscriptions: AsyncStream<SubscriptionEvent>
    /// The endpoints actually bound (ports resolved).
    public private(set) var boundCommandEndpoint = ""
    public private(set) var boundEventEndpoint = ""
    public private(set) var boundMediaEndpoint: String?
    /// Requests on the media endpoint (`feed.open`, `feed.close`).
    public let mediaRequests: AsyncStream<BusRequest>
    private let mediaRequestSink: AsyncStream<BusRequest>.Continuation
    private struct PublishedObserver: Sendable {
        let prefixes: [String]
        let sink: AsyncStream<(topic: String, payload: Data)>.Continuation
    }

    /// Who observes published events in this process (``observePublished(prefixes:)``).
    private let observers = Mutex<[PublishedObserver]>([])
    /// The replies awaited by requests submitted within the process, by their peer address.
    private let localReplies = Mutex<[Data: CheckedContinuation<Data, Never>]>([:])
    private let nextLocalPeer = Atomic<UInt64>(1)
    /// Media peers a message could not reach, for the relay to act on.
    private let mediaFailures = Mutex<[Data: MediaFailures]>([:])

    private let configuration: BusServerConfiguration
    private let authorize: @Sendable (String) -> BusIdentity?
    private let authorizeSubscription: @Sendable (BusIdentity, String) -> Bool
    private let logger: Logger
    private let context: ZMQContext
    private let requestSink: AsyncStream<BusRequest>.Continuation
    private let authenticationSink: AsyncStream<AuthenticationEvent>.Continuation
    private let subscriptionSink: AsyncStream<SubscriptionEvent>.Continuation
    private let metrics = BusMetrics()

    private enum Outbound {
        case reply(peer: Data, payload: Data)
        case publish(topic: String, payload: Data)
        /// A media message: a small header, and a payload sent without a copy.
        case media(peer: Data, header: Data, payload: Data?)
    }

    private struct SharedState {
        var outbound: [Outbound] = []
        var stopping = false
        /// Asked by ``dropSubscribers()``: the event endpoint is bound anew.
        var renewEvents = false
    }

    private let shared = Mutex(SharedState())
    /// What the event endpoints granted, plain and batched (``GrantedSubscriptions``).
    private let grantedSubscriptions = Mutex(GrantedSubscriptions())
    /// The sending end of the wake-up pair, used by any thread under its own lock.
    private let wakeSender: Mutex<ZMQSocketBox?>
    /// Whether the bus thread is watching the outbound queue (then nobody needs to wake it).
    private let watching = Atomic<Bool>(false)
    /// Whether the outbound queue holds anything, written under the queue's lock and read
    /// without it by the bus thread's watch (which would otherwise contend for that lock with
    /// the very threads enqueuing the replies it waits for).
    private let outboundWaiting = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var sockets: LoopSockets?
    private var monitorCount = 0
    /// The in-process endpoints attached before ``start()``, each for one identity.
    private var inProcess: [InProcessSockets] = []

    /// An answer made on the bus thread as a request is received (``answerAtOnce(with:)``):
    /// the reply, or nil to hand the request on through ``requests``.
    public typealias ImmediateAnswer = @Sendable (BusRequest) -> Data?
    private var immediateAnswer: ImmediateAnswer?

    /// - Parameters:
    ///   - authorize: maps a client's Z85 public key to its agency or user, or nil to refuse it.
    ///   - authorizeSubscription: whether an identity may subscribe to a topic (heartbeats are
    ///     always allowed). A topic is a prefix: grant only topics that name what they carry.
    public init(
        configuration: BusServerConfiguration, logger: Logger, authorize: @escaping @Sendable (String) -> BusIdentity?,
        authorizeSubscription: @escaping @Sendable (BusIdentity, String) -> Bool
    ) throws(ZMQError) {
        self.configuration = configuration
        self.logger = logger
        self.authorize = authorize
        self.authorizeSubscription = authorizeSubscription
        context = try ZMQContext(ioThreads: configuration.ioThreads)
        (requests, requestSink) = AsyncStream.makeStream(of: BusRequest.self, bufferingPolicy: .bufferingOldest(1024))
        (authentications, authenticationSink) = AsyncStream.makeStream(of: AuthenticationEvent.self, bufferingPolicy: .bufferingNewest(1024))
        (subscriptions, subscriptionSink) = AsyncStream.makeStream(of: SubscriptionEvent.self, bufferingPolicy: .bufferingNewest(1024))
        (mediaRequests, mediaRequestSink) = AsyncStream.makeStream(of: BusRequest.self, bufferingPolicy: .bufferingOldest(1024))
        wakeSender = Mutex(nil)
        executor.wakeBusThread = { [weak self] in self?.wakeUnlessWatching() }
    }

    /// Binds the endpoints (ZAP handler first, so no client is ever let in unchecked) and starts the bus thread.
    public func start() throws(ZMQError) {
        let zap = try ZMQSocket(context: context, type: .rep)
        try zap.bind(Self.zapEndpoint)

        let wakeEndpoint = "inproc://vigil.bus.wake"
        let wake = try ZMQSocket(context: context, type: .pair)
        try wake.bind(wakeEndpoint)
        let sender = try ZMQSocket(context: context, type: .pair)
        try sender.connect(wakeEndpoint)
        wakeSender.withLock { $0 = ZMQSocketBox(socket: sender) }

        let secret = configuration.serverKeys.secretKey ?? ""
        let command = try makeEndpointSocket(.router, curveSecret: secret, endpoint: configuration.commandEndpoint)
        let events = try makeEndpointSocket(.xpub, curveSecret: secret, endpoint: configuration.eventEndpoint)
        boundCommandEndpoint = try command.lastEndpoint()
        boundEventEndpoint = try events.lastEndpoint()
        var media: ZMQSocket?
        if let endpoint = configuration.mediaEndpoint {
            let socket = try ZMQSocket(context: context, type: .router)
            try socket.makeCurveServer(secretKey: secret, domain: Self.zapDomain)
            try socket.set(ZMQ_MAXMSGSIZE, Int64(64 * 1024))  // clients only send small requests
            try socket.set(ZMQ_ROUTER_MANDATORY, Int32(1))
            // Small: each view's own queue drops frame by frame before libzmq would.
            try socket.set(ZMQ_SNDHWM, Int32(200))
            try socket.bind(endpoint)
            boundMediaEndpoint = try socket.lastEndpoint()
            media = socket
        }
        sockets = LoopSockets(
            zap: zap, wake: wake, command: command, events: events,
            monitors: [try monitor(command, name: "command"), try monitor(events, name: "events")], media: media, inProcess: inProcess)

        let thread = Thread { [self] in
            // Named from within, so that the system (top, perf) shows the name too.
            Thread.current.name = "vigil.bus"
            executor.runsOnCurrentThread()
            runLoop()
            executor.stop()
            finished.signal()
        }
        thread.start()
    }

    /// Handshakes that fail before the ZAP handler is asked (a client using another server
    /// key, or not CURVE at all) are only visible to a socket monitor: the returned socket reads it.
    private func monitor(_ socket: ZMQSocket, name: String) throws(ZMQError) -> ZMQSocket {
        monitorCount += 1
        let endpoint = "inproc://vigil.bus.monitor.\(name).\(monitorCount)"
        try socket.monitor(endpoint, events: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        let monitor = try ZMQSocket(context: context, type: .pair)
        try monitor.connect(endpoint)
        return monitor
    }

    /// Ends every connection to the event endpoint (the server's published events): each
    /// client's SUB reconnects by itself within a moment, passes the ZAP handler again, and sends
    /// its subscriptions again, which are decided again. A key withdrawn since (a suspended user,
    /// a rotated agency key) is refused then, so its subscriptions end with its connection.
    /// Events published while clients reconnect are lost to them; channels are numbered, so a
    /// client sees the gap and asks for a snapshot. (libzmq cannot close one peer of an XPUB.)
    public func dropSubscribers() {
        shared.withLock { $0.renewEvents = true }
        wake()
    }

    /// Binds a new event socket at the address the old one had (its port included), retrying
    /// for a moment while libzmq releases the old listener. A bus that cannot publish any more
    /// stops (the error ends the loop, logged as critical), rather than run without events.
    private func renewEventSocket(_ sockets: inout LoopSockets) throws(ZMQError) {
        sockets.events.close()
        sockets.monitors[1].close()
        let secret = configuration.serverKeys.secretKey ?? ""
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        while true {
            do throws(ZMQError) {
                let events = try makeEndpointSocket(.xpub, curveSecret: secret, endpoint: boundEventEndpoint)
                sockets.events = events
                sockets.monitors[1] = try monitor(events, name: "events")
                metrics.eventEndpointRenewals.increment()
                logger.notice("event endpoint bound anew: every subscriber reconnects", metadata: ["bus.endpoint": "\(boundEventEndpoint)"])
                return
            } catch {
                guard error.code == EADDRINUSE, ContinuousClock.now < deadline else { throw error }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
    }

    /// A command (ROUTER) or event (XPUB) endpoint: CURVE with `curveSecret` unless nil (in
    /// process), messages of at most 1 MiB, bounded queues.
    private func makeEndpointSocket(_ type: ZMQSocketType, curveSecret: String?, endpoint: String) throws(ZMQError) -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: type)
        if let curveSecret { try socket.makeCurveServer(secretKey: curveSecret, domain: Self.zapDomain) }
        try socket.set(ZMQ_MAXMSGSIZE, Int64(BusProtocol.maximumMessageSize))
        try socket.set(ZMQ_SNDHWM, Int32(10_000))
        if type == .router {
            try socket.set(ZMQ_ROUTER_MANDATORY, Int32(1))
            try socket.set(ZMQ_RCVHWM, Int32(10_000))
        }
        if type == .xpub {
            // Every subscription comes to the bus thread, which applies it only when it is allowed.
            try socket.set(ZMQ_XPUB_MANUAL, Int32(1))
        }
        try socket.bind(endpoint)
        return socket
    }

    /// How long the event sockets may take, when the server stops, to send what was published last.
    static let finalFlushMilliseconds = 500

    /// The most in-process attachments (each takes one route byte of a peer address).
    static let maximumInProcessAttachments = 200

    /// Binds a command and an event endpoint over `inproc://` for clients in this process that
    /// act as `identity`, and returns the configuration such a client connects with.
    ///
    /// Nothing crosses a network or a process boundary, so there is no CURVE and no ZAP: whoever
    /// holds the configuration is `identity`, as code in this process could read the server's
    /// secret key anyway. Requests, replies, subscription checks and events go through the same
    /// loop as over `tcp://`. Call before ``start()``; close the clients before ``stop()``, which
    /// waits for every socket of the server's context to be closed.
    public func attachInProcess(as identity: BusIdentity) throws(ZMQError) -> BusClientConfiguration {
        // The loop's sockets are fixed when it starts: EINVAL after start(), EMFILE past the most.
        guard sockets == nil else { throw ZMQError(code: EINVAL, operation: "attachInProcess after start()") }
        guard inProcess.count < Self.maximumInProcessAttachments else { throw ZMQError(code: EMFILE, operation: "attachInProcess") }
        let name = "inproc://vigil.bus.in-process.\(inProcess.count)"
        let attachment = InProcessSockets(
            identity: identity,
            command: try makeEndpointSocket(.router, curveSecret: nil, endpoint: "\(name).command"),
            events: try makeEndpointSocket(.xpub, curveSecret: nil, endpoint: "\(name).events"))
        inProcess.append(attachment)
        return BusClientConfiguration(inProcessCommand: "\(name).command", events: "\(name).events", context: context)
    }

    /// Lets `answer` reply to command requests on the bus thread, as each is received and before
    /// it is handed on: its reply leaves in the same turn of the loop, with no thread hand-off at
    /// all; nil hands the request on through ``requests`` as usual. For answers made at once from
    /// memory only: while `answer` runs, the bus sends and receives nothing else. Call before
    /// ``start()`` (EINVAL after).
    public func answerAtOnce(with answer: @escaping ImmediateAnswer) throws(ZMQError) {
        guard sockets == nil else { throw ZMQError(code: EINVAL, operation: "answerAtOnce after start()") }
        immediateAnswer = answer
    }

    /// Sends a reply to the client connection `peer`.
    public func reply(to peer: Data, payload: Data) {
        if answerLocally(peer, payload) { return }
        enqueue(.reply(peer: peer, payload: payload))
    }

    /// Sends a media message to a media peer: `header` (copied) and `payload` (shared, not copied).
    public func sendMedia(to peer: Data, header: Data, payload: Data?) {
        if answerLocally(peer, header) { return }
        enqueue(.media(peer: peer, header: header, payload: payload))
    }

    /// Hands `payload` (a request frame) to whoever serves the command endpoint, or the media
    /// endpoint when `media`, as if `identity` had sent it, and returns the reply: for a part of
    /// this process that acts for someone it has authenticated itself (the operator console for
    /// a logged-in user). The request goes through the same queue, operations, decisions and
    /// audit as one from the bus, marked with `origin` (``BusRequest/origin``). A request the
    /// queue cannot take is answered `server_busy`, as on the bus. Only replies come back: a
    /// media request that would stream (``sendMedia(to:header:payload:)`` with a payload) is
    /// for the bus's clients.
    public func submit(_ payload: Data, as identity: BusIdentity, origin: String, media: Bool = false) async -> Data {
        let peer = PeerAddress.make(route: PeerAddress.localRoute, routingID: Data(withUnsafeBytes(of: nextLocalPeer.add(1, ordering: .relaxed).oldValue) { Array($0) }))
        return await withCheckedContinuation { continuation in
            localReplies.withLock { $0[peer] = continuation }
            // Registered first, then checked: a stop that swept the waiting replies before this
            // one was registered had already said it is stopping.
            guard !shared.withLock({ $0.stopping }) else {
                _ = answerLocally(peer, BusProtocol.errorReply(id: nil, .init(.serverBusy, message: "the server is stopping")))
                return
            }
            var request = BusRequest(peer: peer, identity: identity, payload: payload)
            request.origin = origin
            switch (media ? mediaRequestSink : requestSink).yield(request) {
            case .dropped: _ = answerLocally(peer, BusProtocol.errorReply(id: nil, .init(.serverBusy, message: "too many requests waiting; try again")))
            case .terminated: _ = answerLocally(peer, BusProtocol.errorReply(id: nil, .init(.serverBusy, message: "the server is stopping")))
            default: break
            }
        }
    }

    /// Resumes the ``submit(_:as:origin:media:)`` that `peer` stands for; false for a peer of the bus.
    private func answerLocally(_ peer: Data, _ payload: Data) -> Bool {
        guard peer.first == PeerAddress.localRoute else { return false }
        localReplies.withLock { $0.removeValue(forKey: peer) }?.resume(returning: payload)
        return true
    }

    /// What went wrong sending to one media peer since the last look.
    public struct MediaFailures: Sendable {
        /// The peer is gone (EHOSTUNREACH).
        public var unreachable = 0
        /// Its queue was full (EAGAIN): it reads more slowly than the feed arrives.
        public var full = 0
    }

    /// The media peers that messages could not reach since the last call.
    public func takeMediaFailures() -> [Data: MediaFailures] {
        mediaFailures.withLock { failures in
            defer { failures.removeAll() }
            return failures
        }
    }

    /// Publishes an event on `topic`.
    public func publish(topic: String, payload: Data) {
        enqueue(.publish(topic: topic, payload: payload))
        for observer in observers.withLock({ $0 }) where observer.prefixes.contains(where: topic.hasPrefix) {
            observer.sink.yield((topic, payload))
        }
    }

    /// A copy of every event published on a topic that starts with `prefix`, for a part of this
    /// process that serves what agencies receive by other means (the console shows each agency
    /// the thumbnails published to it). It sees exactly what was published to each topic, so it
    /// decides nothing the publisher did not. The newest 256 wait for a slow reader; older ones are dropped.
    public func observePublished(prefix: String) -> AsyncStream<(topic: String, payload: Data)> {
        observePublished(prefixes: [prefix])
    }

    /// The same for topics that start with any of `prefixes`, in the order they were published.
    public func observePublished(prefixes: [String]) -> AsyncStream<(topic: String, payload: Data)> {
        let (stream, sink) = AsyncStream.makeStream(of: (topic: String, payload: Data).self, bufferingPolicy: .bufferingNewest(256))
        observers.withLock { $0.append(PublishedObserver(prefixes: prefixes, sink: sink)) }
        return stream
    }

    /// Stops the bus thread, closes every socket and terminates the context. Idempotent.
    public func stop() {
        let alreadyStopping = shared.withLock { state in
            defer { state.stopping = true }
            return state.stopping
        }
        guard !alreadyStopping else { return }
        for observer in observers.withLock({ observers in defer { observers.removeAll() }; return observers }) { observer.sink.finish() }
        // Nobody serves the requests submitted within the process any more.
        for waiting in localReplies.withLock({ replies in defer { replies.removeAll() }; return Array(replies.values) }) {
            waiting.resume(returning: BusProtocol.errorReply(id: nil, .init(.serverBusy, message: "the server is stopping")))
        }
        if sockets != nil {
            wake()
            finished.wait()
        } else {
            executor.stop()
        }
        wakeSender.withLock { box in
            box?.socket.close()
            box = nil
        }
        requestSink.finish()
        mediaRequestSink.finish()
        authenticationSink.finish()
        subscriptionSink.finish()
        context.shutdown()
        context.terminate()
    }

    /// The most messages waiting for the bus thread; beyond it a message is dropped and counted
    /// (a follower sees the gap and resynchronises; a client whose reply is lost times out).
    static let maximumOutbound = 100_000

    private func enqueue(_ message: Outbound) {
        let (wasEmpty, accepted) = shared.withLock { state in
            guard state.outbound.count < Self.maximumOutbound else { return (false, false) }
            state.outbound.append(message)
            outboundWaiting.store(true, ordering: .releasing)
            return (state.outbound.count == 1, true)
        }
        if !accepted {
            switch message {
            case .reply: metrics.repliesDropped.increment()
            case .publish: metrics.eventsDropped.increment()
            case .media: metrics.mediaDropped.increment()
            }
            return
        }
        // One wake-up per batch: the loop drains the whole queue when it wakes.
        if wasEmpty { wakeUnlessWatching() }
    }

    /// Wakes the bus thread unless it is watching its queues, which it drains before it polls again.
    private func wakeUnlessWatching() {
        if !watching.load(ordering: .sequentiallyConsistent) { wake() }
    }

    private func wake() {
        wakeSender.withLock { box in
            try? box?.socket.send([Data()])
        }
    }

    // MARK: The bus thread

    /// The sockets of one in-process attachment, whose every peer is `identity`.
    private struct InProcessSockets {
        let identity: BusIdentity
        let command: ZMQSocket
        let events: ZMQSocket
    }

    private struct LoopSockets {
        let zap: ZMQSocket
        let wake: ZMQSocket
        let command: ZMQSocket
        var events: ZMQSocket
        /// The command endpoint's, then the event endpoint's.
        var monitors: [ZMQSocket]
        let media: ZMQSocket?
        let inProcess: [InProcessSockets]

        func closeAll() {
            ([zap, wake, command, events] + monitors + (media.map { [$0] } ?? []) + inProcess.flatMap { [$0.command, $0.events] }).forEach { $0.close() }
        }

        /// What the loop polls, in the order it handles them.
        var polled: [(socket: ZMQSocket, role: PolledRole)] {
            var polled: [(ZMQSocket, PolledRole)] = monitors.map { ($0, .monitor) }
            if let media { polled.append((media, .media)) }
            polled += [(zap, .zap), (wake, .wake), (command, .command(route: PeerAddress.commandRoute, identity: nil))]
            for (index, attachment) in inProcess.enumerated() {
                polled.append((attachment.command, .command(route: PeerAddress.inProcessRoute(index), identity: attachment.identity)))
            }
            polled.append((events, .events(identity: nil)))
            polled += inProcess.map { ($0.events, .events(identity: $0.identity)) }
            return polled
        }

        /// The network event socket and every in-process one: each event goes to all of them.
        var eventSockets: [ZMQSocket] { [events] + inProcess.map(\.events) }

        /// The sockets sending `outbound` used (for ``ZMQPoller/used(_:)``).
        func sentOn(by outbound: [Outbound]) -> [ZMQSocket] {
            var (replies, events, media) = (false, false, false)
            for message in outbound {
                switch message {
                case .reply: replies = true
                case .publish: events = true
                case .media: media = true
                }
            }
            var used: [ZMQSocket] = []
            if replies { used += [command] + inProcess.map(\.command) }
            if events { used += eventSockets }
            if media, let socket = self.media { used.append(socket) }
            return used
        }

        /// The command ROUTER (network or in-process) a peer address's route names, if any.
        func commandRouter(for route: UInt8) -> ZMQSocket? {
            if route == PeerAddress.commandRoute { return command }
            return PeerAddress.inProcessIndex(route).flatMap { inProcess.indices.contains($0) ? inProcess[$0].command : nil }
        }
    }

    /// Why the loop polls a socket. A nil identity means the peer's own, as ZAP established it.
    private enum PolledRole {
        case monitor, media, zap, wake
        case command(route: UInt8, identity: BusIdentity?)
        case events(identity: BusIdentity?)
    }

    /// A peer as the server hands it out: one byte naming the ROUTER it came through, then its
    /// routing id on that socket.
    private enum PeerAddress {
        static let commandRoute: UInt8 = 0
        static let mediaRoute: UInt8 = 1
        /// Requests submitted within the process (``submit(_:as:origin:media:)``).
        static let localRoute: UInt8 = 255
        static func inProcessRoute(_ index: Int) -> UInt8 { UInt8(2 + index) }
        static func inProcessIndex(_ route: UInt8) -> Int? { route >= 2 ? Int(route) - 2 : nil }

        static func make(route: UInt8, routingID: Data) -> Data { Data([route]) + routingID }

        static func split(_ peer: Data) -> (route: UInt8, routingID: Data)? {
            guard let route = peer.first, peer.count > 1 else { return nil }
            return (route, peer.dropFirst())  // a slice of the same storage: no copy per media packet
        }
    }

    private func runLoop() {
        guard var sockets else { return }
        defer { sockets.closeAll() }
        let interval = configuration.heartbeatInterval
        let clock = ContinuousClock()
        var nextHeartbeat = clock.now
        var heartbeatSequence: Int64 = 0
        var polled = sockets.polled
        do {
            var poller = try ZMQPoller(polled.map(\.socket))
            while true {
                // Jobs waiting for the bus's executor (enqueued by its own jobs) run next turn, without sleeping.
                let untilHeartbeat = executor.hasPendingJobs ? 0 : max(0, clock.now.duration(to: nextHeartbeat).milliseconds)
                let ready = try poller.wait(timeoutMilliseconds: untilHeartbeat)
                var receivedRequests = false
                for ((socket, role), isReady) in zip(polled, ready) where isReady {
                    poller.used(socket)
                    switch role {
                    case .monitor: try readMonitor(socket)
                    case .media: try receiveRequests(socket, route: PeerAddress.mediaRoute, identity: nil, into: mediaRequestSink)
                    case .zap: try handleZAP(socket)
                    case .wake: while try socket.receive() != nil {}
                    case .command(let route, let identity):
                        try receiveRequests(socket, route: route, identity: identity, into: requestSink, answering: immediateAnswer)
                        receivedRequests = true
                    case .events(let identity): try receiveSubscriptions(socket, identity: identity)
                    }
                }
                // Requests answered on the bus's executor are answered now, in this turn.
                executor.runPending()
                if receivedRequests {
                    awaitQuickReplies(until: poller.anyDescriptorReady)
                    executor.runPending()
                }
                let (outbound, stopping, renewEvents) = shared.withLock { state in
                    defer {
                        state.outbound.removeAll(keepingCapacity: true)
                        state.renewEvents = false
                        outboundWaiting.store(false, ordering: .releasing)
                    }
                    return (state.outbound, state.stopping, state.renewEvents)
                }
                if stopping {
                    // What was published last (a final audit checkpoint, say) still goes out:
                    // the event sockets get a moment to flush before they close.
                    send(outbound, sockets: sockets)
                    for events in sockets.eventSockets {
                        try? events.set(ZMQ_LINGER, Int32(Self.finalFlushMilliseconds))
                    }
                    return
                }
                if renewEvents {
                    try renewEventSocket(&sockets)
                    polled = sockets.polled
                    poller = try ZMQPoller(polled.map(\.socket))
                }
                send(outbound, sockets: sockets)
                for socket in sockets.sentOn(by: outbound) { poller.used(socket) }
                if clock.now >= nextHeartbeat {
                    heartbeatSequence += 1
                    let payload = BusProtocol.event(channel: "heartbeat", seq: heartbeatSequence, type: "heartbeat", body: BusProtocol.Empty())
                    publish(topic: BusProtocol.heartbeatTopic, payload: payload, sockets: sockets)
                    sockets.eventSockets.forEach(poller.used)
                    nextHeartbeat = clock.now.advanced(by: interval)
                }
            }
        } catch {
            if !error.isTerminated {
                logger.critical("bus loop failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Most replies come within a few tens of microseconds of their request. Rather than block
    /// in `poll` and pay a thread wake-up (tens of microseconds on a virtual machine), the bus
    /// thread watches the outbound queue for a short while after requests; a slow request costs
    /// at most this much spinning. It watches after requests answered at once too, and looks at
    /// its sockets' descriptors meanwhile: a client's next request, coming within the window, is
    /// then taken by a thread that never slept (a bounded busy poll: 72–113 µs a round trip in
    /// `vigil bench bus` against 118–191 µs watching the queue alone).
    static let quickReplyWindow = Duration.microseconds(100)

    /// It also ends as soon as `somethingArrived` (checked with the clock: a system call) says a
    /// socket has something for the loop, a client's next request say, which must not wait.
    private func awaitQuickReplies(until somethingArrived: () -> Bool) {
        watching.store(true, ordering: .sequentiallyConsistent)
        // Whatever is queued after this store and before the one below needs no wake-up: the
        // loop drains the queue right after, without polling first.
        defer { watching.store(false, ordering: .sequentiallyConsistent) }
        let deadline = ContinuousClock.now.advanced(by: Self.quickReplyWindow)
        var spins = 0
        while !outboundWaiting.load(ordering: .acquiring), !executor.hasPendingJobs {
            spins += 1
            // Reading the clock costs more than the flag: look at it every 64 turns.
            if spins % 64 == 0, ContinuousClock.now >= deadline || somethingArrived() { return }
        }
    }

    /// Answers one ZAP request (RFC 27): frames version, request id, domain, address,
    /// identity, mechanism, credentials; the reply carries the identity (`agency` or `agency/user`) as the user id.
    private func handleZAP(_ zap: ZMQSocket) throws(ZMQError) {
        guard let frames = try zap.receive() else { return }
        let text = frames.map { String(decoding: $0.data, as: UTF8.self) }
        guard frames.count >= 6, text[0] == "1.0" else {
            logger.warning("malformed ZAP request", metadata: ["zap.frames": "\(frames.count)"])
            try zap.send([Data("1.0".utf8), frames.count > 1 ? frames[1].data : Data(), Data("500".utf8), Data("malformed".utf8), Data(), Data()])
            return
        }
        let mechanism = text[5]
        let publicKey = mechanism == "CURVE" && frames.count >= 7 ? CurveKeyPair.z85(frames[6].data) : nil
        let identity = publicKey.flatMap(authorize)
        let accepted = identity != nil && text[2] == Self.zapDomain
        let event = AuthenticationEvent(accepted: accepted, identity: identity, publicKey: publicKey, address: text[3], mechanism: mechanism)
        toAudit(authenticationSink.yield(event))
        if !accepted { metrics.authenticationFailures.increment() }
        if accepted {
            logger.debug("client authenticated", metadata: ["bus.identity": "\(identity?.zapUserId ?? "")", "bus.peer": "\(text[3])"])
        } else {
            // Debug only: the server reports refusals from ``authentications`` (and will audit them).
            logger.debug("client refused: unknown key", metadata: [
                "bus.peer": "\(text[3])", "bus.mechanism": "\(mechanism)", "bus.public_key": "\(publicKey ?? "none")",
            ])
        }
        try zap.send([
            Data("1.0".utf8), frames[1].data,
            Data((accepted ? "200" : "400").utf8), Data((accepted ? "OK" : "unknown key").utf8),
            Data((identity?.zapUserId ?? "").utf8), accepted ? Self.zapMetadata(key: publicKey ?? "") : Data(),
        ])
    }

    /// ZAP metadata (ZMTP property encoding: a one-byte name length, the name, a four-byte
    /// big-endian value length, the value) with the client's public key, which libzmq then
    /// attaches to every message of the connection (``ZMQFrame/peerKey``), so that a key
    /// withdrawn after the handshake is noticed.
    private static func zapMetadata(key: String) -> Data {
        let name = ZMQFrame.peerKeyProperty
        var metadata = Data([UInt8(name.utf8.count)]) + Data(name.utf8)
        withUnsafeBytes(of: UInt32(key.utf8.count).bigEndian) { metadata.append(contentsOf: $0) }
        return metadata + Data(key.utf8)
    }

    /// Whether the key a message came with still belongs to the identity its connection was let
    /// in as: a suspended user or a rotated key answers no, and so does a message without the
    /// key property (every connection this ZAP handler admits has it).
    private func stillAdmitted(_ frame: ZMQFrame, as identity: BusIdentity) -> Bool {
        guard let key = frame.peerKey else { return false }
        return authorize(key) == identity
    }

    /// Reports the failed handshakes a socket monitor saw (frame 1: a 16-bit event and a 32-bit
    /// value in host order; frame 2: the endpoint).
    private func readMonitor(_ monitor: ZMQSocket) throws(ZMQError) {
        while let frames = try monitor.receive() {
            guard frames.count == 2 else { continue }
            metrics.authenticationFailures.increment()
            toAudit(authenticationSink.yield(AuthenticationEvent(
                accepted: false, identity: nil, publicKey: nil, address: String(decoding: frames[1].data, as: UTF8.self), mechanism: "CURVE",
                reason: "handshake_failed")))
        }
    }

    /// Counts a decision the audit's queue had no room for: its oldest waiting one is dropped
    /// (the 1,024 of a kind wait only while the database cannot take them, a full disk).
    private func toAudit<Event>(_ result: AsyncStream<Event>.Continuation.YieldResult) {
        if case .dropped = result { metrics.auditDropped.increment() }
    }

    /// Reads requests from a ROUTER; each peer's address gets `route`. With a nil `identity`,
    /// the sender is whoever ZAP said its key belongs to.
    private func receiveRequests(
        _ command: ZMQSocket, route: UInt8, identity fixedIdentity: BusIdentity?, into sink: AsyncStream<BusRequest>.Continuation,
        answering immediateAnswer: ImmediateAnswer? = nil
    ) throws(ZMQError) {
        // Bounded per wake-up so that a flood of requests cannot starve ZAP or replies.
        for _ in 0..<256 {
            guard let frames = try command.receive() else { return }
            guard let routingID = frames.first?.data else { continue }
            metrics.requestsIn.increment()
            guard frames.count == 2, let identity = fixedIdentity ?? frames[1].userID.flatMap(BusIdentity.init(zapUserId:)) else {
                metrics.badFrames.increment()
                let error = BusProtocol.ErrorBody(.badFrames, message: "a request is exactly one JSON frame, got \(frames.count - 1)")
                try? command.send([routingID, BusProtocol.errorReply(id: nil, error)])
                continue
            }
            guard fixedIdentity != nil || stillAdmitted(frames[1], as: identity) else {
                metrics.requestsRefusedRevoked.increment()
                let error = BusProtocol.ErrorBody(.credentialsRevoked, message: "this key no longer belongs to \(identity.zapUserId)")
                try? command.send([routingID, BusProtocol.errorReply(id: nil, error)])
                continue
            }
            let request = BusRequest(peer: PeerAddress.make(route: route, routingID: routingID), identity: identity, payload: frames[1].data)
            if let reply = immediateAnswer?(request) {
                do {
                    try command.send([routingID, reply])
                    metrics.repliesOut.increment()
                } catch {
                    metrics.repliesDropped.increment()
                }
                continue
            }
            if case .dropped = sink.yield(request) {
                metrics.requestsRefusedBusy.increment()
                let error = BusProtocol.ErrorBody(.serverBusy, message: "too many requests waiting; try again")
                try? command.send([routingID, BusProtocol.errorReply(id: nil, error)])
            }
        }
    }

    /// Applies each (un)subscription the XPUB passes up, if allowed. With `ZMQ_XPUB_MANUAL`, a
    /// `ZMQ_SUBSCRIBE` set on the socket applies to the peer of the message just received, so
    /// the decision is made before the next message is read.
    private func receiveSubscriptions(_ events: ZMQSocket, identity fixedIdentity: BusIdentity?) throws(ZMQError) {
        while let frames = try events.receive() {
            metrics.subscriptionsIn.increment()
            guard frames.count == 1, let data = frames.first?.data, let flag = data.first, flag <= 1 else { continue }
            let topicBytes = Data(data.dropFirst())
            // A batched subscription is decided, recorded and counted as its channel's.
            let topic = EventBatch.channelTopic(of: String(decoding: topicBytes, as: UTF8.self))
            guard flag == 1 else {
                try events.set(ZMQ_UNSUBSCRIBE, bytes: topicBytes)
                continue
            }
            let identity = fixedIdentity ?? frames[0].userID.flatMap(BusIdentity.init(zapUserId:))
            let admitted = identity.map { fixedIdentity != nil || stillAdmitted(frames[0], as: $0) } ?? false
            let granted = topic == BusProtocol.heartbeatTopic || (admitted && identity.map { authorizeSubscription($0, topic) } ?? false)
            if granted {
                try events.set(ZMQ_SUBSCRIBE, bytes: topicBytes)
                grantedSubscriptions.withLock { $0.grant(String(decoding: topicBytes, as: UTF8.self)) }
            } else {
                metrics.subscriptionsRefused.increment()
            }
            if topic != BusProtocol.heartbeatTopic {
                toAudit(subscriptionSink.yield(SubscriptionEvent(granted: granted, identity: identity, topic: topic)))
            }
            logger.debug(granted ? "subscribed" : "subscription refused", metadata: [
                "bus.topic": "\(topic)", "bus.identity": "\(identity?.zapUserId ?? "none")",
            ])
        }
    }

    private func send(_ outbound: [Outbound], sockets: LoopSockets) {
        // Events of one topic queued one after another also go out as batches, to the
        // subscribers who asked for them so (``EventBatch``).
        var runTopic: String?
        var run: [Data] = []
        var audience = (plain: true, batched: false)
        func endRun() {
            if let runTopic, !run.isEmpty { publishBatches(topic: runTopic, payloads: run, sockets: sockets) }
            (runTopic, run) = (nil, [])
        }
        for message in outbound {
            if case .publish(let topic, let payload) = message, topic != BusProtocol.heartbeatTopic {
                if runTopic != topic {
                    endRun()
                    audience = grantedSubscriptions.withLock { $0.audience(of: topic) }
                }
                // Nobody subscribed to this topic's events one by one: only its batches go out.
                guard audience.plain || !audience.batched else {
                    runTopic = topic
                    run.append(payload)
                    continue
                }
                if audience.batched {
                    runTopic = topic
                    run.append(payload)
                }
            } else {
                endRun()
            }
            switch message {
            case .reply(let peer, let payload):
                do {
                    guard let (route, routingID) = PeerAddress.split(peer), let router = sockets.commandRouter(for: route) else {
                        throw ZMQError(code: EHOSTUNREACH, operation: "reply to an unknown peer")
                    }
                    try router.send([routingID, payload])
                    metrics.repliesOut.increment()
                } catch {
                    // EHOSTUNREACH: the client left before its reply; EAGAIN: its queue is full.
                    metrics.repliesDropped.increment()
                    logger.warning("reply dropped", metadata: ["error": "\(error)"])
                }
            case .media(let peer, let header, let payload):
                do throws(ZMQError) {
                    guard let (route, routingID) = PeerAddress.split(peer), route == PeerAddress.mediaRoute, let media = sockets.media else {
                        throw ZMQError(code: EHOSTUNREACH, operation: "media to an unknown peer")
                    }
                    if let payload {
                        try media.send([routingID, header], sharing: payload)
                    } else {
                        try media.send([routingID, header])
                    }
                    metrics.mediaOut.increment()
                } catch {
                    metrics.mediaDropped.increment()
                    mediaFailures.withLock { failures in
                        if error.code == EHOSTUNREACH { failures[peer, default: MediaFailures()].unreachable += 1 } else { failures[peer, default: MediaFailures()].full += 1 }
                    }
                }
            case .publish(let topic, let payload):
                publish(topic: topic, payload: payload, sockets: sockets)
            }
        }
        endRun()
    }

    /// Sends a run of one topic's events, in order, as batches on `batch:TOPIC` (XPUB drops
    /// them at once when no subscriber asked for batches).
    private func publishBatches(topic: String, payloads: [Data], sockets: LoopSockets) {
        let topicFrame = Data((EventBatch.prefix + topic).utf8)
        var start = 0
        while start < payloads.count {
            var end = start
            var bytes = 0
            while end < payloads.count, end - start < EventBatch.maximumEvents, end == start || bytes + payloads[end].count <= EventBatch.maximumBytes {
                bytes += payloads[end].count
                end += 1
            }
            publish(topicFrame: topicFrame, payload: EventBatch.join(payloads[start..<end]), sockets: sockets)
            start = end
        }
    }

    private func publish(topic: String, payload: Data, sockets: LoopSockets) {
        publish(topicFrame: Data(topic.utf8), payload: payload, sockets: sockets)
    }

    /// Sends one message (an event, or a batch) on the network event endpoint and on every in-process one.
    private func publish(topicFrame: Data, payload: Data, sockets: LoopSockets) {
        for events in sockets.eventSockets {
            do {
                try events.send([topicFrame, payload])
                metrics.eventsOut.increment()
            } catch {
                metrics.eventsDropped.increment()
                logger.warning("event dropped", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Carries a socket into a Mutex; only ever used under that Mutex's lock.
private struct ZMQSocketBox: @unchecked Sendable {  // @unchecked: the enclosing Mutex serialises every use.
    let socket: ZMQSocket
}

extension Duration {
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

extension Error {
    var isTerminated: Bool { (self as? ZMQError)?.isTerminated ?? false }
}
