import Foundation
import Testing
@testable import Streams

/// A viewer reading slower than the camera sends is kept within a second of live: moved to the
/// newest keyframe when it falls behind, its drops counted. Time is the test's own.
@Suite("Bounded lateness")
struct LatenessTests {
    /// Frame `number` of a 25 fps stream with a keyframe every 25 frames, offered at number × 40 ms.
    func frame(_ number: Int) -> MediaPacket {
        MediaPacket(data: Data([UInt8(truncatingIfNeeded: number)]), pts: Int64(number), dts: Int64(number), duration: 1,
                    isKeyframe: number % 25 == 0, isDisposable: false)
    }

    /// Plays 20 s of the stream to a viewer taking one frame every `takeEvery` ms; returns the
    /// age of each frame it got (how far behind live it was when it got it), and its drops.
    func play(takeEvery: Int, subscriber: FeedSubscriber) -> (ages: [(at: Int, age: Int)], dropped: Int) {
        let start = ContinuousClock.now
        var ages: [(at: Int, age: Int)] = []
        var nextTake = 0
        for millisecond in stride(from: 0, through: 20_000, by: 10) {
            if millisecond % 40 == 0 { subscriber.offer(frame(millisecond / 40), now: start + .milliseconds(millisecond)) }
            if millisecond >= nextTake {
                nextTake += takeEvery
                for packet in subscriber.take(timeout: .zero, limit: 1) {
                    ages.append((millisecond, millisecond - Int(packet.pts ?? 0) * 40))
                }
            }
        }
        return (ages, subscriber.dropped)
    }

    @Test func aViewerAtAFifthOfTheRateStaysWithinASecondOfLive() {
        let (ages, dropped) = play(takeEvery: 200, subscriber: FeedSubscriber(id: "slow", capacity: 256))
        let afterTheFirstSecond = ages.filter { $0.at >= 1_000 }.map(\.age)
        #expect(!afterTheFirstSecond.isEmpty)
        #expect(afterTheFirstSecond.allSatisfy { $0 <= 1_100 }, "ages in ms: \(afterTheFirstSecond.max() ?? -1) at most")
        #expect(dropped > 300, "what it could not see is counted: \(dropped)")
        // It is moved to keyframes: what it gets after a drop starts with one.
        #expect(ages.contains { $0.age == 0 })
    }

    @Test func aViewerThatKeepsUpLosesNothing() {
        let (ages, dropped) = play(takeEvery: 10, subscriber: FeedSubscriber(id: "fast", capacity: 256))
        #expect(dropped == 0 && ages.count == 501 && ages.allSatisfy { $0.age <= 10 })
    }

    @Test func aLateJoinersCachedGOPIsNotLate() {
        let subscriber = FeedSubscriber(id: "late", capacity: 256)
        let now = ContinuousClock.now
        subscriber.start(with: (0..<25).map(frame), now: now)
        subscriber.offer(frame(25), now: now + .milliseconds(40))
        #expect(subscriber.take(timeout: .zero).count == 26 && subscriber.dropped == 0)
    }
}
