import Foundation

/// The wire between a cluster's members: how this process reaches the dqlite member at a Raft
/// address (dqlite's own Raft connections and Vigil's SQL clients alike), and how a member's
/// Raft address is served. The cluster's transport (`ClusterLink`) runs it over mutual TLS
/// with the cluster's key: dqlite itself neither encrypts nor authenticates its connections.
public protocol ReplicationTransport: AnyObject, Sendable {
    /// A connected stream socket whose bytes reach the member at `address` (`HOST:PORT`); the
    /// caller owns and closes it, and keeps the transport as long as it uses it. Throws when
    /// the member cannot be reached, or is not of this cluster, within `timeout`.
    func connect(to address: String, timeout: Duration) throws -> Int32

    /// Serves `address` for the member whose dqlite listens at `local` (an abstract Unix
    /// socket, `@NAME`) until ``stopServing(_:)``.
    func serve(_ address: String, forwardingTo local: String) throws

    func stopServing(_ address: String)
}

/// The local end of a member: dqlite listens on an abstract Unix socket (`@NAME`), reachable only
/// from this host's network namespace, and the transport serves its Raft address.
public enum LocalDqliteSocket {
    /// A connected socket to `@NAME`, or the reason it is not.
    public static func connect(_ address: String) throws(SQLiteError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SQLiteError(code: DqliteFailure.unreachable, message: "socket: \(String(cString: strerror(errno)))", sql: nil) }
        let connected: Int32
        do {
            connected = try withSocketAddress(address) { Glibc.connect(fd, $0, $1) }
        } catch {
            close(fd)
            throw error
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite member at \(address): connect: \(reason)", sql: nil)
        }
        return fd
    }

    /// Calls `body` (`connect`, `bind`) with the socket address of `@NAME` and its length.
    static func withSocketAddress(_ address: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) throws(SQLiteError) -> Int32 {
        guard address.hasPrefix("@"), address.utf8.count < 100 else {
            throw SQLiteError(code: DqliteFailure.unreachable, message: "\(address) is not an abstract socket (@NAME)", sql: nil)
        }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        // An abstract name: a NUL, then the name, and the length says where it ends.
        let name = Array(address.utf8.dropFirst())
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { path in
            path[0] = 0
            for (index, byte) in name.enumerated() { path[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
        return withUnsafePointer(to: &socketAddress) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}
