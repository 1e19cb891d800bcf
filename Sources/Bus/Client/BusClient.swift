internal import CZeroMQ
import Foundation

/// Where a client connects and how it proves who it is.
public struct BusClientConfiguration: Sendable {
    public var commandEndpoint: String
    public var eventEndpoint: String
    /// The server's Z85 public key, from its public certificate (unused in process).
    public var serverPublicKey: String
    /// This agency's key pair, from its secret certificate; nil in process.
    public var keys: CurveKeyPair?
    /// In process only: the server's own context, since `inproc://` reaches only sockets of the
    /// same context. The endpoints, which ``BusServer/attachInProcess(as:)`` made for one
    /// identity, say who the client is; no CURVE is involved. Only the server sets it.
    public private(set) var context: ZMQContext?

    /// A client of a server across the network (`tcp://`, CURVE).
    public init(commandEndpoint: String, eventEndpoint: String, serverPublicKey: String, keys: CurveKeyPair) {
        self.commandEndpoint = commandEndpoint
        self.eventEndpoint = eventEndpoint
        self.serverPublicKey = serverPublicKey
        self.keys = keys
    }

    /// A client in the server's own process (`inproc://`).
    init(inProcessCommand commandEndpoint: String, events eventEndpoint: String, context: ZMQContext) {
        self.commandEndpoint = commandEndpoint
        self.eventEndpoint = eventEndpoint
        serverPublicKey = ""
        self.context = context
    }
}

/// A synchronous client of the bus, for the CLI, scripts and tests: requests on a DEALER,
/// events on a SUB, both over CURVE.
///
/// - Important: Not thread-safe: use one client from one thread. Call ``close()`` when done.
public final class BusClient {
    private let configuration: BusClientConfiguration
    private let context: ZMQContext
    private let command: ZMQSocket
    private let ownsContext: Bool
    private let commandMonitor: ZMQSocket?
    private var subscriber: ZMQSocket?
    /// The rest of a batch already received, handed out before the next message is read.
    private var pendingEvents: [BusEvent] = []
    private var subscriberMonitor: ZMQSocket?
    private var closed = false
    private var nextRequestNumber = 0

    /// The event endpoint this client subscribes on.
    public var eventEndpoint: String { configuration.eventEndpoint }

    public init(configuration: BusClientConfiguration) throws(BusClientError) {
        self.configuration = configuration
        ownsContext = configuration.context == nil
        if ownsContext, configuration.keys?.secretKey == nil {
            throw .protocolViolation("the client certificate has no secret-key")
        }
        do {
            if let shared = configuration.context { context = shared } else { context = try ZMQContext() }
            command = try ZMQSocket(context: context, type: .dealer)
            commandMonitor = try Self.secure(command, configuration: configuration, context: context)
            try command.connect(configuration.commandEndpoint)
        } catch {
            throw .transport(error)
        }
    }

    deinit {
        close()
    }

    /// Closes the sockets, and the context unless it is the server's. Idempotent: terminating a
    /// libzmq context twice blocks.
    public func close() {
        guard !closed else { return }
        closed = true
        [command, commandMonitor, subscriber, subscriberMonitor].forEach { $0?.close() }
        subscriber = nil
        subscriberMonitor = nil
        guard ownsContext else { return }
        context.shutdown()
        context.terminate()
    }

    /// Makes `socket` a CURVE client with a monitor of its handshakes, or leaves it as it is in
    /// process (no handshake happens over `inproc://`, so nothing to monitor: nil).
    private static func secure(_ socket: ZMQSocket, configuration: BusClientConfiguration, context: ZMQContext) throws(ZMQError) -> ZMQSocket? {
        try socket.set(ZMQ_MAXMSGSIZE, Int64(16 * 1024 * 1024))
        guard configuration.context == nil, let keys = configuration.keys else { return nil }
        try socket.makeCurveClient(serverKey: configuration.serverPublicKey, publicKey: keys.publicKey, secretKey: keys.secretKey ?? "")
        return try monitor(socket, context: context)
    }

    // MARK: Commands

    /// Sends one request and waits for its reply.
    ///
    /// - Returns: the decoded `result` member of a successful reply.
    /// - Throws: ``BusClientError/remote(_:)`` for an error reply; `serverUnreachable` after `timeout`;
    ///   `authenticationRefused` when the server refuses this agency's key.
    public func request<Body: Encodable, Result: Decodable>(
        _ operation: String, body: Body, as: Result.Type, timeout: Duration = .seconds(5)
    ) throws(BusClientError) -> Result {
        let id = nextRequestID()
        let payload: Data
        do {
            payload = try BusProtocol.request(id: id, op: operation, body: body)
        } catch {
            throw .protocolViolation("cannot encode \(operation): \(error)")
        }
        let reply = try exchange(payload, id: id, as: Result.self, timeout: timeout)
        if reply.ok, let result = reply.result { return result }
        if !reply.ok, let error = reply.error { throw .remote(error) }
        throw .protocolViolation("the reply to \(operation) has neither a valid result nor an error")
    }

    /// The process's id and a count: unique on the connection, and across clients of one process.
    private func nextRequestID() -> String {
        nextRequestNumber += 1
        return "\(Self.processID)-\(nextRequestNumber)"
    }

    /// Read once: each read is a system call.
    private static let processID = ProcessInfo.processInfo.processIdentifier

    /// Sends a request without waiting for its reply (read it with ``receiveMessage(timeout:)``,
    /// on a connection where other messages arrive too); returns its id.
    public func send<Body: Encodable>(_ operation: String, body: Body) throws(BusClientError) -> String {
        let id = nextRequestID()
        do {
            try command.send([try BusProtocol.request(id: id, op: operation, body: body)], wait: false)
        } catch let error as ZMQError {
            throw .transport(error)
        } catch {
            throw .protocolViolation("cannot encode \(operation): \(error)")
        }
        return id
    }

    /// The next message of any shape on the command connection (a media endpoint streams
    /// two-frame messages after its reply), or nil after `timeout`.
    public func receiveMessage(timeout: Duration) throws(BusClientError) -> [Data]? {
        try receive(from: command, monitor: commandMonitor, endpoint: configuration.commandEndpoint, timeout: timeout) { frames in frames.map(\.data) }
    }

    /// Sends raw bytes as one request frame and returns the raw reply frame (for tests of bad input).
    public func requestRaw(_ frames: [Data], timeout: Duration = .seconds(5)) throws(BusClientError) -> Data {
        do {
            try command.send(frames, wait: false)
        } catch {
            throw .transport(error)
        }
        guard let reply = try waitForReply(timeout: timeout) else {
            throw .serverUnreachable(endpoint: configuration.commandEndpoint, seconds: timeout.seconds)
        }
        return reply
    }

    private struct ReplyHeader: Decodable {
        var v: Int
        var id: String?
        var ok: Bool
        var error: BusProtocol.ErrorBody?
    }

    private struct ReplyEnvelope<Result: Decodable>: Decodable {
        var id: String?
        var ok: Bool
        var error: BusProtocol.ErrorBody?
        var result: Result?
    }

    /// Sends a request and waits for its reply, decoded in one pass (a result that does not
    /// decode as `Result` comes back as nil).
    private func exchange<Result: Decodable>(
        _ payload: Data, id: String, as: Result.Type, timeout: Duration
    ) throws(BusClientError) -> ReplyEnvelope<Result> {
        do {
            try command.send([payload], wait: false)
        } catch {
            throw .transport(error)
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let reply = try waitForReply(timeout: remaining) else {
                throw .serverUnreachable(endpoint: configuration.commandEndpoint, seconds: timeout.seconds)
            }
            var envelope = Self.readEnvelope(reply, as: Result.self) ?? (try? BusProtocol.decoder.decode(ReplyEnvelope<Result>.self, from: reply))
            if envelope == nil, let header = try? BusProtocol.decoder.decode(ReplyHeader.self, from: reply) {
                envelope = ReplyEnvelope(id: header.id, ok: header.ok, error: header.error, result: nil)
            }
            guard let envelope else { throw .protocolViolation("a reply is not a valid envelope") }
            // A reply to an earlier, timed-out request on this connection: skip it.
            if let replyID = envelope.id, replyID != id { continue }
            return envelope
        }
    }

    /// A reply's envelope read by ``EnvelopeReader``, its result and error by the coder; nil
    /// when the reader leaves the reply to the coder.
    private static func readEnvelope<Result: Decodable>(_ reply: Data, as: Result.Type) -> ReplyEnvelope<Result>? {
        guard let members = EnvelopeReader.members(of: reply), case .boolean(let ok)? = members["ok"]?.value else { return nil }
        let id: String?
        switch members["id"]?.value {
        case .string(let text)?: id = text
        case nil: id = nil
        default: return nil
        }
        func decode<T: Decodable>(_ type: T.Type, member: String) -> T? {
            guard let range = members[member]?.range else { return nil }
            return try? BusProtocol.decoder.decode(T.self, from: reply.subdata(in: (reply.startIndex + range.lowerBound)..<(reply.startIndex + range.upperBound)))
        }
        return ReplyEnvelope(id: id, ok: ok, error: decode(BusProtocol.ErrorBody.self, member: "error"), result: decode(Result.self, member: "result"))
    }

    private func waitForReply(timeout: Duration) throws(BusClientError) -> Data? {
        try receive(from: command, monitor: commandMonitor, endpoint: configuration.commandEndpoint, timeout: timeout) { frames in
            guard frames.count == 1 else { throw BusClientError.protocolViolation("a reply has \(frames.count) frames") }
            return frames[0].data
        }
    }

    /// Waits for one message on `socket` (watching its handshake monitor) and converts it.
    ///
    /// It blocks on the socket alone, in slices of at most ``monitorInterval``, and reads the
    /// monitor between them: a blocking read wakes sooner than `zmq_poll` over both sockets (which
    /// asks each socket for its events before and after it sleeps), and a refused handshake is
    /// still seen within a slice.
    private func receive<T>(
        from socket: ZMQSocket, monitor: ZMQSocket?, endpoint: String, timeout: Duration, _ convert: ([ZMQFrame]) throws -> T
    ) throws(BusClientError) -> T? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return nil }
            do {
                try socket.set(ZMQ_RCVTIMEO, Int32(max(1, min(remaining, Self.monitorInterval).milliseconds)))
                if let frames = try socket.receive(wait: true) { return try convert(frames) }
                if let monitor { try checkMonitor(monitor, endpoint: endpoint) }
            } catch let error as BusClientError {
                throw error
            } catch let error as ZMQError {
                throw .transport(error)
            } catch {
                throw .protocolViolation("\(error)")
            }
        }
    }

    /// How long a wait for a message goes without looking at the handshake monitor.
    static let monitorInterval = Duration.milliseconds(25)

    // MARK: Events

    /// Subscribes to a topic prefix on the event endpoint (connecting on first use).
    public func subscribe(_ topic: String) throws(BusClientError) {
        do {
            let socket = try subscriberSocket()
            try socket.set(ZMQ_SUBSCRIBE, topic)
        } catch {
            throw .transport(error)
        }
    }

    /// Drops the subscriber connection; the next ``subscribe(_:)`` makes a new one.
    public func resetSubscriptions() {
        pendingEvents.removeAll()
        subscriber?.close()
        subscriberMonitor?.close()
        subscriber = nil
        subscriberMonitor = nil
    }

    /// The next event, or nil when none arrives within `timeout`.
    public func nextEvent(timeout: Duration) throws(BusClientError) -> BusEvent? {
        guard let subscriber else { throw .protocolViolation("not subscribed") }
        if !pendingEvents.isEmpty { return pendingEvents.removeFirst() }
        let received = try receive(from: subscriber, monitor: subscriberMonitor, endpoint: configuration.eventEndpoint, timeout: timeout) { frames in
            guard frames.count == 2 else { throw BusClientError.protocolViolation("an event has \(frames.count) frames") }
            let topic = String(decoding: frames[0].data, as: UTF8.self)
            // A batched subscription's message holds several events (``EventBatch``), handed out one by one.
            guard topic.hasPrefix(EventBatch.prefix) else { return [try BusEvent(topic: topic, payload: frames[1].data)] }
            guard let events = EventBatch.split(frames[1].data) else { throw BusClientError.protocolViolation("a batch on \(topic) is not an array of events") }
            return try events.map { event throws(BusClientError) in try BusEvent(topic: EventBatch.channelTopic(of: topic), payload: event) }
        }
        guard var events = received, !events.isEmpty else { return nil }
        let first = events.removeFirst()
        pendingEvents.append(contentsOf: events)
        return first
    }

    private func subscriberSocket() throws(ZMQError) -> ZMQSocket {
        if let subscriber { return subscriber }
        let socket = try ZMQSocket(context: context, type: .sub)
        subscriberMonitor = try Self.secure(socket, configuration: configuration, context: context)
        try socket.connect(configuration.eventEndpoint)
        subscriber = socket
        return socket
    }

    // MARK: Handshake monitoring

    private static func monitor(_ socket: ZMQSocket, context: ZMQContext) throws(ZMQError) -> ZMQSocket {
        let endpoint = "inproc://vigil.client.monitor.\(UUID().uuidString)"
        try socket.monitor(endpoint, events: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        let monitor = try ZMQSocket(context: context, type: .pair)
        try monitor.connect(endpoint)
        return monitor
    }

    /// Reads monitor events; a failed handshake means the server will never answer this key.
    private func checkMonitor(_ monitor: ZMQSocket, endpoint: String) throws {
        while let frames = try monitor.receive() {
            // Frame 1: a 16-bit event id and a 32-bit value, in host byte order; frame 2: the endpoint.
            guard let first = frames.first?.data, first.count >= 2 else { continue }
            let event = UInt16(first[first.startIndex]) | UInt16(first[first.startIndex + 1]) << 8
            if Int32(event) & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0 {
                throw BusClientError.authenticationRefused(endpoint: endpoint)
            }
        }
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
