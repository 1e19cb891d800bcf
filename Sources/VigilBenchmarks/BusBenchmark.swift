import Bus
internal import CLinuxEvents
internal import CZeroMQ
import Foundation
import Logging
import Synchronization

/// The measurements of `vigil bench bus`, over CURVE on loopback, with the real ``BusServer``
/// and ``BusClient`` (and libzmq sockets directly for the subscribers and the raw reference).
public enum BusBenchmark {
    /// A typical channel event: an incident change with two cameras (about 600 bytes).
    static let eventBody: [String: [String]] = [
        "added": ["pz5339-street-0393", "stib-bourse-26"], "removed": ["pz5339-street-0401"],
        "note": [String(repeating: "x", count: 400)],
    ]

    /// A server on free loopback ports whose only client key is `clientKeys` (agency `bench`),
    /// which may subscribe to anything under `incident/`, answering every request at once. The
    /// configuration handed to `body` is for that key over tcp, or in process (`inproc://`).
    static func withServer<T>(
        clientKeys: CurveKeyPair, media: Bool = false, inProcess: Bool = false, _ body: (BusServer, BusClientConfiguration) throws -> T
    ) throws -> T {
        let serverKeys = try CurveKeyPair.generate()
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let server = try BusServer(
            configuration: BusServerConfiguration(
                commandEndpoint: "tcp://127.0.0.1:0", eventEndpoint: "tcp://127.0.0.1:0", serverKeys: serverKeys,
                mediaEndpoint: media ? "tcp://127.0.0.1:0" : nil),
            logger: logger,
            authorize: { $0 == clientKeys.publicKey ? BusIdentity(agency: "bench") : nil },
            authorizeSubscription: { _, topic in topic.hasPrefix("incident/") })
        let inProcessConfiguration = inProcess ? try server.attachInProcess(as: BusIdentity(agency: "bench")) : nil
        // Every request is answered from memory, on the bus thread as it comes (as the server
        // answers `session.identity`): the bus's own cost, with no thread hand-off.
        try server.answerAtOnce { request in
            let id = (try? BusProtocol.decodeHeader(request.payload).id) ?? "?"
            return BusProtocol.successReply(id: id, result: ["agency": request.agency])
        }
        try server.start()
        defer { server.stop() }
        return try body(server, inProcessConfiguration ?? BusClientConfiguration(
            commandEndpoint: server.boundCommandEndpoint, eventEndpoint: server.boundEventEndpoint,
            serverPublicKey: serverKeys.publicKey, keys: clientKeys))
    }

    /// A context of its own for `body`, shut down and terminated once `body` has closed its sockets.
    static func withContext<T>(maxSockets: Int32? = nil, _ body: (ZMQContext) throws -> T) throws -> T {
        let context = try ZMQContext(maxSockets: maxSockets)
        defer {
            context.shutdown()
            context.terminate()
        }
        return try body(context)
    }

    /// Sequential request/reply round trips through ``BusClient``, in microseconds, sorted: over
    /// CURVE and tcp, or in process (`inproc://`), which leaves the bus's own cost.
    public static func commandRoundTrips(count: Int, inProcess: Bool = false) throws -> [Double] {
        let keys = try CurveKeyPair.generate()
        return try withServer(clientKeys: keys, inProcess: inProcess) { _, configuration in
            let client = try BusClient(configuration: configuration)
            defer { client.close() }
            for _ in 0..<200 { _ = try client.request("session.identity", body: [String: String](), as: [String: String].self) }
            let clock = ContinuousClock()
            var samples: [Double] = []
            samples.reserveCapacity(count)
            for _ in 0..<count {
                let start = clock.now
                _ = try client.request("session.identity", body: [String: String](), as: [String: String].self)
                samples.append(micros(clock.now - start))
            }
            return samples.sorted()
        }
    }

    /// The reference for round trips: bare libzmq ROUTER/DEALER with CURVE, echoed by a thread
    /// that owns the ROUTER (no ZAP, no hand-off to the Swift executor), in microseconds, sorted.
    public static func rawRoundTrips(count: Int) throws -> [Double] {
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        return try withContext { context in
            let router = try ZMQSocket(context: context, type: .router)
            try router.makeCurveServer(secretKey: serverKeys.secretKey ?? "", domain: "raw")
            try router.bind("tcp://127.0.0.1:0")
            let endpoint = try router.lastEndpoint()
            let box = SubscriberBox(socket: router)
            let echo = Thread {
                while true {
                    guard let frames = try? box.socket.receive(wait: true), frames.count == 2 else { break }
                    if frames[1].data == Data("stop".utf8) { break }
                    try? box.socket.send([frames[0].data, frames[1].data])
                }
                box.socket.close()
                box.finish(at: ContinuousClock.now)
            }
            echo.start()
            // The client has a context (an I/O thread) of its own, as one in another process has.
            let samples = try withContext { clientContext in
                let dealer = try ZMQSocket(context: clientContext, type: .dealer)
                defer { dealer.close() }
                try dealer.makeCurveClient(serverKey: serverKeys.publicKey, publicKey: clientKeys.publicKey, secretKey: clientKeys.secretKey ?? "")
                try dealer.connect(endpoint)
                let message = Data(String(repeating: "x", count: 60).utf8)
                let clock = ContinuousClock()
                var samples: [Double] = []
                for index in 0..<(count + 200) {
                    let start = clock.now
                    try dealer.send([message], wait: true)
                    _ = try dealer.receive(wait: true)
                    if index >= 200 { samples.append(micros(clock.now - start)) }
                }
                try dealer.send([Data("stop".utf8)], wait: true)
                return samples
            }
            _ = box.wait()
            return samples.sorted()
        }
    }

    /// One event published to `subscribers` agency clients (CURVE, each with its own connection),
    /// `rounds` times: for each round, the microseconds until each client had it, sorted.
    public static func fanOut(subscribers: Int, rounds: Int) throws -> [[Double]] {
        let keys = try CurveKeyPair.generate()
        return try withServer(clientKeys: keys) { server, configuration in
            try measureFanOut(
                subscribers: subscribers, rounds: rounds, endpoint: configuration.eventEndpoint, serverKey: configuration.serverPublicKey, clientKeys: keys,
                heartbeats: true
            ) { topic, payload in
                server.publish(topic: topic, payload: payload)
            }
        }
    }

    /// The reference for fan-out: bare libzmq PUB with CURVE (no ZAP, no subscription checks,
    /// sent from the measuring thread) to the same clients.
    public static func rawFanOut(subscribers: Int, rounds: Int) throws -> [[Double]] {
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        return try withContext { context in
            let publisher = try ZMQSocket(context: context, type: .pub)
            defer { publisher.close() }
            try publisher.makeCurveServer(secretKey: serverKeys.secretKey ?? "", domain: "raw")
            try publisher.bind("tcp://127.0.0.1:0")
            let endpoint = try publisher.lastEndpoint()
            // No heartbeats here: probes on the heartbeat topic show that each client is connected.
            return try measureFanOut(
                subscribers: subscribers, rounds: rounds, endpoint: endpoint, serverKey: serverKeys.publicKey, clientKeys: clientKeys, heartbeats: false
            ) { topic, payload in
                try? publisher.send([Data(topic.utf8), payload])
            }
        }
    }

    /// Connects `subscribers` SUB clients to `endpoint`, waits until each has seen a heartbeat
    /// (or, without heartbeats, a probe on that topic sent through `publish`), then publishes
    /// one event per round and times its arrival at each client.
    private static func measureFanOut(
        subscribers: Int, rounds: Int, endpoint: String, serverKey: String, clientKeys: CurveKeyPair, heartbeats: Bool,
        publish: (String, Data) -> Void
    ) throws -> [[Double]] {
        try withContext(maxSockets: Int32(subscribers + 64)) { context in
            let topic = "incident/1/bench/"
            var sockets: [ZMQSocket] = []
            defer { sockets.forEach { $0.close() } }
            for _ in 0..<subscribers {
                let socket = try ZMQSocket(context: context, type: .sub)
                try socket.makeCurveClient(serverKey: serverKey, publicKey: clientKeys.publicKey, secretKey: clientKeys.secretKey ?? "")
                try socket.set(ZMQ_RCVHWM, Int32(1000))
                try socket.connect(endpoint)
                try socket.set(ZMQ_SUBSCRIBE, topic)
                try socket.set(ZMQ_SUBSCRIBE, BusProtocol.heartbeatTopic)
                sockets.append(socket)
            }
            // Every subscriber has seen a heartbeat (or probe): all subscriptions are live.
            var live = Set<Int>()
            let deadline = ContinuousClock.now + .seconds(60)
            while live.count < subscribers, ContinuousClock.now < deadline {
                if !heartbeats { publish(BusProtocol.heartbeatTopic, Data("{}".utf8)) }
                let ready = try zmqPoll(sockets, timeoutMilliseconds: 200)
                for (index, isReady) in ready.enumerated() where isReady {
                    while try sockets[index].receive() != nil { live.insert(index) }
                }
            }
            guard live.count == subscribers else { throw ZMQError(code: EAGAIN, operation: "only \(live.count) of \(subscribers) subscribers connected") }
            let payload = BusProtocol.event(channel: "incident/1", seq: 1, type: "incident.redrawn", body: eventBody)
            let readiness = try ArrivalWatch(sockets)
            let clock = ContinuousClock()
            var results: [[Double]] = []
            for _ in 0..<rounds {
                // Drain heartbeats first, so that each round measures only its event. Their
                // signals are dropped before the reads: one that comes after stays for later.
                _ = try readiness.signalled(timeoutMilliseconds: 0)
                for socket in sockets { _ = try readAll(socket, topic: topic) }
                var pending = subscribers
                var reached = [Bool](repeating: false, count: subscribers)
                var latencies: [Double] = []
                let start = clock.now
                publish(topic, payload)
                while pending > 0, clock.now - start < .seconds(10) {
                    for index in try readiness.signalled(timeoutMilliseconds: 100) where try readAll(sockets[index], topic: topic) && !reached[index] {
                        reached[index] = true
                        pending -= 1
                        latencies.append(micros(clock.now - start))
                    }
                }
                results.append(latencies.sorted())
            }
            return results
        }
    }

    /// Reads every message waiting on `socket`; whether one was on `topic`. The read that finds
    /// nothing has processed the socket's pending commands, as asking for `ZMQ_EVENTS` would: its
    /// next message signals again. Asking as well cost each arrival two more system calls, on the
    /// cores the server under test needs.
    private static func readAll(_ socket: ZMQSocket, topic: String) throws -> Bool {
        var arrived = false
        while let frames = try socket.receive() {
            if frames.first?.data == Data(topic.utf8) { arrived = true }
        }
        return arrived
    }

    /// Events per second one subscriber receives from the bus server, and how many of `count`
    /// arrived; `batched`: it subscribes to the channel's batches (``EventBatch``), and counts
    /// the events in each message as a client splits them.
    public static func busThroughput(count: Int, batched: Bool = false) throws -> (perSecond: Double, received: Int) {
        let keys = try CurveKeyPair.generate()
        let topic = "incident/1/bench/"
        let subscribed = batched ? EventBatch.prefix + topic : topic
        let eventsIn: @Sendable (Data) -> Int = { payload in batched ? eventsInBatch(payload) : 1 }
        return try withServer(clientKeys: keys) { (server: BusServer, configuration: BusClientConfiguration) throws -> (perSecond: Double, received: Int) in
            try throughput(count: count, of: server, configuration: configuration, keys: keys, topic: topic, subscribed: subscribed, events: eventsIn)
        }
    }

    /// `count` events published on `topic` through `server`, read by a subscriber of `subscribed`.
    private static func throughput(
        count: Int, of server: BusServer, configuration: BusClientConfiguration, keys: CurveKeyPair, topic: String, subscribed: String,
        events: @escaping @Sendable (Data) -> Int
    ) throws -> (perSecond: Double, received: Int) {
        try withContext { context in
            let socket = try ZMQSocket(context: context, type: .sub)
            defer { socket.close() }
            try socket.makeCurveClient(serverKey: configuration.serverPublicKey, publicKey: keys.publicKey, secretKey: keys.secretKey ?? "")
            return try measureThroughput(count: count, subscriber: socket, endpoint: configuration.eventEndpoint, topic: subscribed, events: events) { payload in
                server.publish(topic: topic, payload: payload)
            }
        }
    }

    /// The events a batch holds, as a client splits them.
    @Sendable static func eventsInBatch(_ payload: Data) -> Int {
        EventBatch.split(payload)?.count ?? 0
    }

    /// The same with a bare libzmq PUB socket (CURVE, no ZAP, no bus thread): the reference.
    public static func rawThroughput(count: Int) throws -> (perSecond: Double, received: Int) {
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        return try withContext { context in
            let publisher = try ZMQSocket(context: context, type: .pub)
            defer { publisher.close() }
            try publisher.makeCurveServer(secretKey: serverKeys.secretKey ?? "", domain: "raw")
            try publisher.set(ZMQ_SNDHWM, Int32(100_000))
            try publisher.bind("tcp://127.0.0.1:0")
            // The subscriber has a context (an I/O thread) of its own, as one in another process
            // has: one I/O thread doing both ends' encryption would halve the reference.
            return try withContext { clientContext in
                let subscriber = try ZMQSocket(context: clientContext, type: .sub)
                defer { subscriber.close() }
                try subscriber.makeCurveClient(serverKey: serverKeys.publicKey, publicKey: clientKeys.publicKey, secretKey: clientKeys.secretKey ?? "")
                let topic = "incident/1/bench/"
                // The raw publisher sends from this thread; the subscriber reads on another.
                return try measureThroughput(count: count, subscriber: subscriber, endpoint: try publisher.lastEndpoint(), topic: topic, events: { _ in 1 }) { payload in
                    try? publisher.send([Data(topic.utf8), payload], wait: true)
                }
            }
        }
    }

    /// Connects `subscriber`, waits until a probe message arrives, then publishes `count` events
    /// through `publish` while another thread reads them (`events` says how many a message's
    /// payload holds); returns events per second received.
    private static func measureThroughput(
        count: Int, subscriber: ZMQSocket, endpoint: String, topic: String, events: @escaping @Sendable (Data) -> Int, publish: (Data) throws -> Void
    ) throws -> (perSecond: Double, received: Int) {
        try subscriber.set(ZMQ_RCVHWM, Int32(100_000))
        try subscriber.connect(endpoint)
        try subscriber.set(ZMQ_SUBSCRIBE, topic)
        let probe = BusProtocol.event(channel: "incident/1", seq: 0, type: "probe", body: [String: String]())
        let deadline = ContinuousClock.now + .seconds(20)
        var connected = false
        while !connected, ContinuousClock.now < deadline {
            try publish(probe)
            if try zmqPoll([subscriber], timeoutMilliseconds: 50)[0] {
                while try subscriber.receive() != nil {}
                connected = true
            }
        }
        guard connected else { throw ZMQError(code: EAGAIN, operation: "the subscriber never connected") }
        let payload = BusProtocol.event(channel: "incident/1", seq: 1, type: "incident.redrawn", body: eventBody)
        let clock = ContinuousClock()
        let start = clock.now
        let box = SubscriberBox(socket: subscriber)
        let reader = Thread {
            var last = clock.now
            while box.received.load(ordering: .relaxed) < count {
                guard (try? zmqPoll([box.socket], timeoutMilliseconds: 1000))?[0] == true else { break }
                while let frames = (try? box.socket.receive()) ?? nil {
                    box.received.add(frames.count == 2 ? events(frames[1].data) : 0, ordering: .relaxed)
                    last = clock.now
                }
            }
            box.finish(at: last)
        }
        reader.start()
        // Lossless pace: never more than `window` events ahead of the reader, well under the
        // high-water marks, so the figure is what a subscriber sustains without a gap. Ahead, the
        // publisher sleeps (as NATS's publisher blocks in its write) rather than spin: spinning
        // in sched_yield took a third of the two cores that the bus and its subscriber need.
        let window = 4_000
        for published in 0..<count {
            while published - box.received.load(ordering: .relaxed) > window { usleep(50) }
            try publish(payload)
        }
        let last = box.wait()
        let received = box.received.load(ordering: .relaxed)
        return (Double(received) / max(1e-9, (last - start).seconds), received)
    }

    static func micros(_ duration: Duration) -> Double {
        duration / .microseconds(1)
    }
}

/// Hands the subscriber socket to its reader thread, and its progress back.
private final class SubscriberBox: @unchecked Sendable {  // @unchecked: the socket is used by the reader thread only while the owner waits.
    let socket: ZMQSocket
    let received = Atomic<Int>(0)
    private let done = DispatchSemaphore(value: 0)
    private var last = ContinuousClock.now

    init(socket: ZMQSocket) {
        self.socket = socket
    }

    func finish(at instant: ContinuousClock.Instant) {
        last = instant
        done.signal()
    }

    func wait() -> ContinuousClock.Instant {
        done.wait()
        return last
    }
}

extension BusBenchmark {
    /// The media endpoint's fan-out: `peers` CURVE DEALER clients each receive `packets` packets
    /// of `packetBytes` (a `feeds` × `peers / feeds` layout is the caller's to describe). Returns
    /// the bytes delivered, the wall time, and the process CPU time, for CPU per relayed Gbit/s.
    public static func mediaFanOut(peers: Int, packets: Int, packetBytes: Int, distinctPayloads: Int = 1) throws -> (bytes: Int, seconds: Double, cpuSeconds: Double) {
        let clientKeys = try CurveKeyPair.generate()
        return try withServer(clientKeys: clientKeys, media: true) { server, configuration in
            try withContext(maxSockets: Int32(peers + 64)) { context in
                var sockets: [ZMQSocket] = []
                defer { sockets.forEach { $0.close() } }
                for _ in 0..<peers {
                    let socket = try ZMQSocket(context: context, type: .dealer)
                    try socket.makeCurveClient(
                        serverKey: configuration.serverPublicKey, publicKey: clientKeys.publicKey, secretKey: clientKeys.secretKey ?? "")
                    try socket.set(ZMQ_RCVHWM, Int32(0))
                    try socket.connect(server.boundMediaEndpoint ?? "")
                    try socket.send([Data("hello".utf8)], wait: true)
                    sockets.append(socket)
                }
                // Each peer's hello tells the server its routing id.
                let registration = Task.detached { () -> [Data] in
                    var found: [Data] = []
                    for await request in server.mediaRequests {
                        found.append(request.peer)
                        if found.count == peers { break }
                    }
                    return found
                }
                let routes = try awaitResult(registration, timeout: .seconds(60))
                // One payload per feed: subscribers of the same feed share its packets.
                let payloads = (0..<max(1, distinctPayloads)).map { Data(repeating: UInt8(truncatingIfNeeded: $0), count: packetBytes) }
                let header = Data(#"{"view":"bench","type":"packet","seq":1}"#.utf8)
                var received = 0
                var bytes = 0
                /// Reads until `target` messages have arrived, or nothing came for 2 s.
                func drain(until target: Int) throws(ZMQError) {
                    var idle = 0
                    while received < target, idle < 200 {
                        let ready = try zmqPoll(sockets, timeoutMilliseconds: 10)
                        if !ready.contains(true) { idle += 1 }
                        for (offset, isReady) in ready.enumerated() where isReady {
                            while let frames = try sockets[offset].receive() {
                                received += 1
                                bytes += frames.last?.data.count ?? 0
                            }
                        }
                    }
                }
                let cpuBefore = cpuSeconds()
                let clock = ContinuousClock()
                let start = clock.now
                for index in 0..<packets {
                    for (offset, route) in routes.enumerated() { server.sendMedia(to: route, header: header, payload: payloads[offset % payloads.count]) }
                    // Read as we go, at most 5 packets behind, so that the clients keep up (as real viewers would).
                    if index % 5 == 4 { try drain(until: (index - 4) * peers) }
                }
                try drain(until: peers * packets)
                let elapsed = clock.now - start
                return (bytes, elapsed.seconds, cpuSeconds() - cpuBefore)
            }
        }
    }

    /// The process's user and system CPU time, in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Waits on a detached task from synchronous code.
    private static func awaitResult<T: Sendable>(_ task: Task<T, Never>, timeout: Duration) throws -> T {
        let box = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await task.value
            box.withLock { $0 = value }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout.seconds) == .success, let value = box.withLock({ $0 }) else {
            task.cancel()
            throw ZMQError(code: ETIMEDOUT, operation: "media peers did not register")
        }
        return value
    }
}

/// Which of many sockets were signalled, through one edge-triggered epoll on their command
/// descriptors (`ZMQ_FD`): a wake costs only the sockets signalled, as Go's netpoller does for
/// the NATS peer's subscribers. `zmq_poll` asks every waiting socket for its events before and
/// after each sleep (two system calls each), so the harness's cost grew with the subscribers
/// still waiting, on the cores the server it measures needs (the median arrival was 10–20%
/// later with it).
///
/// A signalled socket must be read until a read finds nothing: only then does libzmq signal
/// again for its next message.
private final class ArrivalWatch {
    private let epoll: Int32
    private var events: [epoll_event]

    init(_ sockets: [ZMQSocket]) throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw BenchSetupFailure("epoll_create1: \(String(cString: strerror(errno)))") }
        events = Array(repeating: epoll_event(), count: sockets.count)
        for (index, socket) in sockets.enumerated() {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLET.rawValue
            event.data.u32 = UInt32(index)
            guard epoll_ctl(epoll, EPOLL_CTL_ADD, try socket.commandDescriptor, &event) == 0 else {
                close(epoll)
                throw BenchSetupFailure("epoll_ctl: \(String(cString: strerror(errno)))")
            }
        }
    }

    deinit { close(epoll) }

    /// The indices of the sockets signalled, waiting at most `timeoutMilliseconds` for one.
    func signalled(timeoutMilliseconds: Int32) throws -> [Int] {
        let count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), timeoutMilliseconds) }
        if count < 0 {
            if errno == EINTR { return [] }
            throw BenchSetupFailure("epoll_wait: \(String(cString: strerror(errno)))")
        }
        return events.prefix(Int(count)).map { Int($0.data.u32) }
    }
}
