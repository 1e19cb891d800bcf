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
    /// What carries the connection (kept alive as long as it is used).
    private let transport: (any ReplicationTransport)?

    /// Connects to the member at `address` (`IPV4:PORT` or `[IPV6]:PORT`) through `transport`,
    /// and sends the protocol version.
    convenience init(address: String, through transport: any ReplicationTransport, timeout: Duration = .seconds(2)) throws(SQLiteError) {
        let socket: Int32
        do {
            socket = try transport.connect(to: address, timeout: timeout)
        } catch let error as SQLiteError {
            throw error
        } catch {
            throw SQLiteError(code: DqliteFailure.unreachable, message: "dqlite member \(address): \(error)", sql: nil)
        }
        try self.init(address: address, socket: socket, transport: transport, timeout: timeout)
    }

    /// Connects to this host's member listening at `local` (`@NAME`).
    convenience init(local: String, timeout: Duration = .seconds(2)) throws(SQLiteError) {
        try self.init(address: local, socket: try LocalDqliteSocket.connect(local), transport: nil, timeout: timeout)
    }

    /// Takes `socket`, a connection to the member at `address`: every call on it waits at most
    /// `timeout`. Sends the protocol version.
    private init(address: String, socket: Int32, transport: (any ReplicationTransport)?, timeout: Duration) throws(SQLiteError) {
        self.address = address
        self.socket = socket
        self.transport = transport
        let (seconds, attoseconds) = timeout.components
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        do {
            var version = DqliteWire.Body()
            version.uint64(DqliteWire.protocolVersion)
            try send(version.bytes)
        } catch {
            close(socket)
            self.socket = -1
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
}
