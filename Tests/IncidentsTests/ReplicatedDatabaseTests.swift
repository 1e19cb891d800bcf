import ClusterLink
import Foundation
import TestSupport
import Testing
@testable import Incidents

/// The database replicated by dqlite (`vigil serve --cluster`): the same SQL as the embedded
/// SQLite file, through real dqlite nodes on loopback, and what a cluster does when its leader stops.
/// Each member has a cluster link of its own, as each coordinator does: members reach each other
/// over mutual TLS.
@Suite("Replicated database", .serialized)
struct ReplicatedDatabaseTests {
    /// The cluster's secret (as the CURVE server secret key of `DATA/keys` is).
    static let secret = Array("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".utf8)

    /// Runs `body` with `count` started members (member 1 bootstraps; the others join it), then stops them.
    static func withCluster<T>(_ count: Int, _ body: ([ReplicatedNode]) async throws -> T) async throws -> T {
        // dqlite's Raft transport writes to peers that may have stopped: EPIPE, not the process's end
        // (as `vigil serve` ignores SIGPIPE).
        signal(SIGPIPE, SIG_IGN)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-dqlite-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var nodes: [ReplicatedNode] = []
        for id in 1...count {
            let member = ReplicatedNode.Member(id: UInt64(id), address: "127.0.0.1:\(try freeLoopbackPort())")
            let node = try ReplicatedNode(member: member, folder: folder.appendingPathComponent("\(id)"), transport: try ClusterLink(secret: secret))
            try node.start()
            nodes.append(node)
        }
        defer { for node in nodes { node.stop() } }
        try await waitUntil("member 1 leads") { nodes[0].isLeader() }
        for node in nodes.dropFirst() { try node.join(through: [nodes[0].member.address]) }
        return try await body(nodes)
    }

    static func waitUntil(_ what: String, within seconds: Double = 15, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !condition() {
            guard Date() < deadline else { throw TestFailure("not within \(seconds) s: \(what)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test func valuesComeBackAsTheyWereStoredOverManyBatches() async throws {
        try await Self.withCluster(1) { nodes in
            // From another process's link (as `vigil audit verify` reads): over TLS, thousands of rows.
            let connection = try SQLiteConnection(replicatedAt: nodes[0].member.address, through: try ClusterLink(secret: Self.secret), name: "values")
            try connection.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT); CREATE TABLE u (x INTEGER)")
            let texts = ["", "é ü 🚒", "a\u{0}b", String(repeating: "x", count: 7), String(repeating: "y", count: 8), String(repeating: "z", count: 5000)]
            try connection.transaction {
                for (index, text) in texts.enumerated() {
                    try connection.query("INSERT INTO t VALUES (?, ?, ?, ?)", [.integer(Int64.min + Int64(index)), .real(-0.5 * Double(index)), .text(text), .null])
                }
                // Enough rows that dqlite sends them in several batches.
                for index in 0..<3000 { try connection.query("INSERT INTO u VALUES (?)", [.integer(Int64(index))]) }
            }
            #expect(connection.takeChangedTables() == ["t", "u"])
            let rows = try connection.query("SELECT i, r, s, n FROM t ORDER BY rowid")
            #expect(rows.count == texts.count)
            for (row, (index, text)) in zip(rows, texts.enumerated()) {
                #expect(row.values == [.integer(Int64.min + Int64(index)), .real(-0.5 * Double(index)), .text(text), .null], "row \(index)")
            }
            let many = try connection.query("SELECT x FROM u ORDER BY x")
            #expect(many.count == 3000)
            #expect(many.last?.integer(0) == 2999)
            #expect(try connection.query("SELECT count(*) AS c, sum(x) AS s FROM u").first?.integer("s") == 2999 * 3000 / 2)
        }
    }

    @Test func theTablesAWriteChangedAreReadFromItsSQL() {
        #expect(ReplicatedStatements.writtenTables("INSERT INTO audit_log (a) VALUES (?)") == ["audit_log"])
        #expect(ReplicatedStatements.writtenTables("INSERT OR REPLACE INTO \"grants\"(id) VALUES (1)") == ["grants"])
        #expect(ReplicatedStatements.writtenTables("update OR ignore views SET stopped_at = ?") == ["views"])
        #expect(ReplicatedStatements.writtenTables("DELETE FROM holds WHERE id = 1; UPDATE incidents SET x = 1") == ["holds", "incidents"])
        #expect(ReplicatedStatements.writtenTables("SELECT * FROM incidents WHERE title = 'update'").isEmpty)
        #expect(ReplicatedStatements.writtenTables("PRAGMA user_version").isEmpty)
    }

    @Test func aBadStatementIsRefusedWithSQLitesCodeAndTheConnectionGoesOn() async throws {
        try await Self.withCluster(1) { nodes in
            let connection = try SQLiteConnection(replicatedAt: nodes[0].member.address, through: nodes[0].transport, name: "errors")
            try connection.execute("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            try connection.query("INSERT INTO t VALUES (1)")
            let duplicate = #expect(throws: SQLiteError.self) { try connection.query("INSERT INTO t VALUES (1)") }
            #expect(duplicate?.code == 2067, "SQLITE_CONSTRAINT_UNIQUE: \(String(describing: duplicate))")
            #expect(throws: SQLiteError.self) { try connection.query("SELECT nothing FROM nowhere") }
            #expect(throws: SQLiteError.self) {
                try connection.transaction {
                    try connection.query("INSERT INTO t VALUES (2)")
                    try connection.query("INSERT INTO t VALUES (NULL)")
                }
            }
            #expect(!connection.inTransaction)
            #expect(try connection.query("SELECT x FROM t").map { $0.integer(0) } == [1], "the failed transaction left nothing")
        }
    }

    @Test func theVigilSchemaMigratesAndTheAuditChainAppends() async throws {
        try await Self.withCluster(1) { nodes in
            let database = try Database(replicatedAt: nodes[0].member.address, through: nodes[0].transport)
            let audit = AuditStore(database: database)
            var appended = database.changes(of: "audit_log").makeAsyncIterator()
            for index in 0..<3 {
                try await database.run { db in
                    try db.transaction { try AuditLog.append(AuditRecord(action: "test.\(index)", at: Date()), in: db) }
                }
                #expect(await appended.next() != nil, "followers of the audit log are told of each append")
            }
            let verified = try await audit.verify()
            #expect(verified.intact && verified.entries == 3)
        }
    }

    @Test func aNewLeaderHasEveryCommittedWriteAndTheOldOneRefusesWrites() async throws {
        try await Self.withCluster(3) { nodes in
            let first = try SQLiteConnection(replicatedAt: nodes[0].member.address, through: nodes[0].transport, name: "failover")
            try first.execute("CREATE TABLE t (x INTEGER)")
            for index in 0..<50 { try first.query("INSERT INTO t VALUES (?)", [.integer(Int64(index))]) }
            nodes[0].stop()
            var leader: ReplicatedNode.Member?
            try await Self.waitUntil("another member leads") {
                leader = nodes[1].leader()
                return leader != nil && leader?.id != 1
            }
            let second = try SQLiteConnection(replicatedAt: leader!.address, through: nodes[1].transport, name: "failover")
            #expect(try second.query("SELECT count(*) FROM t").first?.integer(0) == 50, "every acknowledged write is on the new leader")
            try second.query("INSERT INTO t VALUES (50)")
            let refused = #expect(throws: SQLiteError.self) { try first.query("INSERT INTO t VALUES (-1)") }
            #expect(refused.map { Database.isLostLeadership($0) } == true, "\(String(describing: refused))")
        }
    }

    @Test func onlyAHolderOfTheClustersKeyReachesAMember() async throws {
        try await Self.withCluster(1) { nodes in
            let address = nodes[0].member.address
            #expect(ReplicatedNode.leader(askingAny: [address], through: try ClusterLink(secret: Self.secret))?.id == 1, "the same key: a member")
            let stranger = try ClusterLink(secret: Array("another cluster's secret, 32 bytes or more".utf8))
            #expect(ReplicatedNode.leader(askingAny: [address], through: stranger) == nil)
            do {
                _ = try stranger.connect(to: address, timeout: .seconds(2))
                Issue.record("a link with another key was let in")
            } catch let error as ClusterLinkError {
                #expect(error.code == "cluster_peer_refused", "\(error)")
            }
            // dqlite's own protocol in the clear, as before the link: the member does not answer it.
            #expect(ReplicatedNode.leader(askingAny: [address], through: PlainTCP()) == nil)
            #expect(nodes[0].isLeader(), "the member goes on serving its cluster")
        }
    }

    @Test func bytesCrossTheLinkUnchangedBothWaysOverIPv6() throws {
        // A stand-in for dqlite: an abstract Unix socket that sends back what it reads.
        let name = "@vigil-test-echo-\(UInt32.random(in: 0...UInt32.max))"
        let listener = try abstractListener(name)
        defer { close(listener) }
        let echo = Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0, writeAll(connection, Array(buffer.prefix(count))) else { break }
            }
            close(connection)
        }
        echo.start()
        let address = "[::1]:\(try freeLoopbackPort())"
        let member = try ClusterLink(secret: Self.secret)
        try member.serve(address, forwardingTo: name)
        defer { member.stopServing(address) }

        // The connection lives as long as the link that made it.
        let link = try ClusterLink(secret: Self.secret)
        let socket = try link.connect(to: address, timeout: .seconds(2))
        defer { close(socket) }
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        // More than the buffers between the two ends hold, written while it is read back.
        let payload = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        let writer = Thread { _ = writeAll(socket, payload) }
        writer.start()
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.count < payload.count {
            let count = read(socket, &buffer, buffer.count)
            guard count > 0 else { break }
            received += buffer.prefix(count)
        }
        #expect(received.count == payload.count)
        #expect(received.elementsEqual(payload), "the bytes came back unchanged, in order")
    }

    @Test func aConnectionThatShowsNoKeyIsClosedAfterTheHandshakeLimit() throws {
        let link = try ClusterLink(secret: Self.secret, handshakeLimit: .milliseconds(300))
        let address = "127.0.0.1:\(try freeLoopbackPort())"
        try link.serve(address, forwardingTo: "@vigil-test-no-member")
        defer { link.stopServing(address) }
        let socket = try PlainTCP().connect(to: address, timeout: .seconds(1))
        defer { close(socket) }
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var byte: UInt8 = 0
        // 0: the link closed it (end of stream); -1 would be the 5 s timeout.
        #expect(recv(socket, &byte, 1, 0) == 0, "the link closes a connection that shows no key")
    }

    @Test func aBadAddressOrSecretIsRefusedWithItsCode() throws {
        let link = try ClusterLink(secret: Self.secret)
        for address in ["10.0.0.1", "10.0.0.1:port", ":7716", "10.0.0.1:70000"] {
            do {
                _ = try link.connect(to: address, timeout: .seconds(1))
                Issue.record("\(address) was taken")
            } catch let error as ClusterLinkError {
                #expect(error.code == "cluster_address_invalid", "\(address): \(error)")
            }
        }
        do {
            _ = try ClusterLink(secret: Array("short".utf8))
            Issue.record("a 5-byte secret was taken")
        } catch let error as ClusterLinkError {
            #expect(error.code == "cluster_secret_weak")
        }
        let closed = "127.0.0.1:\(try freeLoopbackPort())"
        do {
            _ = try link.connect(to: closed, timeout: .seconds(1))
            Issue.record("nothing listens at \(closed), yet it connected")
        } catch let error as ClusterLinkError {
            #expect(error.code == "cluster_peer_unreachable", "\(error)")
        }
    }
}

/// A listening abstract Unix socket (`@NAME`), as dqlite's.
private func abstractListener(_ address: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard try LocalDqliteSocket.withSocketAddress(address, { bind(fd, $0, $1) }) == 0, listen(fd, 4) == 0 else {
        close(fd)
        throw ClusterLinkError.unreachable(address, reason: "cannot listen")
    }
    return fd
}

/// Writes every byte (false if the socket failed first).
private func writeAll(_ socket: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let count = bytes.withUnsafeBytes { write(socket, $0.baseAddress! + sent, bytes.count - sent) }
        guard count > 0 else { return false }
        sent += count
    }
    return true
}

/// A plain TCP connection, as dqlite's own connect function made them: what someone without the
/// cluster's key can do at a member's Raft address.
private final class PlainTCP: ReplicationTransport {
    /// `address` is 127.0.0.1:PORT, as every member of these tests.
    func connect(to address: String, timeout: Duration) throws -> Int32 {
        var socketAddress = loopbackAddress(port: Int(address.split(separator: ":").last!)!)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw ClusterLinkError.unreachable(address, reason: "connect failed")
        }
        return fd
    }

    func serve(_ address: String, forwardingTo local: String) throws {}
    func stopServing(_ address: String) {}
}
