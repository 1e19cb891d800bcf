import Foundation
import Synchronization

/// One subscriber's bounded queue of a camera's packets, with frame-aware dropping, so that a
/// slow viewer never slows the others (the feed only ever offers; it never waits).
///
/// When the queue is full: a disposable packet is dropped; otherwise a disposable packet already
/// queued makes room; otherwise the queue is dropped whole and the subscriber skips to the next
/// keyframe (packets after a lost reference frame would decode to garbage). Keyframes are
/// dropped last. Packets are shared, never copied: `Data` is reference-counted.
///
/// Lateness is bounded too: when the oldest packet waiting arrived more than ``maximumLateness``
/// ago, the viewer is behind live by at least that much; the queue is dropped and the viewer
/// moved to the next keyframe, the newest picture (its drops counted). One second, because an
/// operator following an incident must see what happens now, and a GOP (a keyframe every 1–2 s
/// in surveillance cameras) is the smallest step a viewer can be moved by without garbage; a
/// viewer that keeps up never waits that long. The GOP cache a late joiner starts with arrives
/// at once, so it does not count as late.
public final class FeedSubscriber: Sendable {
    public let id: String
    public let capacity: Int
    /// How far behind live a viewer may fall before it is moved to the newest keyframe.
    public let maximumLateness: Duration

    public static let defaultMaximumLateness = Duration.seconds(1)

    /// A queued packet and when it arrived.
    private struct Queued {
        let packet: MediaPacket
        let arrival: ContinuousClock.Instant
    }

    private struct State {
        var queue: [Queued] = []
        var waitingForKeyframe = false
        var dropped = 0
        var closed = false
        var closeReason: String?
    }

    private let state = Mutex(State())
    private let ready = DispatchSemaphore(value: 0)
    /// Called when packets wait where there were none (a reader that polls many queues is woken).
    private let onReady: (@Sendable () -> Void)?

    init(
        id: String, capacity: Int, maximumLateness: Duration = FeedSubscriber.defaultMaximumLateness, onReady: (@Sendable () -> Void)? = nil
    ) {
        self.id = id
        self.capacity = max(2, capacity)
        self.maximumLateness = maximumLateness
        self.onReady = onReady
    }

    /// Packets dropped for this subscriber so far.
    public var dropped: Int { state.withLock { $0.dropped } }

    /// Queues a packet, dropping frame by frame when full, and moving a viewer that fell behind
    /// to the next keyframe; never waits. The feed's reader calls it; `now` is when it arrived.
    public func offer(_ packet: MediaPacket, now: ContinuousClock.Instant = .now) {
        let wasEmpty = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            if let oldest = state.queue.first, now - oldest.arrival > maximumLateness {
                // Behind live: nothing queued is worth showing any more; the next keyframe starts afresh.
                state.dropped += state.queue.count
                state.queue.removeAll(keepingCapacity: true)
                state.waitingForKeyframe = true
            }
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
                if let disposable = state.queue.lastIndex(where: \.packet.isDisposable) {
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
            state.queue.append(Queued(packet: packet, arrival: now))
            return wasEmpty
        }
        if wasEmpty {
            ready.signal()
            onReady?()
        }
    }

    /// Queues packets ahead of everything (the GOP cache for a late joiner).
    func start(with packets: [MediaPacket], now: ContinuousClock.Instant = .now) {
        state.withLock { $0.queue = packets.suffix(capacity).map { Queued(packet: $0, arrival: now) } + $0.queue }
        if !packets.isEmpty {
            ready.signal()
            onReady?()
        }
    }

    /// Takes up to `limit` queued packets, oldest first, waiting up to `timeout` for one; empty
    /// when none came or the subscription ended.
    public func take(timeout: Duration, limit: Int = .max) -> [MediaPacket] {
        func takeSome() -> [MediaPacket] {
            state.withLock { state in
                let count = min(limit, state.queue.count)
                defer { state.queue.removeFirst(count) }
                return state.queue.prefix(count).map(\.packet)
            }
        }
        let taken = takeSome()
        if !taken.isEmpty || isClosed { return taken }
        let nanos = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        _ = ready.wait(timeout: .now() + .nanoseconds(nanos))
        return takeSome()
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Why the feed closed the queue: what it said, or else that it stopped.
    public var closeReason: String { state.withLock { $0.closeReason } ?? "the camera's feed stopped" }

    func close(reason: String? = nil) {
        state.withLock { state in
            state.closed = true
            if state.closeReason == nil { state.closeReason = reason }
        }
        ready.signal()
        onReady?()
    }
}
