import Foundation
import Logging
import Synchronization
import Testing
import Glibc
import TestSupport
@testable import Bus

/// How a test's client reaches the server: across the network, or in the server's process.
enum BusTransport: String, CaseIterable, Sendable {
    case tcp, inProcess
}

/// Runs `body` against a bus server on free loopback ports that echoes each request's body,
/// with one authorised agency (`siamu`), whose client connects over `transport`; the server
/// is always stopped afterwards. The responder runs on `executor` (the pool's when nil), and
/// tells in each reply which thread it answered on.
private func withEchoServer(
    over transport: BusTransport = .tcp, executor: (BusServer) -> (any TaskExecutor)? = { _ in nil },
    beforeStart: (BusServer) throws -> Void = { _ in },
    _ body: (BusServer, BusClientConfiguration) async throws -> Void
) async throws {
    let serverKeys = try CurveKeyPair.generate()
    let agencyKeys = try CurveKeyPair.generate()
    let server = try BusServer(
        configuration: BusServerConfiguration(
            commandEndpoint: "tcp://127.0.0.1:0", eventEndpoint: "tcp://127.0.0.1:0", serverKeys: serverKeys,
            heartbeatInterval: .milliseconds(100)),
        logger: Logger(label: "test"),
        authorize: { $0 == agencyKeys.publicKey ? BusIdentity(agency: "siamu") : nil },
        authorizeSubscription: { identity, topic in topic == "incident/7/\(identity.agency)/" })
    let inProcess = transport == .inProcess ? try server.attachInProcess(as: BusIdentity(agency: "siamu")) : nil
    try beforeStart(server)
    try server.start()
    let responder = Task(executorPreference: executor(server)) {
        for await request in server.requests {
            let header = try BusProtocol.decodeHeader(request.payload)
            let echo = Echo(agency: request.agency, op: header.op, onBusThread: server.executor.isCurrentThread)
            server.reply(to: request.peer, payload: BusProtocol.successReply(id: header.id, result: echo))
        }
    }
    defer {
        server.stop()
        responder.cancel()
    }
    try await body(server, inProcess ?? BusClientConfiguration(
        commandEndpoint: server.boundCommandEndpoint, eventEndpoint: server.boundEventEndpoint,
        serverPublicKey: serverKeys.publicKey, keys: agencyKeys))
}

private struct Echo: Codable {
    var agency: String
    var op: String
    var onBusThread: Bool? = nil
}


@Suite("Bus", .timeLimit(.minutes(1)))
struct BusTests {
    @Test(arguments: BusTransport.allCases)
    func answersAnAuthenticatedClientWithItsAgency(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport) { _, configuration in
            let echo = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                return try client.request("ping", body: ["n": 1], as: Echo.self)
            }
            #expect(echo.agency == "siamu")
            #expect(echo.op == "ping")
        }
    }

    @Test func aResponderOnTheBusExecutorAnswersOnTheBusThreadAndOutlivesIt() async throws {
        var server: BusServer?
        try await withEchoServer(executor: { $0.executor }) { running, configuration in
            server = running
            let echo = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                return try client.request("ping", body: ["n": 1], as: Echo.self)
            }
            #expect(echo.onBusThread == true)
            #expect(echo.op == "ping")
        }
        // Stopped, the bus hands its jobs to the global executor: a task that prefers it still runs.
        let executor = try #require(server).executor
        let late = Task(executorPreference: executor) { executor.isCurrentThread }
        #expect(await late.value == false)
    }

    /// An immediate answer replies on the bus thread as the request comes; nil hands the
    /// request on to the responder; it can only be given before the bus starts.
    @Test(arguments: BusTransport.allCases)
    func anImmediateAnswerRepliesOnTheBusThreadOrHandsTheRequestOn(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport, beforeStart: { server in
            try server.answerAtOnce { [server] request in
                guard let header = try? BusProtocol.decodeHeader(request.payload), header.op == "at-once" else { return nil }
                return BusProtocol.successReply(id: header.id, result: Echo(agency: request.agency, op: "answered at once", onBusThread: server.executor.isCurrentThread))
            }
        }) { server, configuration in
            let (atOnce, handedOn) = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                return (try client.request("at-once", body: ["n": 1], as: Echo.self), try client.request("ping", body: ["n": 1], as: Echo.self))
            }
            #expect(atOnce.op == "answered at once" && atOnce.onBusThread == true && atOnce.agency == "siamu")
            #expect(handedOn.op == "ping" && handedOn.onBusThread == false)
            let late = #expect(throws: ZMQError.self) { try server.answerAtOnce { _ in nil } }
            #expect(late?.code == EINVAL)
        }
    }

    /// A task on the bus's executor that yields in a loop shares the bus thread; it cannot hold it.
    @Test func aTaskYieldingOnTheBusExecutorDoesNotHoldTheBus() async throws {
        try await withEchoServer { server, configuration in
            let spinning = Atomic<Bool>(true)
            let spinner = Task(executorPreference: server.executor) {
                while spinning.load(ordering: .relaxed) { await Task.yield() }
            }
            defer {
                spinning.store(false, ordering: .relaxed)
                spinner.cancel()
            }
            let echo = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                return try client.request("ping", body: ["n": 1], as: Echo.self, timeout: .seconds(10))
            }
            #expect(echo.op == "ping")
        }
    }

    @Test func aResponderOnThePoolAnswersOffTheBusThread() async throws {
        try await withEchoServer { _, configuration in
            let echo = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                return try client.request("ping", body: ["n": 1], as: Echo.self)
            }
            #expect(echo.onBusThread == false)
        }
    }

    @Test func refusesAnUnknownKey() async throws {
        try await withEchoServer { server, configuration in
            var stranger = configuration
            stranger.keys = try CurveKeyPair.generate()
            let strangerConfiguration = stranger
            let code = try await offThePool {
                let client = try BusClient(configuration: strangerConfiguration)
                defer { client.close() }
                do {
                    _ = try client.request("ping", body: ["n": 1], as: Echo.self, timeout: .seconds(5))
                    return "answered"
                } catch let error as BusClientError {
                    return error.code
                }
            }
            #expect(code == "authentication_refused")
            var refusals = server.authentications.makeAsyncIterator()
            let event = await refusals.next()
            #expect(event?.accepted == false)
            #expect(event?.publicKey == strangerConfiguration.keys?.publicKey)
        }
    }

    @Test(arguments: BusTransport.allCases)
    func answersAWrongNumberOfFramesWithAnError(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport) { _, configuration in
            let (reply, echo) = try await offThePool {
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                let reply = try client.requestRaw([Data("{}".utf8), Data("{}".utf8)])
                // The server keeps serving.
                return (reply, try client.request("ping", body: ["n": 2], as: Echo.self))
            }
            #expect(String(decoding: reply, as: UTF8.self).contains(#""code":"bad_frames""#))
            #expect(echo.op == "ping")
        }
    }

    @Test(arguments: BusTransport.allCases)
    func followerDropsOldUpdatesAndResynchronisesOnAGap(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport) { server, configuration in
            let (applied, snapshots, resyncs) = try await offThePool { try follow(server, configuration) }
            #expect(applied == [3, 6])
            #expect(snapshots == 2)
            #expect(resyncs.count == 1 && resyncs[0].contains("expected 4, received 5"))
        }
    }

    /// With `ZMQ_XPUB_MANUAL`, a subscription the server does not allow delivers nothing, a
    /// shorter prefix included, and the refusal is reported.
    @Test(arguments: BusTransport.allCases)
    func refusedSubscriptionsReceiveNothing(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport) { server, configuration in
            let received = try await offThePool { () throws -> [String] in
                let client = try BusClient(configuration: configuration)
                defer { client.close() }
                for topic in ["", "incident/", "incident/7/other/", BusProtocol.heartbeatTopic] { try client.subscribe(topic) }
                // A heartbeat proves the subscriptions have been handled.
                while try client.nextEvent(timeout: .seconds(5))?.topic != BusProtocol.heartbeatTopic {}
                for agency in ["other", "siamu"] {
                    server.publish(topic: "incident/7/\(agency)/", payload: BusProtocol.event(channel: "incident/7", seq: 1, type: "test", body: ["x": 1]))
                }
                var topics: [String] = []
                let deadline = ContinuousClock.now + .milliseconds(400)
                while ContinuousClock.now < deadline, let event = try client.nextEvent(timeout: .milliseconds(100)) {
                    if event.topic != BusProtocol.heartbeatTopic { topics.append(event.topic) }
                }
                return topics
            }
            #expect(received.isEmpty)
            var refused: [String] = []
            for await event in server.subscriptions {
                #expect(!event.granted && event.identity == BusIdentity(agency: "siamu"))
                refused.append(event.topic)
                if refused.count == 3 { break }
            }
            #expect(refused == ["", "incident/", "incident/7/other/"])
        }
    }

    /// A batched subscription (`batch:TOPIC`) gets the channel's events several to a message,
    /// all of them and in order, alongside a plain subscriber of the same channel; it is decided
    /// as the channel's (another agency's channel, batched or not, gets nothing).
    @Test(arguments: BusTransport.allCases)
    func aBatchedSubscriberGetsEveryEventOfItsChannelInOrder(over transport: BusTransport) async throws {
        try await withEchoServer(over: transport) { server, configuration in
            let (plain, batched) = try await offThePool { () throws -> ([Int64], [Int64]) in
                let plainClient = try BusClient(configuration: configuration)
                let batchClient = try BusClient(configuration: configuration)
                defer { plainClient.close(); batchClient.close() }
                try plainClient.subscribe("incident/7/siamu/")
                for topic in [EventBatch.prefix + "incident/7/siamu/", EventBatch.prefix + "incident/7/other/", BusProtocol.heartbeatTopic] {
                    try batchClient.subscribe(topic)
                }
                try plainClient.subscribe(BusProtocol.heartbeatTopic)
                for client in [plainClient, batchClient] { while try client.nextEvent(timeout: .seconds(5))?.topic != BusProtocol.heartbeatTopic {} }
                for seq in 1...300 {
                    for agency in ["other", "siamu"] {
                        server.publish(topic: "incident/7/\(agency)/", payload: BusProtocol.event(channel: "incident/7", seq: Int64(seq), type: "test", body: ["x": seq]))
                    }
                }
                func collect(_ client: BusClient) throws -> [Int64] {
                    var seqs: [Int64] = []
                    while seqs.count < 300, let event = try client.nextEvent(timeout: .seconds(5)) {
                        if event.topic != BusProtocol.heartbeatTopic {
                            #expect(event.topic == "incident/7/siamu/" && event.channel == "incident/7")
                            seqs.append(event.seq)
                        }
                    }
                    return seqs
                }
                return (try collect(plainClient), try collect(batchClient))
            }
            // The batched client subscribed to no plain topic: what it got came in batches.
            #expect(plain == Array(1...300) && batched == Array(1...300), "every event, in order, either way")
        }
    }

    /// The server sends a topic's events one by one only to prefixes someone subscribed to so,
    /// and builds batches only for batched ones; a subscription is never forgotten (erring toward sending).
    @Test func grantedSubscriptionsSayWhichFormsOfATopicAnyoneWants() {
        var granted = GrantedSubscriptions()
        #expect(granted.audience(of: "incident/7/siamu/") == (plain: false, batched: false))
        granted.grant("incident/7/siamu/")
        granted.grant("batch:incident/")
        #expect(granted.audience(of: "incident/7/siamu/") == (plain: true, batched: true))
        #expect(granted.audience(of: "incident/8/siamu/") == (plain: false, batched: true))
        #expect(granted.audience(of: "audit/") == (plain: false, batched: false))
        granted.grant("audit/")
        #expect(granted.audience(of: "audit/") == (plain: true, batched: false), "a new grant is seen at once, cache or not")
    }

    @Test func aBatchSplitsIntoItsEventsWithoutDecodingThem() {
        let events = [#"{"a":"]},{\"[","b":[1,{"c":2}]}"#, #"{"seq":2}"#].map { Data($0.utf8) }
        #expect(EventBatch.split(EventBatch.join(events)) == events)
        #expect(EventBatch.split(Data(" [ {\"x\":1} , {\"y\":[]} ] ".utf8))?.count == 2)
        #expect(EventBatch.split(Data("[]".utf8)) == [])
        for broken in ["", "{}", "[{}", "[{},]", "[1]", "[{\"a\":\"}]", "[{}] x"] {
            #expect(EventBatch.split(Data(broken.utf8)) == nil, "\(broken)")
        }
        #expect(EventBatch.channelTopic(of: "batch:incident/7/siamu/") == "incident/7/siamu/" && EventBatch.channelTopic(of: "incident/7/") == "incident/7/")
    }

    /// Each in-process attachment is its own identity: requests carry it, subscriptions are
    /// checked against it, and an event reaches only the attachments allowed its topic.
    /// A request submitted within the process (as the console does for a logged-in user) goes
    /// through the same stream as a client's, marked with its origin, and its reply comes back
    /// to the caller, not over the network; once the server stops, a submission is answered at once.
    @Test func submittedRequestsCarryTheirOriginAndGetTheirReply() async throws {
        let server = try BusServer(
            configuration: BusServerConfiguration(
                commandEndpoint: "tcp://127.0.0.1:0", eventEndpoint: "tcp://127.0.0.1:0", serverKeys: try CurveKeyPair.generate()),
            logger: Logger(label: "test"), authorize: { _ in nil }, authorizeSubscription: { _, _ in false })
        try server.start()
        let responder = Task {
            for await request in server.requests {
                let header = try BusProtocol.decodeHeader(request.payload)
                let said = Echo(agency: "\(request.agency)/\(request.user ?? "")/\(request.origin ?? "bus")", op: header.op)
                server.reply(to: request.peer, payload: BusProtocol.successReply(id: header.id, result: said))
            }
        }
        defer { responder.cancel() }
        let frame = Data(#"{"v": 1, "id": "c-1", "op": "incident.list", "body": {}}"#.utf8)
        let reply = await server.submit(frame, as: BusIdentity(agency: "crisis-centre", user: "cc.op"), origin: "console")
        struct Reply: Decodable { var id: String?; var ok: Bool; var result: Echo? }
        let decoded = try BusProtocol.decoder.decode(Reply.self, from: reply)
        #expect(decoded.ok && decoded.id == "c-1", "\(String(decoding: reply, as: UTF8.self))")
        #expect(decoded.result?.agency == "crisis-centre/cc.op/console" && decoded.result?.op == "incident.list")
        server.stop()
        let afterStop = await server.submit(frame, as: BusIdentity(agency: "crisis-centre", user: "cc.op"), origin: "console")
        #expect(String(decoding: afterStop, as: UTF8.self).contains("server_busy"), "\(String(decoding: afterStop, as: UTF8.self))")
    }

    @Test func inProcessAttachmentsKeepTheirIdentities() async throws {
        let server = try BusServer(
            configuration: BusServerConfiguration(
                commandEndpoint: "tcp://127.0.0.1:0", eventEndpoint: "tcp://127.0.0.1:0", serverKeys: try CurveKeyPair.generate(),
                heartbeatInterval: .milliseconds(100)),
            logger: Logger(label: "test"), authorize: { _ in nil },
            authorizeSubscription: { identity, topic in topic == "incident/7/\(identity.agency)/" })
        let agencies = ["siamu", "police"]
        let configurations = try agencies.map { try server.attachInProcess(as: BusIdentity(agency: $0, user: "desk")) }
        try server.start()
        let responder = Task {
            for await request in server.requests {
                let header = try BusProtocol.decodeHeader(request.payload)
                server.reply(to: request.peer, payload: BusProtocol.successReply(id: header.id, result: Echo(agency: "\(request.agency)/\(request.user ?? "")", op: header.op)))
            }
        }
        defer {
            server.stop()
            responder.cancel()
        }
        let results = try await offThePool { () throws -> [(String, [String])] in
            let clients = try configurations.map { try BusClient(configuration: $0) }
            defer { clients.forEach { $0.close() } }
            var answers: [String] = []
            for client in clients {
                answers.append(try client.request("ping", body: ["n": 1], as: Echo.self).agency)
                for agency in agencies { try client.subscribe("incident/7/\(agency)/") }
                try client.subscribe(BusProtocol.heartbeatTopic)
                while try client.nextEvent(timeout: .seconds(5))?.topic != BusProtocol.heartbeatTopic {}
            }
            for agency in agencies {
                server.publish(topic: "incident/7/\(agency)/", payload: BusProtocol.event(channel: "incident/7", seq: 1, type: "test", body: ["x": 1]))
            }
            return try zip(answers, clients).map { answer, client in
                var topics: [String] = []
                let deadline = ContinuousClock.now + .milliseconds(400)
                while ContinuousClock.now < deadline, let event = try client.nextEvent(timeout: .milliseconds(100)) {
                    if event.topic != BusProtocol.heartbeatTopic { topics.append(event.topic) }
                }
                return (answer, topics)
            }
        }
        // The loop's sockets are fixed once it runs.
        #expect(throws: ZMQError.self) { try server.attachInProcess(as: BusIdentity(agency: "late")) }
        #expect(results.map(\.0) == ["siamu/desk", "police/desk"])
        #expect(results.map(\.1) == [["incident/7/siamu/"], ["incident/7/police/"]])
    }

    private func follow(_ server: BusServer, _ configuration: BusClientConfiguration) throws -> ([Int64], Int, [String]) {
            let client = try BusClient(configuration: configuration)
            defer { client.close() }
            let topic = "incident/7/siamu/"
            func publish(_ seq: Int64) {
                server.publish(topic: topic, payload: BusProtocol.event(channel: "incident/7", seq: seq, type: "test", body: ["seq": seq]))
            }
            var snapshots = 0
            var applied: [Int64] = []
            var resyncs: [String] = []
            try client.follow(
                topic: topic,
                snapshot: { held in
                    snapshots += 1
                    // The first snapshot holds nothing yet; the resynchronisation says it had 3.
                    #expect(held == (snapshots == 1 ? nil : 3))
                    if snapshots == 1 {
                        // State at 2; then 1 and 2 (already in the snapshot), 3, a lost 4, and 5 arrive.
                        for seq: Int64 in [1, 2, 3, 5] { publish(seq) }
                        return 2
                    }
                    publish(6)
                    return 5
                },
                onUpdate: { event in
                    applied.append(event.seq)
                    return event.seq == 6 ? .stop : .keepFollowing
                },
                onResync: { resyncs.append($0) })
            return (applied, snapshots, resyncs)
    }
}

@Suite("CURVE certificates")
struct CurveCertificateTests {
    @Test func roundTripsInTheZeroMQCertificateFormat() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-certs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = try CurveKeyPair.generate()
        try CurveCertificate.write(keys, name: "siamu", to: folder)
        #expect(try CurveCertificate.read(folder.appendingPathComponent("siamu.key_secret")) == keys)
        let publicOnly = try CurveCertificate.read(folder.appendingPathComponent("siamu.key"))
        #expect(publicOnly.publicKey == keys.publicKey)
        #expect(publicOnly.secretKey == nil)
        let attributes = try FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent("siamu.key_secret").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func refusesMissingAndCorruptCertificates() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: CertificateError.missing(folder.appendingPathComponent("none.key").path)) {
            try CurveCertificate.read(folder.appendingPathComponent("none.key"))
        }
        let corrupt = folder.appendingPathComponent("bad.key")
        try Data("curve\n    public-key = \"too-short\"\n".utf8).write(to: corrupt)
        #expect(throws: CertificateError.invalidKey("public-key")) { try CurveCertificate.read(corrupt) }
        try Data("metadata\n".utf8).write(to: corrupt)
        #expect(throws: CertificateError.noPublicKey(corrupt.path)) { try CurveCertificate.read(corrupt) }
    }
}

@Suite("Protocol envelope")
struct BusProtocolTests {
    @Test(arguments: [
        ("not json", "bad_request"),
        (#"{"v":1,"op":"x"}"#, "bad_request"),
        (#"{"v":2,"id":"a","op":"x"}"#, "unsupported_version"),
        (#"{"v":1,"id":"","op":"x"}"#, "bad_request"),
        (#"{"v":"1","id":"a","op":"x"}"#, "bad_request"),
    ])
    func refusesMalformedHeaders(_ text: String, _ code: String) {
        let error = #expect(throws: BusProtocol.ErrorBody.self) { try BusProtocol.decodeHeader(Data(text.utf8)) }
        #expect(error?.code == code)
    }

    @Test func namesTheFieldAtFaultInABody() {
        struct Body: Decodable { var radiusMeters: Double }
        let error = #expect(throws: BusProtocol.ErrorBody.self) {
            try BusProtocol.decodeBody(Body.self, from: Data(#"{"v":1,"id":"a","op":"x","body":{"radius_meters":"far"}}"#.utf8))
        }
        #expect(error?.field == "body.radius_meters")
    }

    /// Strings a client or a result may carry: quotes, backslashes, slashes, every control
    /// character, and text beyond ASCII.
    static let awkwardStrings = [
        "1234-17", #"say "hi" \ back"#, "a/b", String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }), "Molenbeek-Saint-Jean – Sint-Jans-Molenbeek ✓",
        "\u{7F}\u{2028}",
    ]

    @Test(arguments: awkwardStrings)
    func writesTheEnvelopeAsTheCoderWould(_ text: String) throws {
        struct Body: Codable, Equatable { var radiusMeters: Double; var note: String }
        let body = Body(radiusMeters: 250, note: "north/south")
        let request = try BusProtocol.request(id: text, op: "cameras.select", body: body)
        #expect(request == (try BusProtocol.encoder.encode(BusProtocol.Request(id: text, op: "cameras.select", body: body))))
        let header = try BusProtocol.decodeHeader(request)
        #expect(header.id == text && header.op == "cameras.select")
        #expect(try BusProtocol.decodeBody(Body.self, from: request) == body)
        let result = Body(radiusMeters: 1.5, note: text)
        #expect(BusProtocol.successReply(id: text, result: result) == (try BusProtocol.encoder.encode(BusProtocol.Reply(id: text, ok: true, result: result, error: nil))))
    }
}

@Suite("ZeroMQ wrapper")
struct ZMQSocketTests {
    @Test func reportsBindFailuresWithTheirErrno() throws {
        let context = try ZMQContext()
        defer {
            context.shutdown()
            context.terminate()
        }
        let first = try ZMQSocket(context: context, type: .router)
        defer { first.close() }
        try first.bind("tcp://127.0.0.1:0")
        let taken = try first.lastEndpoint()
        let second = try ZMQSocket(context: context, type: .router)
        defer { second.close() }
        let inUse = #expect(throws: ZMQError.self) { try second.bind(taken) }
        #expect(inUse?.code == EADDRINUSE)
        #expect(inUse?.operation == "zmq_bind(\(taken))")
        let malformed = #expect(throws: ZMQError.self) { try second.bind("carrier-pigeon://loft") }
        #expect(malformed?.code == EPROTONOSUPPORT)
    }

    @Test func receivesNothingWithoutWaiting() throws {
        let context = try ZMQContext()
        defer {
            context.shutdown()
            context.terminate()
        }
        let socket = try ZMQSocket(context: context, type: .pair)
        defer { socket.close() }
        try socket.bind("inproc://idle")
        #expect(try socket.receive() == nil)
    }

    /// The poller sees messages as `zmq_poll` would: none while there is none, one when it comes,
    /// and one left behind by a read that stopped early, which the socket's descriptor no longer
    /// signals: a socket said to be used is asked again.
    @Test func thePollerSeesEveryMessageOfASocketItWasToldWasUsed() throws {
        let context = try ZMQContext()
        defer {
            context.shutdown()
            context.terminate()
        }
        let (reader, writer) = (try ZMQSocket(context: context, type: .pair), try ZMQSocket(context: context, type: .pair))
        defer { [reader, writer].forEach { $0.close() } }
        try reader.bind("inproc://poller")
        try writer.connect("inproc://poller")
        let poller = try ZMQPoller([reader])
        #expect(try poller.wait(timeoutMilliseconds: 20) == [false])
        try writer.send([Data("one".utf8)])
        #expect(try poller.wait(timeoutMilliseconds: 1_000) == [true])
        _ = try reader.receive()
        poller.used(reader)
        #expect(try poller.wait(timeoutMilliseconds: 20) == [false])
        // Two come; one is read.
        try writer.send([Data("two".utf8)])
        try writer.send([Data("three".utf8)])
        #expect(try poller.wait(timeoutMilliseconds: 1_000) == [true])
        #expect(try reader.receive()?.first?.data == Data("two".utf8))
        poller.used(reader)
        #expect(try poller.wait(timeoutMilliseconds: 20) == [true], "the second is still seen")
        #expect(try reader.receive()?.first?.data == Data("three".utf8))
    }
}

/// Any JSON value, read by the coder: the reference ``EnvelopeReader`` is checked against.
private enum AnyJSON: Decodable, Equatable {
    case null, boolean(Bool), number(Double), string(String), array([AnyJSON]), object([String: AnyJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .boolean(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([AnyJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: AnyJSON].self))
        }
    }
}

@Suite("Envelope reader")
struct EnvelopeReaderTests {
    /// Pieces of JSON text, awkward ones among them, from which random envelopes are made.
    static let scalars = [
        #""a""#, #""""#, #""say \"hi\" \\ \/ back\n\t""#, #""\u00e9t\u00e9""#, "\"Ixelles – Elsene\"", #""\b\f\r""#, "0", "-0", "17", "-250",
        "1.5", "2e3", "-1.25E-2", "9223372036854775807", "92233720368547758070", "true", "false", "null",
    ]

    /// A random JSON value of at most `depth` levels.
    static func value(_ random: inout some RandomNumberGenerator, depth: Int) -> String {
        switch depth > 0 ? Int.random(in: 0..<4, using: &random) : 0 {
        case 1: return "[" + (0..<Int.random(in: 0..<4, using: &random)).map { _ in value(&random, depth: depth - 1) }.joined(separator: ",") + "]"
        case 2:
            let keys = ["x", "radius_meters", "note", "a b", "x"].shuffled(using: &random).prefix(Int.random(in: 0..<4, using: &random))
            return "{" + keys.map { "\"\($0)\": " + value(&random, depth: depth - 1) }.joined(separator: " ,") + "}"
        default: return scalars.randomElement(using: &random)!
        }
    }

    /// A random request envelope: its members in any order, some missing, some odd.
    static func envelope(_ random: inout some RandomNumberGenerator) -> String {
        var members = [
            "\"v\":" + ["1", "2", "1.0", "\"1\"", "1e0"].randomElement(using: &random)!,
            "\"id\":" + [#""42-7""#, #""""#, "7", #""a\"b""#, #""\u0041""#].randomElement(using: &random)!,
            "\"op\": " + [#""session.identity""#, #""cameras.select""#, "null"].randomElement(using: &random)!,
            "\"body\" :" + value(&random, depth: 3),
        ].shuffled(using: &random)
        if Bool.random(using: &random) { members.removeLast() }
        if Int.random(in: 0..<8, using: &random) == 0 { members.append(members[0]) }
        return " {" + members.joined(separator: ",\n") + "} "
    }

    @Test func agreesWithTheCoderOnRandomAndDamagedEnvelopes() throws {
        var random = TestRandom(seed: 2026_12_05)
        var readFast = 0
        for round in 0..<4_000 {
            var bytes = Array(Self.envelope(&random).utf8)
            // Every other envelope is damaged: a byte removed, replaced or added.
            if round % 2 == 1 {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.remove(at: at)
                case 1: bytes[at] = Array(#"{}[]",:\ 0e-"#.utf8).randomElement(using: &random)!
                default: bytes.insert(Array(#"{}[]",:\ 0e-"#.utf8).randomElement(using: &random)!, at: at)
                }
            }
            let payload = Data(bytes)
            let reference = try? JSONDecoder().decode(AnyJSON.self, from: payload)
            let header = try? JSONDecoder().decode(BusProtocol.RequestHeader.self, from: payload)
            guard let members = EnvelopeReader.members(of: payload) else { continue }
            readFast += 1
            // Whatever the reader reads, the coder reads the same way.
            guard case .object(let object)? = reference else {
                Issue.record("read \(String(decoding: payload, as: UTF8.self)), which the coder refuses")
                continue
            }
            #expect(Set(members.keys) == Set(object.keys))
            for (key, member) in members {
                switch member.value {
                case .string(let text): #expect(object[key] == .string(text))
                case .integer(let number): #expect(object[key] == .number(Double(number)))
                case .boolean(let flag): #expect(object[key] == .boolean(flag))
                case .other: #expect(try JSONDecoder().decode(AnyJSON.self, from: payload[member.range]) == object[key])
                }
            }
            if case .integer(let v)? = members["v"]?.value, case .string(let id)? = members["id"]?.value, case .string(let op)? = members["op"]?.value {
                #expect(header.map { [$0.v == v, $0.id == id, $0.op == op] } == [true, true, true])
            }
        }
        // The fast path is taken for most envelopes, not left to the coder.
        #expect(readFast > 1_000)
    }

    @Test func leavesToTheCoderWhatItDoesNotReadExactly() {
        for text in [
            #"{"v":1,"id":"\u0041","op":"x"}"#, "{\"v\":1,\"id\":\"é\",\"op\":\"x\"}", #"{"v":1,"v":2,"id":"a","op":"x"}"#,
            #"{"v":1,"id":"a","op":"x","body":{"k":1,"k":2}}"#, #"{"v":1,"id":"a","op":"x","body":{"k\n":1}}"#,
            #"{"v":1,"id":"a","op":"x"} x"#, #"{"v":01,"id":"a","op":"x"}"#,
            #"{"v":1,"id":"a","op":"x","body":"# + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}",
        ] {
            #expect(EnvelopeReader.members(of: Data(text.utf8)) == nil, "\(text)")
        }
    }
}
