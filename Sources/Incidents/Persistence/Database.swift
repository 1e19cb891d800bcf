import Foundation

/// The Vigil SQLite database: one connection confined to one serial queue, so there is
/// exactly one writer, and SQLite's blocking calls never run on Swift's cooperative pool.
public final class Database: Sendable {
    private let queue = DispatchQueue(label: "vigil.database")
    // nonisolated(unsafe): the connection is only touched on `queue`.
    nonisolated(unsafe) private let connection: SQLiteConnection
    public let path: String

    /// Opens the file and applies the migrations it has not seen yet.
    public init(path: String) throws {
        self.path = path
        connection = try SQLiteConnection(path: path)
        try queue.sync { try Migrations.apply(to: connection) }
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
