import Incidents
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The wire between a cluster's coordinators: every connection to a member's Raft address
/// (dqlite's Raft traffic, and the SQL that coordinators and tools send to the leader) is
/// mutual TLS 1.3, and both ends must show the cluster's key (``ClusterIdentity``). Without the
/// keys of `DATA/keys`, one can neither read what crosses nor speak to a member.
///
/// dqlite itself listens on an abstract Unix socket of its host; the link serves its Raft
/// address and joins each connection from a member to that socket. A connection this process
/// makes to a member goes out over TLS, and dqlite (or ``Database``) is handed the local end of
/// a socket pair whose other end the link joins to the TLS connection. The link's own member
/// is reached at its socket directly.
///
/// Every connection is one event loop's (a thread of the link's own), with both of its sockets.
public final class ClusterLink: ReplicationTransport {
    private let identity: ClusterIdentity
    private let serverContext: NIOSSLContext
    private let clientContext: NIOSSLContext
    private let group: MultiThreadedEventLoopGroup
    /// How long a connection made to a member here may take to show the cluster's key: one that
    /// has not is closed, so that strangers cannot hold connections open.
    private let handshakeLimit: TimeAmount
    /// The Raft addresses served here: their listening channel and dqlite's socket.
    private let served = Mutex<[String: (listener: any Channel, local: String)]>([:])

    /// - Parameters:
    ///   - secret: the cluster's secret, the same bytes on every member (the CURVE server secret
    ///     key of `DATA/keys`).
    ///   - handshakeLimit: how long a connection to a member served here may take to show the
    ///     cluster's key before it is closed.
    public init(secret: [UInt8], handshakeLimit: Duration = .seconds(10)) throws {
        self.handshakeLimit = .nanoseconds(handshakeLimit.nanoseconds)
        identity = try ClusterIdentity(secret: secret)
        serverContext = try NIOSSLContext(configuration: identity.tlsConfiguration(server: true))
        clientContext = try NIOSSLContext(configuration: identity.tlsConfiguration(server: false))
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    deinit {
        for (listener, _) in served.withLock({ Array($0.values) }) { listener.close(promise: nil) }
        group.shutdownGracefully { _ in }
    }

    public func serve(_ address: String, forwardingTo local: String) throws {
        let (host, port) = try Self.hostAndPort(address)
        let context = serverContext
        let identity = identity
        let limit = handshakeLimit
        let listener = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = NIOSSLServerHandler(context: context) { chain, verdict in
                        verdict.succeed(identity.isMember(chain) ? .certificateVerified : .failed)
                    }
                    try channel.pipeline.syncOperations.addHandlers(tls, Splice(.served(local: local, within: limit)))
                }
            }
            .bind(host: host, port: port).wait()
        served.withLock { $0[address] = (listener, local) }
    }

    public func stopServing(_ address: String) {
        guard let entry = served.withLock({ $0.removeValue(forKey: address) }) else { return }
        try? entry.listener.close().wait()
    }

    public func connect(to address: String, timeout: Duration) throws -> Int32 {
        if let local = served.withLock({ $0[address]?.local }) { return try LocalDqliteSocket.connect(local) }
        let (host, port) = try Self.hostAndPort(address)
        let loop = group.next()
        let handshake = loop.makePromise(of: Void.self)
        let context = clientContext
        let identity = identity
        let wait = TimeAmount.nanoseconds(timeout.nanoseconds)
        let remote: any Channel
        do {
            remote = try ClientBootstrap(group: loop)
                .connectTimeout(wait)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let tls = try NIOSSLClientHandler(context: context, serverHostname: nil) { chain, verdict in
                            verdict.succeed(identity.isMember(chain) ? .certificateVerified : .failed)
                        }
                        try channel.pipeline.syncOperations.addHandlers(tls, Splice(.dialled(handshake, within: wait)))
                    }
                }
                .connect(host: host, port: port).wait()
        } catch {
            handshake.fail(error)
            throw ClusterLinkError.unreachable(address, reason: "\(error)")
        }
        do {
            try handshake.futureResult.wait()
        } catch {
            remote.close(promise: nil)
            throw ClusterLinkError.handshakeFailed(address, reason: "\(error)")
        }
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            remote.close(promise: nil)
            throw ClusterLinkError.unreachable(address, reason: "socketpair: \(String(cString: strerror(errno)))")
        }
        do {
            let inside = try ClientBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Splice(.joined(to: remote))) }
                }
                .withConnectedSocket(ends[1]).wait()
            remote.pipeline.fireUserInboundEventTriggered(Splice.Partner(channel: inside))
        } catch {
            close(ends[0])
            close(ends[1])
            remote.close(promise: nil)
            throw ClusterLinkError.unreachable(address, reason: "\(error)")
        }
        return ends[0]
    }

    /// `IPV4:PORT` or `[IPV6]:PORT`.
    static func hostAndPort(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
            throw ClusterLinkError.badAddress(address)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ClusterLinkError.badAddress(address) }
        return (host, port)
    }
}

/// Joins two channels of one event loop: what one reads, the other writes; when one closes,
/// so does the other. A channel reads only while its partner can take more (its writes are
/// not piling up), so a slow reader slows its writer instead of filling memory.
///
/// The TLS channel's splice knows its partner only once the other channel exists: what it reads
/// before that is kept, and written when the partner arrives (``Partner``).
final class Splice: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Start {
        /// A TLS connection this process made: `handshake` is completed when TLS is up (or failed
        /// after `within`).
        case dialled(EventLoopPromise<Void>, within: TimeAmount)
        /// A TLS connection made to this member: once TLS is up, dqlite's socket at `local` is
        /// connected and becomes the partner. One that is not up `within` is closed.
        case served(local: String, within: TimeAmount)
        /// The socket-pair or dqlite side, whose partner is known from the start.
        case joined(to: any Channel)
    }

    /// The event that hands a splice its partner.
    struct Partner: Sendable {
        let channel: any Channel
    }

    /// The event that tells a splice its partner can take more.
    private struct PartnerWritable: Sendable {}

    private var start: Start?
    private var partner: (any Channel)?
    private var early: [ByteBuffer] = []
    private var closed = false
    private var readHeld = false

    init(_ start: Start) {
        self.start = start
        if case .joined(let channel) = start { partner = channel }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let limit: TimeAmount
        switch start {
        case .dialled(_, let within): limit = within
        case .served(_, let within): limit = within
        case .joined, nil: return
        }
        let channel = context.channel
        context.eventLoop.scheduleTask(in: limit) {
            channel.pipeline.fireUserInboundEventTriggered(HandshakeTimedOut())
        }
    }

    /// The event, and the error, of a handshake not done in time.
    private struct HandshakeTimedOut: Error, Sendable {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let partner { partner.write(bytes, promise: nil) } else { early.append(bytes) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func read(context: ChannelHandlerContext) {
        if let partner, !partner.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.pipeline.fireUserInboundEventTriggered(PartnerWritable()) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let event as TLSUserEvent:
            guard case .handshakeCompleted = event else { return context.fireUserInboundEventTriggered(event) }
            handshakeCompleted(context: context)
        case let event as Partner:
            partner = event.channel
            for bytes in early { event.channel.write(bytes, promise: nil) }
            early = []
            event.channel.flush()
            if closed { event.channel.close(promise: nil) }
        case is PartnerWritable:
            if readHeld {
                readHeld = false
                context.read()
            }
        case is HandshakeTimedOut:
            switch start {
            case .dialled(let handshake, _): handshake.fail(HandshakeTimedOut())
            case .served: break
            case .joined, nil: return  // done in time
            }
            start = nil
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func handshakeCompleted(context: ChannelHandlerContext) {
        switch start {
        case .dialled(let handshake, _):
            start = nil
            handshake.succeed(())
        case .served(let local, _):
            start = nil
            let channel = context.channel
            do {
                // dqlite's socket is on this host: the connect completes (or fails) at once.
                let socket = try LocalDqliteSocket.connect(local)
                ClientBootstrap(group: context.eventLoop)
                    .channelInitializer { inside in
                        inside.eventLoop.makeCompletedFuture { try inside.pipeline.syncOperations.addHandler(Splice(.joined(to: channel))) }
                    }
                    .withConnectedSocket(socket)
                    .whenComplete { result in
                        switch result {
                        case .success(let inside): channel.pipeline.fireUserInboundEventTriggered(Partner(channel: inside))
                        case .failure: channel.close(promise: nil)
                        }
                    }
            } catch {
                context.close(promise: nil)
            }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if case .dialled(let handshake, _) = start {
            start = nil
            handshake.fail(ChannelError.ioOnClosedChannel)
        }
        partner?.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .dialled(let handshake, _) = start {
            start = nil
            handshake.fail(error)
        }
        context.close(promise: nil)
    }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow
            ? (seconds < 0 ? .min : .max) : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
