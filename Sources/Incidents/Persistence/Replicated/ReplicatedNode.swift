internal import CDqlite
import Foundation

/// This process's member of a dqlite cluster: a Raft node that replicates the Vigil database
/// (dqlite, the Raft-replicated SQLite of LXD and MicroK8s, in its own thread) and serves SQL
/// to clients at its address. The cluster's leader is the one node that commits writes; the
/// others pass a client's statements on to it.
///
/// Members are numbered from 1: member 1 starts a new cluster on first start, the others join
/// it (``join(through:)``) as voters. Each member keeps its Raft log in its own folder.
///
/// The node itself listens only on an abstract Unix socket of this host; its Raft address is
/// served by the cluster's ``ReplicationTransport``, and every connection it makes to another
/// member goes through that transport too (dqlite's connect function).
public final class ReplicatedNode: @unchecked Sendable {
    /// A member: its number and its `HOST:PORT`.
    public struct Member: Sendable, Equatable, CustomStringConvertible {
        public var id: UInt64
        public var address: String

        public init(id: UInt64, address: String) {
            self.id = id
            self.address = address
        }

        public var description: String { "\(id)@\(address)" }
    }

    public let member: Member
    public let transport: any ReplicationTransport
    /// Where dqlite listens: an abstract Unix socket named after the process and the member (and
    /// a random number, so that a member started again in the same process takes a new name).
    let localAddress: String
    // The C node; touched only by start and stop, which callers do not run at once.
    private let node: OpaquePointer
    private var running = false
    /// What dqlite's connect function is handed (unretained: the node is destroyed first).
    private let connector: Connector

    /// Creates the node: its Raft log in `folder` (created if need be), its address served
    /// through `transport` once started.
    ///
    /// - Parameter latency: the network's one-way latency: dqlite's heartbeat is 1.5 times it
    ///   and its election timeout 15 times (20 ms: a new leader 0.3–0.6 s after one dies).
    public init(member: Member, folder: URL, transport: any ReplicationTransport, latency: Duration = .milliseconds(20)) throws(SQLiteError) {
        self.member = member
        self.transport = transport
        localAddress = "@vigil-dqlite-\(getpid())-\(member.id)-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw SQLiteError(code: DqliteFailure.unreachable, message: "cannot create \(folder.path): \(error.localizedDescription)", sql: nil)
        }
        connector = Connector(transport: transport)
        var raw: OpaquePointer?
        let created = dqlite_node_create(member.id, member.address, folder.path, &raw)
        guard created == 0, let raw else {
            let message = raw.map { String(cString: dqlite_node_errmsg($0)) } ?? "dqlite_node_create failed"
            if let raw { dqlite_node_destroy(raw) }
            throw SQLiteError(code: created, message: "dqlite member \(member): \(message)", sql: nil)
        }
        node = raw
        let milliseconds = max(1, UInt32(latency.components.seconds * 1000) + UInt32(latency.components.attoseconds / 1_000_000_000_000_000))
        for (status, what) in [
            (dqlite_node_set_bind_address(node, localAddress), "bind \(localAddress)"),
            (dqlite_node_set_network_latency_ms(node, milliseconds), "set its latency"),
            (dqlite_node_set_connect_func(node, Connector.connect, Unmanaged.passUnretained(connector).toOpaque()), "set its connect function"),
        ] where status != 0 {
            // deinit destroys the node: an initialiser that throws once every property is set runs it.
            throw SQLiteError(code: status, message: "dqlite member \(member): cannot \(what): \(String(cString: dqlite_node_errmsg(node)))", sql: nil)
        }
    }

    deinit {
        stop()
        dqlite_node_destroy(node)
    }

    /// Starts the node's thread and serves its Raft address; it serves clients once this returns.
    public func start() throws(SQLiteError) {
        guard !running else { return }
        let status = dqlite_node_start(node)
        guard status == 0 else {
            throw SQLiteError(code: status, message: "dqlite member \(member) cannot start: \(String(cString: dqlite_node_errmsg(node)))", sql: nil)
        }
        do {
            try transport.serve(member.address, forwardingTo: localAddress)
        } catch {
            dqlite_node_stop(node)
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite member \(member) cannot serve \(member.address): \(error)", sql: nil)
        }
        running = true
    }

    /// Stops serving and ends the node's thread once its requests are done.
    public func stop() {
        guard running else { return }
        running = false
        transport.stopServing(member.address)
        dqlite_node_stop(node)
    }

    /// The leader as this node knows it, asked over its own socket; nil when there is none
    /// (an election runs, or this node is cut off and has not heard of one).
    public func leader(timeout: Duration = .seconds(1)) -> Member? {
        guard let client = try? DqliteClient(local: localAddress, timeout: timeout), let leader = try? client.leader() else { return nil }
        return Member(id: leader.id, address: leader.address)
    }

    /// The leader as the first of `addresses` that knows one says; nil if none does.
    public static func leader(askingAny addresses: [String], through transport: any ReplicationTransport, timeout: Duration = .seconds(1)) -> Member? {
        for address in addresses {
            if let client = try? DqliteClient(address: address, through: transport, timeout: timeout), let leader = try? client.leader() {
                return Member(id: leader.id, address: leader.address)
            }
        }
        return nil
    }

    /// Whether this node leads the cluster now.
    public func isLeader(timeout: Duration = .seconds(1)) -> Bool {
        leader(timeout: timeout)?.id == member.id
    }

    /// Makes this node a voter of the cluster that `peers` belong to, through its leader; done
    /// at once if it already is one. Throws if no peer knows a leader.
    public func join(through peers: [String], timeout: Duration = .seconds(2)) throws(SQLiteError) {
        var lastError = SQLiteError(code: DqliteFailure.unreachable, message: "no peer to join through", sql: nil)
        for peer in peers where peer != member.address {
            do {
                guard let leader = try DqliteClient(address: peer, through: transport, timeout: timeout).leader() else {
                    lastError = SQLiteError(code: DqliteFailure.notLeader, message: "\(peer) knows no leader yet", sql: nil)
                    continue
                }
                let client = try DqliteClient(address: leader.address, through: transport, timeout: timeout)
                let known = try client.cluster().first { $0.id == member.id }
                if known == nil { try client.add(id: member.id, address: member.address) }
                if known?.role != .voter { try client.assign(member.id, role: .voter) }
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }
}

/// dqlite's connect function: each Raft connection to another member, made by the transport.
/// dqlite calls it on a thread of its own, and may block it.
private final class Connector {
    let transport: any ReplicationTransport

    init(transport: any ReplicationTransport) {
        self.transport = transport
    }

    static let connect: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<Int32>?) -> Int32 = { context, address, fd in
        guard let context, let address, let fd else { return DQLITE_ERROR }
        let connector = Unmanaged<Connector>.fromOpaque(context).takeUnretainedValue()
        guard let socket = try? connector.transport.connect(to: String(cString: address), timeout: .seconds(2)) else { return DQLITE_ERROR }
        fd.pointee = socket
        return 0
    }
}
