import Foundation
import Synchronization

/// Records cameras' live packets as they are into segment files under one folder: MPEG-TS,
/// cut at the first keyframe after ``Configuration/segmentSeconds`` (or when the picture
/// size changes), each starting with the feed's pre-roll when its recording starts.
///
/// It never slows live video: it reads each camera through a subscriber of its own, like a
/// viewer that tolerates ``Configuration/maximumLateness`` (a slow disk loses frames to the
/// subscriber's frame-aware queue, never to the viewers), and writes on one thread of its own.
/// A write that fails (a full disk) abandons that segment and starts again at the next keyframe.
public final class FootageRecorder: Sendable {
    public struct Configuration: Sendable {
        public var directory: URL
        /// A segment is cut at the first keyframe after this long: a playback or an export
        /// reads at most this much before the moment it asked for.
        public var segmentSeconds: TimeInterval = 6
        /// How far behind live a recording may fall before it loses frames (disk stalls).
        public var maximumLateness = Duration.seconds(20)

        public init(directory: URL) {
            self.directory = directory
        }
    }

    public let configuration: Configuration
    private let onSegment: @Sendable (RecordedSegment) -> Void
    private let onFailure: @Sendable (String, MediaError) -> Void

    private struct Subscription {
        let feed: CameraFeed
        let subscriber: FeedSubscriber
    }

    private struct State {
        var subscriptions: [String: Subscription] = [:]
        /// Recordings that stopped: the writer drains what they queued, then closes their segment.
        var retiring: [(camera: String, subscription: Subscription)] = []
        var stopping = false
    }

    private let state = Mutex(State())
    /// The CPU time its writer thread has used, in nanoseconds (for `vigil bench footage`).
    private let writerNanoseconds = Atomic<Int64>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// - Parameters:
    ///   - onSegment: told of every segment closed (on the recorder's thread; must return soon).
    ///   - onFailure: told when a camera's segment could not be written.
    public init(
        configuration: Configuration, onSegment: @escaping @Sendable (RecordedSegment) -> Void,
        onFailure: @escaping @Sendable (String, MediaError) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.onSegment = onSegment
        self.onFailure = onFailure
    }

    /// The CPU time the writer thread has used so far, in seconds.
    public var writerCPUSeconds: Double { Double(writerNanoseconds.load(ordering: .relaxed)) / 1e9 }

    /// The cameras being recorded.
    public var cameras: Set<String> { state.withLock { Set($0.subscriptions.keys) } }

    /// Records exactly these cameras from these feeds: new ones start with their pre-roll, a
    /// camera whose feed was replaced (reopened) follows the new feed, the others stop.
    public func record(_ feeds: [String: CameraFeed]) {
        let id = "recorder-\(ObjectIdentifier(self).hashValue)"
        let stale = state.withLock { state -> [Subscription] in
            var stale: [Subscription] = []
            for (camera, subscription) in state.subscriptions where feeds[camera] !== subscription.feed {
                state.subscriptions[camera] = nil
                state.retiring.append((camera, subscription))
                stale.append(subscription)
            }
            for (camera, feed) in feeds where state.subscriptions[camera] == nil {
                // A change of codec starts a new segment (`drain`): the recording goes on across it.
                let subscriber = feed.subscribe(id: id, capacity: 8_192, maximumLateness: configuration.maximumLateness, from: .preroll, acrossCodecChanges: true)
                state.subscriptions[camera] = Subscription(feed: feed, subscriber: subscriber)
            }
            return stale
        }
        for subscription in stale { subscription.feed.unsubscribe(id: id) }
    }

    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            write()
            finished.signal()
        }
        thread.name = "vigil.recorder"
        thread.start()
    }

    /// Stops every recording, closing (and reporting) the segments in progress.
    public func stop() {
        record([:])
        state.withLock { $0.stopping = true }
        if started.load(ordering: .relaxed) { finished.wait() }
    }

    /// The writer: each camera's queued packets into its segment, until stopped.
    private func write() {
        var segments: [String: SegmentFile] = [:]
        // What each camera's footage reached: a camera recorded again (it left the wanted set and
        // came back, or its feed was reopened) starts with a pre-roll that may hold footage
        // already written, which is not written twice.
        var written: [String: Date] = [:]
        while true {
            let (subscriptions, retiring, stopping) = state.withLock { state in
                defer { state.retiring.removeAll() }
                return (state.subscriptions, state.retiring, state.stopping)
            }
            for (camera, subscription) in retiring {
                drain(subscription, camera: camera, into: &segments, written: &written)
                close(&segments, camera: camera)
            }
            for (camera, subscription) in subscriptions {
                drain(subscription, camera: camera, into: &segments, written: &written)
            }
            if stopping && subscriptions.isEmpty { break }
            var used = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used)
            writerNanoseconds.store(Int64(used.tv_sec) * 1_000_000_000 + Int64(used.tv_nsec), ordering: .relaxed)
            // A round every 50 ms, whatever came: each queue's packets are taken in one batch, and
            // the feeds' threads are not made to contend for their queues' locks with a writer
            // that goes round them without pause (which cost more than the writing itself).
            Thread.sleep(forTimeInterval: 0.05)
        }
        for camera in Array(segments.keys) { close(&segments, camera: camera) }
    }

    private func drain(
        _ subscription: Subscription, camera: String, into segments: inout [String: SegmentFile], written: inout [String: Date]
    ) {
        let packets = subscription.subscriber.take(timeout: .zero, limit: 1_024)
        for packet in packets {
            if let received = packet.receivedAt, let reached = written[camera], received <= reached { continue }
            if packet.isKeyframe, let open = segments[camera],
               open.isDue(cutAfter: configuration.segmentSeconds, at: packet) || open.video !== subscription.feed.video
            {
                close(&segments, camera: camera)
            }
            if segments[camera] == nil {
                // A segment starts at a keyframe, with the stream as the feed now describes it.
                guard packet.isKeyframe, let video = subscription.feed.video else { continue }
                do {
                    segments[camera] = try SegmentFile(camera: camera, first: packet, video: video, in: configuration.directory)
                } catch {
                    onFailure(camera, error)
                    continue
                }
            }
            do {
                try segments[camera]?.write(packet)
                if let received = packet.receivedAt { written[camera] = received }
            } catch {
                // Abandoned: what it held is lost, the next keyframe starts a new one.
                segments.removeValue(forKey: camera)?.abandon()
                onFailure(camera, error)
            }
        }
    }

    private func close(_ segments: inout [String: SegmentFile], camera: String) {
        guard let segment = segments.removeValue(forKey: camera) else { return }
        do {
            onSegment(try segment.finish())
        } catch {
            segment.abandon()
            onFailure(camera, error)
        }
    }
}

/// A segment being written: its muxer, and the index it gathers.
private final class SegmentFile {
    let video: VideoStreamInfo
    private let writer: StreamWriter
    private let url: URL
    private var segment: RecordedSegment

    init(camera: String, first: MediaPacket, video: VideoStreamInfo, in directory: URL) throws(MediaError) {
        let start = first.receivedAt ?? Date()
        var file = RecordedSegment.file(camera: camera, start: start)
        // Never over a file already there (two segments cannot start in the same millisecond, but a clock can step back).
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) {
            file = String(file.dropLast(3)) + "+.ts"
        }
        url = directory.appendingPathComponent(file)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw MediaError(.recordingFailed, message: "cannot make \(url.deletingLastPathComponent().path): \(error.localizedDescription)")
        }
        self.video = video
        writer = try StreamWriter(output: url.path, video: video, direct: true)
        segment = RecordedSegment(camera: camera, file: file, start: start, end: start, bytes: 0, keyframes: [])
    }

    func isDue(cutAfter seconds: TimeInterval, at packet: MediaPacket) -> Bool {
        (packet.receivedAt ?? Date()).timeIntervalSince(segment.start) >= seconds
    }

    func write(_ packet: MediaPacket) throws(MediaError) {
        let received = packet.receivedAt ?? Date()
        if packet.isKeyframe { segment.keyframes.append(max(0, received.timeIntervalSince(segment.start))) }
        try writer.write(packet)
        let seconds = Double(packet.duration) * Double(video.timeBase.numerator) / Double(max(1, video.timeBase.denominator))
        segment.end = max(segment.end, received.addingTimeInterval(seconds))
    }

    func finish() throws(MediaError) -> RecordedSegment {
        try writer.finish()
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? nil
        segment.bytes = size ?? 0
        return segment
    }

    func abandon() {
        try? writer.finish()
        try? FileManager.default.removeItem(at: url)
    }
}
