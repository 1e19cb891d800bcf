import Bus
import Foundation
import Incidents
import Streams
import Synchronization
import VigilProtocol

/// Where a camera's footage from a moment is: segments this relay holds (in time order, from
/// the one holding the moment), or on a relay node (which holds the first of them).
public enum FootageLocation: Sendable {
    case here([FootagePlayer.Item])
    case node(String, start: Date)
}

/// What a relay that records needs: where segments go, and where its footage is found again.
public struct FootageSettings: Sendable {
    public var recorder: FootageRecorder.Configuration
    /// Where a playback of a camera from a moment finds its segments (the coordinator's catalog; a node's own folder).
    public var library: @Sendable (_ camera: String, _ moment: Date) async throws -> FootageLocation
    /// Told of each segment closed, with the incidents its camera was recorded for and the relay
    /// that holds it (``localRelay``, or a node's name for the segments its reports bring).
    public var onSegment: @Sendable (RecordedSegment, Set<Int64>, String) -> Void
    /// On the coordinator: a node removed these files; the files it must remove next.
    public var nodeRemovals: @Sendable (_ node: String, _ removed: [String]) async -> [String]
    /// Told when a camera's footage could not be written (a full disk): live video goes on.
    public var onFailure: @Sendable (String, MediaError) -> Void

    /// The name the relay's own segments are catalogued under.
    public var localRelay: String

    public init(
        recorder: FootageRecorder.Configuration, localRelay: String, library: @escaping @Sendable (String, Date) async throws -> FootageLocation,
        onSegment: @escaping @Sendable (RecordedSegment, Set<Int64>, String) -> Void, onFailure: @escaping @Sendable (String, MediaError) -> Void,
        nodeRemovals: @escaping @Sendable (String, [String]) async -> [String] = { _, _ in [] }
    ) {
        (self.recorder, self.localRelay, self.library, self.onSegment, self.onFailure) = (recorder, localRelay, library, onSegment, onFailure)
        self.nodeRemovals = nodeRemovals
    }
}

/// A relay's footage: its recorder, which cameras the coordinator wants recorded (for which
/// incidents), and the playbacks it serves.
struct FootageState: Sendable {
    var settings: FootageSettings?
    var recorder: FootageRecorder?
    var wanted: [String: Set<Int64>] = [:]
    var players: [String: FootagePlayer] = [:]
    /// The playbacks played through links, by view.
    var linkPlaybacks: [String: LinkPlayback] = [:]
}

/// A link's playback: the footage's player, and the feed of its own that the fan-out muxes for
/// the link's one player. Both start when the link is first played, so that the footage starts
/// at its moment however late the player comes.
struct LinkPlayback: Sendable {
    let player: FootagePlayer
    let feed: CameraFeed
    var started = false
}

extension Relay {
    /// Turns recording on: segments of the cameras ``record(_:)`` names go to `settings`' folder.
    public func enableFootage(_ settings: FootageSettings) {
        let recorder = FootageRecorder(configuration: settings.recorder, onSegment: { [weak self] segment in
            let incidents = self?.footage.withLock { $0.wanted[segment.camera] } ?? []
            settings.onSegment(segment, incidents, settings.localRelay)
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

    /// On the coordinator: the footage budget of each relay node alive that records.
    public func nodeFootageBudgets() -> [String: Int] {
        let now = clock.now()
        return state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.nodes.alive(now: now).compactMap { node in node.footageBudget.map { (node.name, $0) } })
        }
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
    /// time), then a player reads the camera's segments from the keyframe before the moment; for
    /// footage a relay node holds, the viewer is sent there with a ticket for that moment.
    ///
    /// - Parameter link: the link's token when the playback is played through a link.
    func openPlayback(_ body: FeedOpenBody, at moment: Date, for request: BusRequest, link: String? = nil) async throws -> (FeedOpenResult, FootagePlayer?, State.View) {
        // Before the decision, so that a relay that records nothing decides and records nothing
        // (``playback(_:camera:identity:at:delivery:)`` says the same to a node's link).
        guard footage.withLock({ $0.settings != nil }) else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "this relay records no footage", field: "body.at")
        }
        let allowed = try await authority.begin(body, for: request.identity)
        do {
            return try await playback(
                allowed, camera: body.camera, identity: request.identity, at: moment, delivery: link.map { .link(token: $0) } ?? .media(peer: request.peer))
        } catch {
            await authority.end(allowed.view, identity: request.identity)
            throw error
        }
    }

    /// The footage of an allowed playback: a player for the segments held here, or a redirect
    /// (with a ticket for the moment) to the relay node that holds them.
    func playback(
        _ allowed: AllowedView, camera: String, identity: BusIdentity, at moment: Date, delivery: State.Delivery
    ) async throws -> (FeedOpenResult, FootagePlayer?, State.View) {
        guard let (library, segmentSeconds) = footage.withLock({ state in state.settings.map { ($0.library, $0.recorder.segmentSeconds) } }) else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "this relay records no footage", field: "body.at")
        }
        let location = try await library(camera, moment)
        let start: Date? = switch location {
        case .here(let items): items.first?.segment.start
        case .node(_, let start): start
        }
        guard let start else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "no footage of \(camera) is kept from \(moment)", field: "body.at")
        }
        // A moment in a gap (before the recording, between incidents) is not silently moved to later footage.
        guard start <= moment.addingTimeInterval(segmentSeconds) else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "no footage of \(camera) at \(moment); the next starts at \(start)", field: "body.at")
        }
        let items: [FootagePlayer.Item]
        switch location {
        case .here(let held):
            items = held
        case .node(let name, _):
            let link = if case .link = delivery { true } else { false }
            var (result, view) = try redirect(to: name, allowed: allowed, camera: camera, identity: identity, link: link, playbackFrom: moment)
            view.playback = true
            return (result, nil, view)
        }
        let first = items[0]  // there is a start: there are items
        // The camera's masks now: footage recorded before they were registered is masked too. On a
        // relay node, the coordinator's ticket says which they are.
        let masks = allowed.masks ?? state.withLock { $0.sources[camera]?.masks } ?? []
        let (video, parameterSets) = try FootagePlayer.stream(of: first, masks: masks)
        let player = FootagePlayer(id: allowed.view, items: items, from: moment, masks: masks) { [self] reason in
            Task { try? await end(allowed.view, reason: reason, notify: true) }
        }
        var view = State.View(delivery: delivery, identity: identity, camera: camera, allowed: allowed)
        view.playback = true
        return (FeedOpenResult(view: allowed.view, grant: allowed.grant, stream: video.description(parameterSets: parameterSets)), player, view)
    }

    /// On the coordinator: what a node's report brings of footage (its closed segments, the files
    /// it removed) into the catalog, and the files it must remove now.
    func nodeFootage(_ body: RelayReportBody, node: String) async -> [String] {
        guard let settings = footage.withLock({ $0.settings }) else { return [] }
        let wanted = footage.withLock { $0.wanted }
        for segment in (body.segments ?? []).prefix(RelayReportBody.maximumSegments) {
            settings.onSegment(segment, wanted[segment.camera] ?? [], node)
        }
        return await settings.nodeRemovals(node, body.removed ?? [])
    }

    /// On a relay node: one of its segment files, for the coordinator that signed the ticket.
    func serveFetch(_ body: FootageFetchBody) throws -> (FootageFetchResult, Data) {
        guard let node = authority as? RelayNodeAuthority, let file = node.allowFetch(body.ticket) else {
            throw BusProtocol.ErrorBody(.ticketInvalid, message: "fetch footage with the ticket the coordinator signed", field: "body.ticket")
        }
        guard let directory = footage.withLock({ $0.settings?.recorder.directory }), RecordedSegment.staysInFolder(file),
              let bytes = try? Data(contentsOf: directory.appendingPathComponent(file))
        else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "this node holds no segment \(file)", field: "body.ticket")
        }
        return (FootageFetchResult(file: file, bytes: bytes.count), bytes)
    }

    /// On the coordinator: a segment file a relay node holds, fetched from its media endpoint with
    /// a ticket signed with its secret (blocking: call it off the cooperative pool).
    public func fetchFromNode(_ name: String, file: String) throws -> Data {
        guard let node = state.withLock({ $0.nodes.node(name) }) else {
            throw BusProtocol.ErrorBody(.footageUnavailable, message: "relay node \(name), which holds \(file), is not registered now", field: "body.camera")
        }
        let ticket = try FootageFetchTicket(file: file, expires: Date().addingTimeInterval(RelayTicket.lifetime)).signed(with: node.secret)
        let client = try BusClient(configuration: BusClientConfiguration(
            commandEndpoint: node.media, eventEndpoint: node.media, serverPublicKey: node.serverKey, keys: try CurveKeyPair.generate()))
        defer { client.close() }
        let id = try client.send(ProtocolOperation.footageFetch.rawValue, body: FootageFetchBody(ticket: ticket))
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard let frames = try client.receiveMessage(timeout: .seconds(1)) else { continue }
            guard let reply = try? BusProtocol.decoder.decode(FetchReply.self, from: frames[0]), reply.id == id else { continue }
            if let error = reply.error { throw error }
            guard frames.count == 2, reply.result?.bytes == frames[1].count else {
                throw BusProtocol.ErrorBody(.footageUnavailable, message: "relay node \(name) sent \(file) incomplete", field: "body.camera")
            }
            return frames[1]
        }
        throw BusProtocol.ErrorBody(.footageUnavailable, message: "relay node \(name) did not send \(file) within 30 s", field: "body.camera")
    }

    private struct FetchReply: Decodable {
        var id: String?
        var result: FootageFetchResult?
        var error: BusProtocol.ErrorBody?
    }

    /// Stops the player of a playback that ended, and a link's feed of it (nothing for a live view).
    func stopPlayer(of view: String) {
        let (player, linked) = footage.withLock { ($0.players.removeValue(forKey: view), $0.linkPlaybacks.removeValue(forKey: view)) }
        player?.stop()
        if let linked { Self.stop(linked) }
    }

    private static func stop(_ playback: LinkPlayback) {
        playback.player.stop()
        // A feed never started has no thread to wait for.
        if playback.started { playback.feed.stop() }
    }

    func startPlayer(_ player: FootagePlayer, for view: String) {
        footage.withLock { $0.players[view] = player }
        player.start()
    }

    /// A link's playback: the footage as a feed of its own (the player's packets, paced as they
    /// were recorded), which the fan-out muxes like a camera's for the link's one player. It
    /// makes no thumbnails, is not recorded, and is opened once: when the footage ends, the
    /// player ends the view, and the view's end stops the feed.
    func prepareLinkPlayback(_ player: FootagePlayer, camera: String, for view: String) {
        let opened = Atomic<Bool>(false)
        var configuration = CameraFeed.Configuration()
        configuration.openSource = { () throws(MediaError) -> (any PacketSource)? in
            guard !opened.exchange(true, ordering: .relaxed) else { throw MediaError(.sourceStalled, message: "the recorded footage has ended") }
            return try FootagePlayer.Source(player: player)
        }
        let feed = CameraFeed(camera: camera, url: "footage:\(camera)", configuration: configuration)
        footage.withLock { $0.linkPlaybacks[view] = LinkPlayback(player: player, feed: feed) }
    }

    /// The feed a link's playback plays, if `view` is one, started at its first use.
    func playbackFeed(of view: String) -> CameraFeed? {
        let (playback, starting) = footage.withLock { state -> (LinkPlayback?, Bool) in
            guard var playback = state.linkPlaybacks[view] else { return (nil, false) }
            let starting = !playback.started
            playback.started = true
            state.linkPlaybacks[view] = playback
            return (playback, starting)
        }
        if let playback, starting {
            playback.player.start()
            playback.feed.start()
        }
        return playback?.feed
    }

    /// Stops recording (closing the segments in progress) and every playback.
    func stopFootage() {
        let (recorder, players, linked) = footage.withLock { state in
            defer { (state.players, state.linkPlaybacks) = ([:], [:]) }
            return (state.recorder, Array(state.players.values), Array(state.linkPlaybacks.values))
        }
        players.forEach { $0.stop() }
        linked.forEach(Self.stop)
        recorder?.stop()
    }
}
