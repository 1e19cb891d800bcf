import Foundation
import Synchronization

/// Where a camera's feed stands, with the reason when it is not live (published on the bus).
public enum FeedState: Sendable, Equatable, CustomStringConvertible {
    case connecting(attempt: Int)
    case live
    case stalled(reason: String)
    case down(reason: String)
    case stopped

    public var description: String {
        switch self {
        case .connecting(let attempt): "connecting (attempt \(attempt))"
        case .live: "live"
        case .stalled(let reason): "stalled: \(reason)"
        case .down(let reason): "down: \(reason)"
        case .stopped: "stopped"
        }
    }

    /// Stalled or down: the source failed.
    public var isFailure: Bool {
        switch self {
        case .stalled, .down: true
        case .connecting, .live, .stopped: false
        }
    }
}

/// Capped exponential backoff with jitter between reconnection attempts.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    /// The delay varies by ± this fraction, so that many cameras lost together do not reconnect together.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The delay before attempt `attempt` (1 for the first retry); `random` is in 0...1.
    public func delay(attempt: Int, random: Double) -> Duration {
        let base = min(initial * Int(1 << min(attempt - 1, 20)), maximum)
        return base * (1 + jitter * (2 * random - 1))
    }
}

/// One camera's feed in a relay: a reader thread that keeps the source open (reconnecting with
/// backoff, also when the very first connection fails), a GOP cache for late joiners, and the
/// subscribers' queues it offers each packet to. It never decodes and never waits for a subscriber.
public final class CameraFeed: Sendable {
    public struct Configuration: Sendable {
        public var source = StreamSource.Options()
        public var backoff = Backoff()
        /// The GOP cache's bound: the pre-roll at 8 Mbit/s, or one long GOP.
        public var cacheBytes = 16 * 1024 * 1024
        /// The footage kept before now for a recording's pre-roll (``GOPCache/prerollDuration``).
        public var prerollSeconds: TimeInterval = 10
        /// Play a file in real time and start again at its end (test cameras).
        public var loopFiles = false
        /// Generate `sim://ID` cameras in process (``SimulatedCamera``); otherwise they have no source.
        public var simulate = false
        /// Opens the source instead of `url` at each (re)connection, or returns nil to open `url`
        /// (an edge relay node pulls a camera from its origin node through it).
        public var openSource: (@Sendable () throws(MediaError) -> (any PacketSource)?)?
        /// What the opened source's packets go through before anyone sees them (a masked
        /// camera's ``PrivacyMaskedSource``); it takes the source over.
        public var processSource: (@Sendable (any PacketSource) throws(MediaError) -> any PacketSource)?

        public init() {}
    }

    public let camera: String
    public let url: String
    private let configuration: Configuration
    private let onState: @Sendable (String, FeedState) -> Void
    private let onKeyframe: @Sendable (MediaPacket, Data, VideoStreamInfo) -> Void

    private struct Shared {
        var state: FeedState = .connecting(attempt: 0)
        var subscribers: [String: FeedSubscriber] = [:]
        var cache: GOPCache
        var parameterSets = Data()
        var interruption: StreamSource.Deadline?
        var video: VideoStreamInfo?
        var stopping = false
        /// The source is to be opened again (``reopen()``).
        var reopening = false
        var reconnects = 0
        /// For a looped file: what is added to its timestamps so that each pass continues the last.
        var loopShift: Int64 = 0
        var lastTimestamp: (dts: Int64, duration: Int64)?
        var receivedBytes = 0
        /// The subscribers whose every keyframe carries the parameter sets.
        var decodableKeyframes: Set<String> = []
        /// The subscribers that take a change of codec (a recorder, which starts a new segment);
        /// the others are closed when one comes.
        var acrossCodecs: Set<String> = []

        /// Removes a subscriber (the caller closes it, outside the lock).
        mutating func forget(_ id: String) -> FeedSubscriber? {
            decodableKeyframes.remove(id)
            acrossCodecs.remove(id)
            return subscribers.removeValue(forKey: id)
        }
    }

    private let shared: Mutex<Shared>
    private let finished = DispatchSemaphore(value: 0)
    private let wakeUp = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - onState: told of every state change.
    ///   - onKeyframe: handed each keyframe with the current parameter sets (for thumbnails); it
    ///     runs on the reader thread and must return at once.
    public init(
        camera: String, url: String, configuration: Configuration = Configuration(), onState: @escaping @Sendable (String, FeedState) -> Void = { _, _ in },
        onKeyframe: @escaping @Sendable (MediaPacket, Data, VideoStreamInfo) -> Void = { _, _, _ in }
    ) {
        self.camera = camera
        self.url = url
        self.configuration = configuration
        self.onState = onState
        self.onKeyframe = onKeyframe
        shared = Mutex(Shared(cache: GOPCache(maximumBytes: configuration.cacheBytes, prerollDuration: configuration.prerollSeconds)))
    }

    public var state: FeedState { shared.withLock { $0.state } }
    /// Reconnections so far (after a failed first connection too).
    public var reconnects: Int { shared.withLock { $0.reconnects } }
    /// The stream's description while the feed is live (nil before its first connection).
    public var streamDescription: VideoStreamInfo.Description? {
        shared.withLock { state in state.video?.description(parameterSets: state.parameterSets) }
    }

    /// The stream as its source describes it while the feed is live (nil before its first connection).
    public var video: VideoStreamInfo? { shared.withLock { $0.video } }

    /// Bytes of video read from the source so far (for load reports).
    public var receivedBytes: Int { shared.withLock { $0.receivedBytes } }


    public func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "vigil.feed.\(camera)"
        thread.start()
    }

    /// Stops the reader (interrupting a blocked read), ends every subscription and waits for the thread.
    public func stop() {
        let interruption = shared.withLock { state in
            state.stopping = true
            return state.interruption
        }
        interruption?.cancel()
        wakeUp.signal()
        finished.wait()
    }

    /// Opens the camera again, keeping the subscribers: what its packets go through changed (a
    /// masked camera's masks). No packet read after this call is offered from the old source.
    public func reopen() {
        shared.withLock { $0.reopening = true }
    }

    /// Where a new subscriber starts: the newest GOP (a viewer), or the whole pre-roll (a recording).
    public enum Start: Sendable {
        case newestGOP, preroll
    }

    /// A new subscriber: it starts with the cached GOP or pre-roll (parameter sets in front when
    /// the keyframe lacks them), then live packets.
    ///   - everyKeyframeDecodable: every keyframe this subscriber gets carries the stream's
    ///     parameter sets (a camera may send them once, or out of band): a subscriber that
    ///     serves many players, each of which may start at any keyframe, needs it.
    ///   - onReady: called when packets wait in the subscriber's queue where there were none.
    public func subscribe(
        id: String, capacity: Int = 256, maximumLateness: Duration = FeedSubscriber.defaultMaximumLateness, from start: Start = .newestGOP,
        everyKeyframeDecodable: Bool = false, acrossCodecChanges: Bool = false, onReady: (@Sendable () -> Void)? = nil
    ) -> FeedSubscriber {
        let subscriber = FeedSubscriber(id: id, capacity: capacity, maximumLateness: maximumLateness, onReady: onReady)
        shared.withLock { state in
            var start = start == .preroll ? state.cache.preroll : state.cache.packets
            if var first = start.first, let codec = state.video?.codec {
                first.data = AnnexB.withParameterSets(state.parameterSets, before: first.data, codec: codec)
                start[0] = first
            }
            subscriber.start(with: start)
            state.subscribers[id] = subscriber
            if everyKeyframeDecodable { state.decodableKeyframes.insert(id) }
            if acrossCodecChanges { state.acrossCodecs.insert(id) }
        }
        return subscriber
    }

    public func unsubscribe(id: String) {
        shared.withLock { state in state.forget(id) }?.close()
    }

    private func set(_ state: FeedState) {
        let changed = shared.withLock { shared -> Bool in
            defer { shared.state = state }
            return shared.state != state
        }
        if changed { onState(camera, state) }
    }

    private var stopping: Bool { shared.withLock { $0.stopping } }

    private func run() {
        var attempt = 0
        var looping = false
        while !stopping {
            // A looped file starting again, or a source opened again, is still live: no state change to report.
            if !looping { set(.connecting(attempt: attempt + 1)) }
            looping = false
            let source: any PacketSource
            do {
                source = try openSource()
            } catch {
                looping = false
                set(.down(reason: error.description))
                attempt += 1
                waitBeforeRetry(attempt)
                continue
            }
            let (interruption, parameterSets, video) = (source.interruption, source.parameterSets, source.video)
            let setUpForAnotherCodec = shared.withLock { state -> [FeedSubscriber] in
                defer { (state.interruption, state.parameterSets, state.video) = (interruption, parameterSets, video) }
                // A camera now sending another codec (reconfigured, or masked anew): a viewer's
                // muxer was set up for the old one, so its subscription ends and it opens the camera again.
                guard let before = state.video, before.codec != video.codec else { return [] }
                return state.subscribers.keys.filter { !state.acrossCodecs.contains($0) }.compactMap { state.forget($0) }
            }
            setUpForAnotherCodec.forEach { $0.close(reason: "the camera's stream changed to \(video.codec) (its privacy masks or its settings changed): open it again") }
            attempt = 0
            set(.live)
            let ended = relay(from: source)
            shared.withLock { state in
                state.interruption = nil
                state.cache.clear()
            }
            source.close()
            if stopping { break }
            switch ended {
            case .reopen:
                looping = true
                continue
            case .endOfFile where configuration.loopFiles:
                looping = true
                continue  // start the file again at once
            case .endOfFile:
                set(.down(reason: "the stream ended"))
            case .failed(let error):
                set(error.code == "source_stalled" ? .stalled(reason: error.description) : .down(reason: error.description))
            }
            attempt += 1
            waitBeforeRetry(attempt)
        }
        let subscribers = shared.withLock { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        subscribers.forEach { $0.close() }
        set(.stopped)
    }

    private func openSource() throws(MediaError) -> any PacketSource {
        let source = try openCamera()
        guard let process = configuration.processSource else { return source }
        do {
            return try process(source)
        } catch {
            source.close()
            throw error
        }
    }

    private func openCamera() throws(MediaError) -> any PacketSource {
        if let opener = configuration.openSource, let source = try opener() { return source }
        guard url.hasPrefix("sim://") else { return try StreamSource(url: url, options: configuration.source) }
        guard configuration.simulate else {
            throw MediaError(.sourceUnreachable, message: "\(StreamCredentials.redacted(url)) is a simulated camera and simulation is off")
        }
        return try SimulatedCamera(camera: String(url.dropFirst("sim://".count)))
    }

    private enum Ending {
        case endOfFile
        case failed(MediaError)
        /// ``reopen()`` was called.
        case reopen
    }

    /// Reads and offers packets until the source ends or fails.
    private func relay(from source: any PacketSource) -> Ending {
        let clock = ContinuousClock()
        var pacingStart: (instant: ContinuousClock.Instant, pts: Int64)?
        let timeBase = Double(source.video.timeBase.numerator) / Double(max(1, source.video.timeBase.denominator))
        var firstOfPass = true
        while !stopping {
            let read: MediaPacket?
            do {
                read = try source.read()
            } catch {
                return .failed(error)
            }
            guard var packet = read else { return .endOfFile }
            packet.receivedAt = Date()
            if configuration.loopFiles, let dts = packet.dts {
                let shift = shared.withLock { state -> Int64 in
                    if firstOfPass, let last = state.lastTimestamp { state.loopShift = last.dts + max(1, last.duration) - dts }
                    state.lastTimestamp = (dts + state.loopShift, packet.duration)
                    return state.loopShift
                }
                firstOfPass = false
                packet.dts = dts + shift
                packet.pts = packet.pts.map { $0 + shift }
            }
            if configuration.loopFiles, let pts = packet.dts ?? packet.pts {
                // Real time: wait until the packet's time has come.
                let start = pacingStart ?? (clock.now, pts)
                pacingStart = start
                let due = start.instant.advanced(by: .seconds(Double(pts - start.pts) * timeBase))
                if due > clock.now { Thread.sleep(forTimeInterval: Double((due - clock.now).components.attoseconds) / 1e18 + Double((due - clock.now).components.seconds)) }
            }
            let parameterSets = packet.isKeyframe ? source.parameterSets : Data()
            let offered = shared.withLock { state -> ([(FeedSubscriber, Bool)], Data)? in
                if state.reopening {
                    state.reopening = false
                    return nil
                }
                state.cache.add(packet)
                state.receivedBytes += packet.data.count
                if !parameterSets.isEmpty { state.parameterSets = parameterSets }
                // A change of size (new parameter sets): what new viewers are told follows.
                if packet.isKeyframe, state.video !== source.video { state.video = source.video }
                return (state.subscribers.values.map { ($0, packet.isKeyframe && state.decodableKeyframes.contains($0.id)) }, state.parameterSets)
            }
            // Opened again: this packet, from the old source, goes to nobody.
            guard let (subscribers, currentSets) = offered else { return .reopen }
            // Made once, for the subscribers that want every keyframe decodable on its own.
            lazy var decodableKeyframe = {
                var keyframe = packet
                keyframe.data = AnnexB.withParameterSets(currentSets, before: packet.data, codec: source.video.codec)
                return keyframe
            }()
            for (subscriber, wantsParameterSets) in subscribers { subscriber.offer(wantsParameterSets ? decodableKeyframe : packet) }
            if packet.isKeyframe { onKeyframe(packet, currentSets, source.video) }
        }
        return .endOfFile
    }

    private func waitBeforeRetry(_ attempt: Int) {
        shared.withLock { $0.reconnects += 1 }
        let delay = configuration.backoff.delay(attempt: attempt, random: Double.random(in: 0...1))
        let nanos = Int(delay.components.seconds) * 1_000_000_000 + Int(delay.components.attoseconds / 1_000_000_000)
        _ = wakeUp.wait(timeout: .now() + .nanoseconds(nanos))
    }
}
