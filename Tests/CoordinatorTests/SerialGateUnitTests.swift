import Synchronization
import Testing

@testable import Coordinator

/// Something the tasks of a test share and change under a lock.
private final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func change<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
    var current: Value { value.withLock { $0 } }
}

/// Waits until `condition` holds, failing (rather than hanging) after ten seconds.
private func waitUntil(_ what: String, _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while await !condition() {
        guard ContinuousClock.now < deadline else { throw WaitedInVain(what: what) }
        await Task.yield()
    }
}

private struct WaitedInVain: Error { let what: String }

@Suite("Serial gate")
struct SerialGateTests {
    @Test func letsOnePieceOfWorkThroughAtATime() async {
        let gate = SerialGate()
        let inside = Shared(0), mostInside = Shared(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    await gate.serially {
                        let now = inside.change { $0 += 1; return $0 }
                        mostInside.change { $0 = max($0, now) }
                        // A suspension point: an actor alone would let the next caller in here.
                        try? await Task.sleep(for: .milliseconds(1))
                        inside.change { $0 -= 1 }
                    }
                }
            }
        }
        #expect(mostInside.current == 1)
    }

    @Test func letsWaitersThroughInTheOrderTheyArrived() async throws {
        let gate = SerialGate()
        let order = Shared<[Int]>([])
        let (released, release) = AsyncStream<Void>.makeStream()
        // The first piece of work holds the gate until released.
        let holder = Task { await gate.serially { for await _ in released { break } } }
        try await waitUntil("the first piece of work holds the gate") { await gate.isBusy }
        var waiters: [Task<Void, Never>] = []
        for number in 1...8 {
            waiters.append(Task { await gate.serially { order.change { $0.append(number) } } })
            // Each waiter queues before the next one starts.
            try await waitUntil("waiter \(number) queues") { await gate.waitingCount == number }
        }
        release.yield()
        await holder.value
        for waiter in waiters { await waiter.value }
        #expect(order.current == Array(1...8))
        let (busy, waiting) = (await gate.isBusy, await gate.waitingCount)
        #expect(!busy && waiting == 0)
    }

    @Test func aFailingPieceOfWorkOpensTheGateForTheNext() async throws {
        struct Refused: Error {}
        let gate = SerialGate()
        await #expect(throws: Refused.self) { try await gate.serially { throw Refused() } }
        // (A gate left shut would make the next call wait for ever: stop here instead.)
        let busy = await gate.isBusy
        try #require(!busy)
        #expect(await gate.serially { 42 } == 42)
    }
}
