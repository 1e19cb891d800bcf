import Bus
import Foundation
import Incidents
import Streams
import Synchronization
import VigilProtocol

/// What a relay that records needs: where segments go, and where its footage is found again.
public struct FootageSettings: Sendable {
    public var recorder: FootageRecorder.Configuration
    /// The segments a playback of a camera from a moment plays, in time order (the coordinator's catalog).
    public var library: @Sendable (_ camera: String, _ moment: Date) async throws -> [FootagePlayer.Item]
    /// Told of each segment closed, with the incidents its camera was recorded for.
    public var onSegment: @Sendable (RecordedSegment, Set<Int64>) -> Void
    /// Told when a camera's footage could not be written (a full disk): live video goes on.
    public var onFailure: @Sendable (String, MediaError) -> Void

    public init(
        recorder: FootageRecorder.Configuration, library: @escaping @Sendable (String, Date) async throws -> [FootagePlayer.Item],
        onSegment: @escaping @Sendable (RecordedSegment, Set<Int64>) -> Void, onFailure: @escaping @Sendable (String, MediaError) -> Void
    ) {
        (self.recorder, self.library, self.onSegment, self.onFailure) = (recorder, library, onSegment, onFailure)
    }
}

/// A relay's footage: its recorder, which cameras the coordinator wants recorded (for which
/// incidents), and the playbacks it serves.
struct FootageState: Sendable {
    var settings: FootageSettings?
    var recorder: FootageRecorder?
    var wanted: [String: Set<Int64>] = [:]
    var players: [String: FootagePlayer] = [:]
}

extension Relay {
    /// Turns recording on: segments of the cameras ``record(_:)`` names go to `settings`' folder.
    public func enableFootage(_ settings: FootageSettings) {
        let recorder = FootageRecorder(configuration: settings.recorder, onSegment: { [weak self] segment in
            let incidents = self?.footage.withLock { $0.wanted[segment.camera] } ?? []
            settings.onSegment(segment, incidents)
        }, onFailure: settings.onFailure)
        footage.withLock { state in
            state.settings = settings
            state.recorder = recorder
        }
        recorder.start()
    }

    /// Records exactly these cameras (for these incidents) while their feeds are live here; the
    /// coordinator decided each under its owner's grants. Cameras served by relay nodes are not recorded.
    public func record(_ cameras: [String: Set<Int64>]) {
        footage.withLock { $0.wanted = cameras }
        // A simulated camera that is to be recorded opens now, as a watched one does.
        change { state, now, open in
            state.recorded = Set(cameras.keys)
            return state.place(now: now, open: open)
        }
        followRecordings()
    }

    /// The cameras being recorded now.
    public var recordedCameras: Set<String> {
        footage.withLock { $0.recorder?.cameras } ?? []
    }

    /// Brings the recorder in line with the wanted cameras and the feeds open now (a feed that
    /// was reopened is followed anew; one released stops its recording).
    func followRecordings() {
        let (recorder, wanted) = footage.withLock { ($0.recorder, $0.wanted) }
        guard let recorder else { return }
        let feeds = state.withLock { $0.openFeeds }.filter { wanted[$0.key] != nil }
        recorder.record(feeds)
    }

    /// A playback: the consultation is decided and audited (mode `playback`, for the footage
    /// time), then a player reads the camera's segments from the keyframe before the moment.
    func openPlayback(_ body: FeedOpenBody, at moment: Date, for request: BusRequest) async throws -> (FeedOpenResult, FootagePlayer, State.View) {
        guard let (library, segmentSeconds) = footage.withLock({ state in state.settings.map { ($0.library, $0.recorder.segmentSeconds) } }) else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "this relay records no footage", field: "body.at")
        }
        let allowed = try await authority.begin(body, for: request.identity)
        do {
            let items = try await library(body.camera, moment)
            guard let first = items.first else {
                throw BusProtocol.ErrorBody(.footageUnavailable, message: "no footage of \(body.camera) is kept from \(moment)", field: "body.at")
            }
            // A moment in a gap (before the recording, between incidents) is not silently moved to later footage.
            guard first.segment.start <= moment.addingTimeInterval(segmentSeconds) else {
                throw BusProtocol.ErrorBody(
                    .footageUnavailable, message: "no footage of \(body.camera) at \(moment); the next starts at \(first.segment.start)", field: "body.at")
            }
            let (video, parameterSets) = try FootagePlayer.stream(of: first)
            let player = FootagePlayer(id: allowed.view, items: items, from: moment) { [self] reason in
                Task { try? await end(allowed.view, reason: reason, notify: true) }
            }
            var view = State.View(delivery: .media(peer: request.peer), identity: request.identity, camera: body.camera, allowed: allowed)
            view.playback = true
            return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: video.description(parameterSets: parameterSets)), player, view)
        } catch {
            await authority.end(allowed.view, identity: request.identity)
            throw error
        }
    }

    /// Stops the player of a playback that ended (nothing for a live view).
    func stopPlayer(of view: String) {
        footage.withLock { $0.players.removeValue(forKey: view) }?.stop()
    }

    func startPlayer(_ player: FootagePlayer, for view: String) {
        footage.withLock { $0.players[view] = player }
        player.start()
    }

    /// Stops recording (closing the segments in progress) and every playback.
    func stopFootage() {
        let (recorder, players) = footage.withLock { state in
            defer { state.players.removeAll() }
            return (state.recorder, Array(state.players.values))
        }
        players.forEach { $0.stop() }
        recorder?.stop()
    }
}
