import Foundation
import Synchronization

/// Makes the cameras' thumbnails on its own thread, so that decoding never touches the video
/// path: a feed's reader only hands over a keyframe it already holds (a reference, no copy).
///
/// Latest-wins and rate-limited per camera: a keyframe offered before the camera's interval has
/// passed is ignored, and a keyframe waiting for the worker is replaced by a newer one. When the
/// worker falls behind, cameras wait their turn and only their newest keyframe is decoded.
public final class ThumbnailWorker: Sendable {
    public struct Job: Sendable {
        let keyframe: MediaPacket
        let parameterSets: Data
        let video: VideoStreamInfo
        let masks: [Thumbnailer.Mask]
        let receivedAt: Date
    }

    private struct State {
        var pending: [String: Job] = [:]
        var lastMade: [String: ContinuousClock.Instant] = [:]
        var latest: [String: Thumbnail] = [:]
        var running = false
        var stopping = false
    }

    /// The shortest time between two thumbnails of one camera.
    public let interval: Duration
    public let maximumWidth: Int
    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    public init(interval: Duration = .seconds(5), maximumWidth: Int = 320) {
        self.interval = interval
        self.maximumWidth = maximumWidth
    }

    /// Offers a camera's keyframe; returns at once (the feed's reader calls it).
    public func offer(camera: String, keyframe: MediaPacket, parameterSets: Data, video: VideoStreamInfo, masks: [Thumbnailer.Mask]) {
        let now = ContinuousClock.now
        let queued = state.withLock { state -> Bool in
            guard !state.stopping, keyframe.isKeyframe else { return false }
            if let last = state.lastMade[camera], now - last < interval { return false }
            let wasEmpty = state.pending.isEmpty
            state.pending[camera] = Job(keyframe: keyframe, parameterSets: parameterSets, video: video, masks: masks, receivedAt: Date())
            return wasEmpty
        }
        if queued { wakeUp.signal() }
    }

    /// The newest thumbnail of a camera, if one was made.
    public func latest(_ camera: String) -> Thumbnail? {
        state.withLock { $0.latest[camera] }
    }

    /// Forgets a camera whose feed was released.
    public func forget(_ camera: String) {
        state.withLock { state in
            state.pending[camera] = nil
            state.latest[camera] = nil
            state.lastMade[camera] = nil
        }
    }

    /// Starts the worker thread, which calls `onThumbnail` with each thumbnail made, or
    /// `onFailure` with the camera and why its keyframe made none.
    public func start(onThumbnail: @escaping @Sendable (Thumbnail) -> Void, onFailure: @escaping @Sendable (String, MediaError) -> Void = { _, _ in }) {
        state.withLock { $0.running = true }
        let thread = Thread { [self] in
            run(onThumbnail, onFailure)
            finished.signal()
        }
        thread.name = "vigil.thumbnails"
        thread.start()
    }

    private func run(_ onThumbnail: @Sendable (Thumbnail) -> Void, _ onFailure: @Sendable (String, MediaError) -> Void) {
        while true {
            wakeUp.wait()
            let (jobs, stopping) = state.withLock { state -> ([String: Job], Bool) in
                defer { state.pending.removeAll() }
                return (state.pending, state.stopping)
            }
            if stopping { return }
            for (camera, job) in jobs.sorted(by: { $0.key < $1.key }) {
                state.withLock { $0.lastMade[camera] = ContinuousClock.now }
                do throws(MediaError) {
                    let thumbnail = try Thumbnailer.make(
                        camera: camera, keyframe: job.keyframe, parameterSets: job.parameterSets, video: job.video, masks: job.masks,
                        maximumWidth: maximumWidth, takenAt: job.receivedAt)
                    state.withLock { $0.latest[camera] = thumbnail }
                    onThumbnail(thumbnail)
                } catch {
                    onFailure(camera, error)
                }
            }
        }
    }

    public func stop() {
        let wasRunning = state.withLock { state -> Bool in
            defer { state.stopping = true }
            return state.running && !state.stopping
        }
        guard wasRunning else { return }
        wakeUp.signal()
        finished.wait()
    }
}
