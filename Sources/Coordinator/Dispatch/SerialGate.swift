/// Lets one piece of work through at a time, across suspension points: the server's changes
/// (each bus request, the expiry sweep, a registry reload's recomputation) pass through one
/// gate, so each commits and publishes before the next starts. A channel's events then leave
/// in sequence order, and no change reads what another is about to write.
///
/// An actor alone is not enough: it is re-entrant, so another caller could run while a change
/// awaits its database write. Waiters are let through in arrival order.
public actor SerialGate {
    public init() {}

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Whether some work holds the gate, and how many wait behind it (for tests and diagnostics).
    var isBusy: Bool { busy }
    var waitingCount: Int { waiting.count }

    /// Runs `body` once every piece of work that entered before it has finished.
    public nonisolated func serially<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await enter()
        do {
            let result = try await body()
            await leave()
            return result
        } catch {
            await leave()
            throw error
        }
    }

    private func enter() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the gate to the next waiter (it stays busy), or opens it.
    private func leave() {
        if waiting.isEmpty {
            busy = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
