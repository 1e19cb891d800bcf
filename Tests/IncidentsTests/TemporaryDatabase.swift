import Foundation

/// The path of a new SQLite file for one test (its WAL and shared-memory files beside it),
/// removed with them when `body` returns.
func withTemporaryDatabaseFile<T>(_ name: String, _ body: (String) async throws -> T) async rethrows -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-\(name)-\(UUID().uuidString).sqlite").path
    defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
    return try await body(path)
}
