import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One client connection to a dqlite node, blocking, confined to its caller's thread (as
/// ``SQLiteConnection`` is). Every call waits at most `timeout` for the node; a broken or
/// timed-out connection is closed and every later call fails with
/// ``DqliteFailure/unreachable``.
final class DqliteClient {
    /// A cluster member as dqlite lists it.
    struct Member: Sendable, Equatable {
        var id: UInt64
        var address: String
        var role: DqliteWire.Role?
    }

    let address: String
    private var socket: Int32

    /// Connects to `address` (`IPV4:PORT` or `[IPV6]:PORT`) and sends the protocol version.
    init(address: String, timeout: Duration = .seconds(2)) throws(SQLiteError) {
        self.address = address
        socket = try Self.connect(address, timeout: timeout)
        do {
            var version = DqliteWire.Body()
            version.uint64(DqliteWire.protocolVersion)
            try send(version.bytes)
        } catch {
            close(socket)
            throw error
        }
    }

    deinit {
        if socket >= 0 { close(socket) }
    }

    // MARK: Requests

    /// The leader this node knows of; nil while there is none (an election runs).
    func leader() throws(SQLiteError) -> Member? {
        var body = DqliteWire.Body()
        body.uint64(0)
        var reply = try exchange(.leader, body, expecting: .server)
        let id = try reply.uint64()
        let address = try reply.text()
        return id == 0 || address.isEmpty ? nil : Member(id: id, address: address, role: nil)
    }

    /// The members of the cluster, as the leader knows them.
    func cluster() throws(SQLiteError) -> [Member] {
        var body = DqliteWire.Body()
        body.uint64(1)
        var reply = try exchange(.cluster, body, expecting: .servers)
        let count = try reply.uint64()
        return try (0..<count).map { _ throws(SQLiteError) in
            Member(id: try reply.uint64(), address: try reply.text(), role: DqliteWire.Role(rawValue: try reply.uint64()))
        }
    }

    /// Adds a node as a spare (the leader only); ``assign(_:role:)`` then makes it a voter.
    func add(id: UInt64, address: String) throws(SQLiteError) {
        var body = DqliteWire.Body()
        body.uint64(id)
        body.text(address)
        _ = try exchange(.add, body, expecting: .empty)
    }

    func assign(_ id: UInt64, role: DqliteWire.Role) throws(SQLiteError) {
        var body = DqliteWire.Body()
        body.uint64(id)
        body.uint64(role.rawValue)
        _ = try exchange(.assign, body, expecting: .empty)
    }

    /// Opens (creating) the named database; its id is what SQL requests name.
    func open(_ name: String) throws(SQLiteError) -> UInt64 {
        var body = DqliteWire.Body()
        body.text(name)
        body.uint64(0)
        body.text("")
        var reply = try exchange(.open, body, expecting: .database)
        return UInt64(try reply.uint32())
    }

    /// Runs one or more statements that return no rows.
    func execute(database: UInt64, _ sql: String, _ arguments: [SQLValue] = []) throws(SQLiteError) {
        var body = DqliteWire.Body()
        body.uint64(database)
        body.text(sql)
        try body.parameters(arguments)
        _ = try exchange(.execSQL, body, expecting: .result, sql: sql)
    }

    /// Runs one statement and returns its column names and every row (over as many batches as the node sends).
    func query(database: UInt64, _ sql: String, _ arguments: [SQLValue] = []) throws(SQLiteError) -> (columns: [String], rows: [[SQLValue]]) {
        var body = DqliteWire.Body()
        body.uint64(database)
        body.text(sql)
        try body.parameters(arguments)
        var reply = try exchange(.querySQL, body, expecting: .rows, sql: sql)
        var columns: [String] = []
        var rows: [[SQLValue]] = []
        while true {
            let count = Int(try reply.uint64())
            columns = try (0..<count).map { _ throws(SQLiteError) in try reply.text() }
            var marker: UInt64
            while true {
                marker = try reply.peekUInt64()
                if marker == DqliteWire.rowsDone || marker == DqliteWire.rowsPart { break }
                rows.append(try reply.row(columns: count))
            }
            if marker == DqliteWire.rowsDone { return (columns, rows) }
            // More rows follow in another message, unasked.
            reply = try receive(expecting: .rows, sql: sql)
        }
    }

    // MARK: Messages

    private func exchange(_ type: DqliteWire.Request, _ body: DqliteWire.Body, expecting: DqliteWire.Response, sql: String? = nil) throws(SQLiteError) -> DqliteWire.Reader {
        try send(body.message(type))
        return try receive(expecting: expecting, sql: sql)
    }

    private func receive(expecting: DqliteWire.Response, sql: String?) throws(SQLiteError) -> DqliteWire.Reader {
        var header = DqliteWire.Reader(try read(8))
        let words = try header.uint32()
        let typeAndSchema = try header.uint32()
        var body = DqliteWire.Reader(try read(Int(words) * 8))
        let type = UInt8(typeAndSchema & 0xff)
        if type == DqliteWire.Response.failure.rawValue {
            let code = try body.uint64()
            let message = try body.text()
            throw SQLiteError(code: Int32(truncatingIfNeeded: code), message: message, sql: sql)
        }
        guard type == expecting.rawValue else {
            fail()
            throw SQLiteError(code: DqliteFailure.protocolError, message: "dqlite: reply of type \(type) where \(expecting) was due", sql: sql)
        }
        return body
    }

    // MARK: The socket

    private func unreachable(_ what: String) -> SQLiteError {
        SQLiteError(code: DqliteFailure.unreachable, message: "dqlite node \(address): \(what)", sql: nil)
    }

    /// Closes the connection after an error that leaves it out of step.
    private func fail() {
        if socket >= 0 { close(socket) }
        socket = -1
    }

    private func send(_ bytes: [UInt8]) throws(SQLiteError) {
        guard socket >= 0 else { throw unreachable("the connection is closed") }
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let reason = String(cString: strerror(errno))
                fail()
                throw unreachable("send: \(reason)")
            }
            sent += count
        }
    }

    private func read(_ count: Int) throws(SQLiteError) -> [UInt8] {
        guard socket >= 0 else { throw unreachable("the connection is closed") }
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            // Acknowledge at once: dqlite writes a long reply in pieces, and with Nagle on its side
            // each piece after the first waited for our delayed ACK (40 ms). Linux clears the
            // flag by itself, so it is set before every read.
            var one: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
            let got = bytes.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + received, count - received, 0) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else {
                let reason = got == 0 ? "the node closed the connection" : String(cString: strerror(errno))
                fail()
                throw unreachable(reason)
            }
            received += got
        }
        return bytes
    }

    /// A TCP connection to `HOST:PORT` with send and receive timeouts; no name is resolved.
    private static func connect(_ address: String, timeout: Duration) throws(SQLiteError) -> Int32 {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite address \(address) is not HOST:PORT", sql: nil)
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var storage = sockaddr_storage()
        let length: socklen_t
        let family: Int32
        var ipv4 = sockaddr_in()
        var ipv6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &ipv4.sin_addr) == 1 {
            ipv4.sin_family = sa_family_t(AF_INET)
            ipv4.sin_port = port.bigEndian
            withUnsafeBytes(of: ipv4) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            (length, family) = (socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET)
        } else if inet_pton(AF_INET6, host, &ipv6.sin6_addr) == 1 {
            ipv6.sin6_family = sa_family_t(AF_INET6)
            ipv6.sin6_port = port.bigEndian
            withUnsafeBytes(of: ipv6) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            (length, family) = (socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6)
        } else {
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite address \(address): \(host) is not an IP address", sql: nil)
        }
        let fd = Glibc.socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SQLiteError(code: DqliteFailure.unreachable, message: "socket: \(String(cString: strerror(errno)))", sql: nil) }
        let (seconds, attoseconds) = timeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // With SO_SNDTIMEO set, a blocking connect gives up after the same time.
        let connected = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite node \(address): connect: \(reason)", sql: nil)
        }
        return fd
    }
}
