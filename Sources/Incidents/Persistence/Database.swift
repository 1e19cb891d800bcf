internal import CSQLite
import Foundation
import Synchronization

/// The Vigil SQLite database: one connection confined to one serial queue, so there is
/// exactly one writer, and SQLite's blocking calls never run on Swift's cooperative pool; and
/// a few read-only connections, each on a queue of its own, so that reads (the audit log's,
/// listings, what agencies may see) never wait behind writes nor one behind another (WAL: a
/// reader sees the last committed state).
///
/// Code that follows a table (the audit channel) is told when a write that changed it has
/// ended (``changes(of:)``) instead of polling it.
public final class Database: Sendable {
    /// One read-only connection and the queue it is confined to.
    private final class Reader: Sendable {
        let queue: DispatchQueue
        nonisolated(unsafe) let connection: SQLiteConnection

        init(_ connection: SQLiteConnection, number: Int) {
            queue = DispatchQueue(label: "vigil.database.read.\(number)")
            self.connection = connection
        }
    }

    /// As many readers as the request service has read workers.
    static let readerCount = 4

    private let queue = DispatchQueue(label: "vigil.database")
    // nonisolated(unsafe): the connection is only touched on `queue`.
    nonisolated(unsafe) private let connection: SQLiteConnection
    private let readers: [Reader]
    private let nextReader = Atomic<Int>(0)
    /// Who follows which table: told after each write that changed it.
    private let followers = Mutex<[String: [UUID: AsyncStream<Void>.Continuation]]>([:])
    public let path: String

    /// Opens the file and applies the migrations it has not seen yet.
    public convenience init(path: String) throws {
        try self.init(path: path) { readOnly throws(SQLiteError) in try SQLiteConnection(path: path, readOnly: readOnly) }
    }

    /// The database a dqlite cluster replicates, through the member at `node` (which passes
    /// every statement to the leader), reached through `transport`, and applies the migrations
    /// it has not seen yet. Every statement fails once that member no longer leads
    /// (``isLostLeadership(_:)``).
    public convenience init(replicatedAt node: String, through transport: any ReplicationTransport, name: String = "vigil") throws {
        try self.init(path: "dqlite://\(node)/\(name)") { _ throws(SQLiteError) in
            try SQLiteConnection(replicatedAt: node, through: transport, name: name)
        }
    }

    private init(path: String, connecting: (_ readOnly: Bool) throws(SQLiteError) -> SQLiteConnection) throws {
        self.path = path
        let connection = try connecting(false)
        try queue.sync { try Migrations.apply(to: connection) }
        self.connection = connection
        readers = try (0..<Self.readerCount).map { Reader(try connecting(true), number: $0) }
    }

    /// Whether `error` says the replicated database's member no longer leads its cluster (or
    /// cannot be reached): what a coordinator that wrote it must stop on.
    public static func isLostLeadership(_ error: any Error) -> Bool {
        (error as? SQLiteError).map { DqliteFailure.meansNotLeading($0.code) } ?? false
    }

    /// Whether `error` says the database itself could not be used (its disk full, read-only,
    /// busy, unreadable, corrupt) rather than that a statement was wrong: what a reply calls
    /// `storage_failure`, whatever operation met it.
    public static func isStorageFailure(_ error: any Error) -> Bool {
        guard let error = error as? SQLiteError, !DqliteFailure.meansNotLeading(error.code) else { return false }
        // Primary result codes: an extended code keeps its primary one in its low byte.
        return [SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB]
            .contains(error.code & 0xff) || error.code == DqliteFailure.protocolError
    }

    /// Runs `attempt` until the database takes it: after a storage failure (a full disk, see
    /// ``isStorageFailure(_:)``) it is tried again after 1 s, 2 s, 4 s … up to every 30 s
    /// (with `waitFirst`, that wait comes before the first try too). `onStorageFailure` is told
    /// of each; `wait` sleeps a pause and says whether to go on. Nil: `wait` gave up. Any other
    /// error is thrown at once.
    public static func retryingStorageFailures<T>(
        waitFirst: Bool = false, _ attempt: () async throws -> T, onStorageFailure: (any Error) -> Void = { _ in },
        wait: (Duration) async -> Bool = { (try? await Task.sleep(for: $0)) != nil }
    ) async throws -> T? {
        var pause = Duration.seconds(1)
        if waitFirst {
            guard await wait(pause) else { return nil }
            pause *= 2
        }
        while true {
            do {
                return try await attempt()
            } catch where isStorageFailure(error) {
                onStorageFailure(error)
                guard await wait(pause) else { return nil }
                pause = min(pause * 2, .seconds(30))
            }
        }
    }

    /// Runs `body` on a read-only connection, off the writer's queue and off the cooperative
    /// pool, in one read transaction: every query of `body` sees the same committed state.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        let reader = readers[nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count]
        return try await withCheckedThrowingContinuation { continuation in
            reader.queue.async {
                continuation.resume(with: Result { try reader.connection.readTransaction { try body(reader.connection) } })
            }
        }
    }

    /// Runs `body` on the database queue; write transactions are committed before it returns.
    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        // The records `body` makes are marked as the caller's are (a task-local does not cross to the queue by itself).
        let origin = AuditOrigin.current
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                let result = AuditOrigin.$current.withValue(origin) { Result { try body(self.connection) } }
                self.tellFollowers()
                continuation.resume(with: result)
            }
        }
    }

    /// The synchronous form, for start-up and tools that are not async.
    func runSync<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try queue.sync {
            defer { tellFollowers() }
            return try body(connection)
        }
    }

    /// A signal after each write that changed `table` and is over (committed, or rolled back:
    /// the follower reads what is there). Signals that come while the follower is busy are
    /// folded into one. The stream ends when the follower stops iterating it.
    public func changes(of table: String) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        followers.withLock { $0[table, default: [:]][id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.followers.withLock { _ = $0[table]?.removeValue(forKey: id) }
        }
        return stream
    }

    /// On the writer's queue, once no transaction is open: tells the followers of every table changed since.
    private func tellFollowers() {
        guard !connection.inTransaction else { return }
        let changed = connection.takeChangedTables()
        guard !changed.isEmpty else { return }
        let told = followers.withLock { followers in changed.flatMap { followers[$0].map { Array($0.values) } ?? [] } }
        for follower in told { follower.yield() }
    }
}
