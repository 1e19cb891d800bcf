import Foundation

/// Runs blocking work (a synchronous bus client, reading a live source) on a thread of its own,
/// outside Swift's cooperative pool: the pool has only as many threads as cores, and a test
/// blocking it would starve the other suites (and a server's responder task in the same test).
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
