import Foundation
import Synchronization

/// One subscriber's bounded queue of a camera's packets, with frame-aware dropping, so that a
/// slow viewer never slows the others (the feed only ever offers; it never waits).
///
/// When the queue is full: a disposable packet is dropped; otherwise a disposable packet already
/// queued makes room; otherwise the queue is dropped whole and the subscriber skips to the next
/// keyframe (packets after a lost reference frame would decode to garbage). Keyframes are
/// dropped last. Packets are shared, never copied: `Data` is reference-counted.
public final class FeedSubscriber: Sendable {
    public let id: String
    public let capacity: Int

    private struct State {
        var queue: [MediaPacket] = []
        var waitingForKeyframe = false
        var dropped = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)

    init(id: String, capacity: Int) {
        self.id = id
        self.capacity = max(2, capacity)
    }

    /// Packets dropped for this subscriber so far.
    public var dropped: Int { state.withLock { $0.dropped } }

    /// Queues a packet, dropping frame by frame when full; never waits. The feed's reader calls it.
    public func offer(_ packet: MediaPacket) {
        let wasEmpty = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            if state.waitingForKeyframe {
                guard packet.isKeyframe else {
                    state.dropped += 1
                    return false
                }
                state.waitingForKeyframe = false
            }
            let wasEmpty = state.queue.isEmpty
            if state.queue.count >= capacity {
                if packet.isDisposable {
                    state.dropped += 1
                    return false
                }
                if let disposable = state.queue.lastIndex(where: \.isDisposable) {
                    state.queue.remove(at: disposable)
                    state.dropped += 1
                } else {
                    state.dropped += state.queue.count
                    state.queue.removeAll(keepingCapacity: true)
                    guard packet.isKeyframe else {
                        state.dropped += 1
                        state.waitingForKeyframe = true
                        return false
                    }
                }
            }
            state.queue.append(packet)
            return wasEmpty
        }
        if wasEmpty { ready.signal() }
    }

    /// Queues packets ahead of everything (the GOP cache for a late joiner).
    func start(with packets: [MediaPacket]) {
        state.withLock { $0.queue = Array(packets.suffix(capacity)) + $0.queue }
        if !packets.isEmpty { ready.signal() }
    }

    /// Takes up to `limit` queued packets, oldest first, waiting up to `timeout` for one; empty
    /// when none came or the subscription ended.
    public func take(timeout: Duration, limit: Int = .max) -> [MediaPacket] {
        func takeSome() -> [MediaPacket] {
            state.withLock { state in
                let count = min(limit, state.queue.count)
                defer { state.queue.removeFirst(count) }
                return Array(state.queue.prefix(count))
            }
        }
        let taken = takeSome()
        if !taken.isEmpty || isClosed { return taken }
        let nanos = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        _ = ready.wait(timeout: .now() + .nanoseconds(nanos))
        return takeSome()
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    func close() {
        state.withLock { $0.closed = true }
        ready.signal()
    }
}
