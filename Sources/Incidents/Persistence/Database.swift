import Foundation

/// The Vigil SQLite database: one connection confined to one serial queue, so there is
/// exactly one writer, and SQLite's blocking calls never run on Swift's cooperative pool; and
/// one read-only connection on a queue of its own, so that reads (the audit log's, listings)
/// never wait behind writes (WAL: a reader sees the last committed state).
public final class Database: Sendable {
    private let queue = DispatchQueue(label: "vigil.database")
    private let readQueue = DispatchQueue(label: "vigil.database.read")
    // nonisolated(unsafe): each connection is only touched on its queue.
    nonisolated(unsafe) private let connection: SQLiteConnection
    nonisolated(unsafe) private let reader: SQLiteConnection
    public let path: String

    /// Opens the file and applies the migrations it has not seen yet.
    public init(path: String) throws {
        self.path = path
        let connection = try SQLiteConnection(path: path)
        try queue.sync { try Migrations.apply(to: connection) }
        self.connection = connection
        reader = try SQLiteConnection(path: path, readOnly: true)
    }

    /// Runs `body` on the read-only connection, off the writer's queue and off the cooperative
    /// pool, in one read transaction: every query of `body` sees the same committed state.
    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            readQueue.async {
                continuation.resume(with: Result { try self.reader.readTransaction { try body(self.reader) } })
            }
        }
    }

    /// Runs `body` on the database queue; write transactions are committed before it returns.
    func run<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }

    /// The synchronous form, for start-up and tools that are not async.
    func runSync<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try queue.sync { try body(connection) }
    }
}
