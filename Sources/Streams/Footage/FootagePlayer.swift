import Foundation
import Synchronization

/// Plays recorded footage to one subscriber: from the last keyframe at or before the moment
/// asked for, then on through the following segments, in real time (as it was recorded), until
/// the footage ends or the player is stopped. Nothing is decoded; packets go out as they were
/// written.
public final class FootagePlayer: Sendable {
    /// A segment to play, with where its file is.
    public struct Item: Sendable {
        public var segment: RecordedSegment
        public var url: URL

        public init(segment: RecordedSegment, url: URL) {
            self.segment = segment
            self.url = url
        }
    }

    public let subscriber: FeedSubscriber
    private let items: [Item]
    private let moment: Date
    /// The camera's privacy masks now, painted on footage recorded before they were registered too.
    private let masks: [Thumbnailer.Mask]
    private let stopping = Atomic<Bool>(false)
    private let onEnd: @Sendable (_ reason: String) -> Void

    /// - Parameters:
    ///   - items: the segments from the one holding `moment` on, in time order.
    ///   - masks: the camera's privacy masks (none: the footage goes out as recorded).
    ///   - onEnd: told once, on the player's thread, why the footage stopped (not after ``stop()``).
    public init(id: String, items: [Item], from moment: Date, masks: [Thumbnailer.Mask] = [], onEnd: @escaping @Sendable (String) -> Void) {
        subscriber = FeedSubscriber(id: id, capacity: 512)
        self.items = items.sorted { $0.segment.start < $1.segment.start }
        self.moment = moment
        self.masks = masks
        self.onEnd = onEnd
    }

    /// The stream the first segment holds, as a viewer's muxer needs it (opens the file once),
    /// as it leaves with `masks` painted on.
    public static func stream(of item: Item, masks: [Thumbnailer.Mask] = []) throws(MediaError) -> (VideoStreamInfo, Data) {
        let source = try open(item, masks: masks)
        defer { source.close() }
        // The parameter sets come with the first keyframe.
        while let packet = try source.read(), !packet.isKeyframe {}
        return (source.video, source.parameterSets)
    }

    /// A segment's packets, masked when the camera has masks.
    private static func open(_ item: Item, masks: [Thumbnailer.Mask]) throws(MediaError) -> any PacketSource {
        let file = try StreamSource(url: item.url.path)
        guard !masks.isEmpty else { return file }
        do {
            return try PrivacyMaskedSource(file, masks: masks)
        } catch {
            file.close()
            throw error
        }
    }

    public func start() {
        let thread = Thread { [self] in
            let reason = play()
            subscriber.close()
            if !stopping.load(ordering: .relaxed) { onEnd(reason) }
        }
        thread.name = "vigil.playback"
        thread.start()
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        subscriber.close()
    }

    private func play() -> String {
        let clock = ContinuousClock()
        for (offset, item) in items.enumerated() {
            // In the first segment, start at the keyframe before the moment; in the next ones, at their start.
            let skipKeyframes = offset == 0 ? item.segment.keyframe(atOrBefore: moment).index : 0
            let source: any PacketSource
            do {
                source = try Self.open(item, masks: masks)
            } catch {
                return "recording_failed: segment \(item.segment.file) cannot be read: \(error.description)"
            }
            defer { source.close() }
            let timeBase = Double(source.video.timeBase.numerator) / Double(max(1, source.video.timeBase.denominator))
            var keyframesSeen = 0
            var anchor: (instant: ContinuousClock.Instant, dts: Int64)?
            while !stopping.load(ordering: .relaxed) {
                let read: MediaPacket?
                do {
                    read = try source.read()
                } catch {
                    return "recording_failed: segment \(item.segment.file): \(error.description)"
                }
                guard let packet = read else { break }
                if packet.isKeyframe { keyframesSeen += 1 }
                guard keyframesSeen > skipKeyframes else { continue }
                if let dts = packet.dts ?? packet.pts {
                    let start = anchor ?? (clock.now, dts)
                    anchor = start
                    let due = start.instant.advanced(by: .seconds(Double(dts - start.dts) * timeBase))
                    let wait = due - clock.now
                    if wait > .zero { Thread.sleep(forTimeInterval: Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18) }
                }
                subscriber.offer(packet)
            }
            if stopping.load(ordering: .relaxed) { return "stopped" }
        }
        return "the recorded footage ends here"
    }
}

extension FootagePlayer {
    /// A player's packets as a feed's source, for a playback that a feed carries (a link's, muxed
    /// by the fan-out): paced by the player as they were recorded; the stream ends with the footage.
    public final class Source: PacketSource {
        public let video: VideoStreamInfo
        public let parameterSets: Data
        public var interruption: StreamSource.Deadline? { nil }
        private let player: FootagePlayer
        private var taken: [MediaPacket] = []
        private var next = 0

        /// The stream is the first segment's (the file is opened once to read it).
        public init(player: FootagePlayer) throws(MediaError) {
            guard let first = player.items.first else { throw MediaError(.sourceInvalid, message: "a playback without footage") }
            (video, parameterSets) = try FootagePlayer.stream(of: first, masks: player.masks)
            self.player = player
        }

        public func read() throws(MediaError) -> MediaPacket? {
            while next == taken.count {
                (taken, next) = (player.subscriber.take(timeout: .milliseconds(200), limit: 64), 0)
                if taken.isEmpty && player.subscriber.isClosed { return nil }
            }
            defer { next += 1 }
            return taken[next]
        }

        /// Nothing: the player is its playback's, stopped when the view ends (stopping it here,
        /// as the feed closes its source at the footage's end, could keep the player from
        /// telling that end).
        public func close() {}
    }
}
