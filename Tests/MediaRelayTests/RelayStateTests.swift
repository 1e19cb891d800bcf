import Bus
import Foundation
@testable import Streams
import Testing
import VigilProtocol
@testable import MediaRelay

/// A feed handle that does nothing: the state machine only keeps it and names it in its actions.
final class StubFeed: Sendable {
    let camera: String
    init(camera: String) { self.camera = camera }
}

typealias State = RelayState<StubFeed>

/// The cameras a list of actions starts and stops.
func started(_ actions: [State.Action]) -> Set<String> {
    Set(actions.compactMap { if case .start(let feed) = $0 { feed.camera } else { nil } })
}

func stopped(_ actions: [State.Action]) -> Set<String> {
    Set(actions.compactMap { if case .stop(let feed) = $0 { feed.camera } else { nil } })
}

func openStub(_ camera: String, _ source: Relay.Source) -> StubFeed { StubFeed(camera: camera) }

func sources(_ cameras: [String], url: (String) -> String = { "rtsp://cameras.test/\($0)" }) -> [String: Relay.Source] {
    Dictionary(uniqueKeysWithValues: cameras.map { ($0, Relay.Source(url: url($0), masks: [])) })
}

let viewer = BusIdentity(agency: "pz-5339", user: "officer")

func view(_ camera: String, delivery: State.Delivery, id: String, idleSince: ContinuousClock.Instant? = nil) -> State.View {
    var view = State.View(delivery: delivery, identity: viewer, camera: camera, allowed: AllowedView(view: id, grant: "g-1", incident: 7))
    view.idleSince = idleSince
    return view
}

func registration(links: String? = nil) -> RelayRegisterBody {
    RelayRegisterBody(
        media: "tcp://127.0.0.2:7713", serverKey: String(repeating: "k", count: 40), maximumStreams: 1_000, maximumMbps: 10_000, links: links)
}

let relayNode = BusIdentity(agency: "crisis-centre", user: "relay-a")
/// When the upstream tickets of a report expire (on the coordinator's clock).
let ticketsExpire = Date(timeIntervalSinceNow: 30)

func report(views: [String] = [], ended: [String] = [], cameras: [String: WireFeedState] = [:]) -> RelayReportBody {
    RelayReportBody(cameras: cameras, views: views, ended: ended, streams: 0, mbps: 0)
}

/// The relay's decisions, driven by instants of the test's own: no feed runs, nothing sleeps.
@Suite("Relay state")
struct RelayStateTests {
    let t0 = ContinuousClock.now

    @Test func aCameraNoIncidentWantsLingersThirtySecondsThenItsFeedStops() {
        var state = State(sources: sources(["c1", "c2"]), coordinatorCapacity: nil, simulate: false)
        let opened = state.prewarm(["c1", "c2"], for: 7, now: t0, open: openStub)
        #expect(started(opened) == ["c1", "c2"])
        let again = state.prewarm(["c1"], for: 8, now: t0, open: openStub)
        #expect(again.isEmpty, "an open feed is not opened twice")
        state.release(["c1", "c2"], by: 7, now: t0)
        let early = state.tick(now: t0 + .seconds(29), open: openStub)
        #expect(stopped(early).isEmpty)
        let due = state.tick(now: t0 + .seconds(30), open: openStub)
        #expect(stopped(due) == ["c2"], "c1 is still selected by incident 8")
        #expect(state.feed(of: "c2") == nil && state.feed(of: "c1") != nil)
    }

    @Test func aSelectedCameraComingBackWithinTheLingerKeepsItsFeed() {
        var state = State(sources: sources(["c1"]), coordinatorCapacity: nil, simulate: false)
        let first = state.prewarm(["c1"], for: 7, now: t0, open: openStub)
        state.release(["c1"], by: 7, now: t0)
        let back = state.prewarm(["c1"], for: 9, now: t0 + .seconds(20), open: openStub)
        let later = state.tick(now: t0 + .seconds(60), open: openStub)
        #expect(back.isEmpty && later.isEmpty)
        let feed: StubFeed? = first.compactMap { if case .start(let feed) = $0 { feed } else { nil } }.first
        #expect(state.feed(of: "c1") === feed)
    }

    @Test func aViewKeepsItsCameraOpenAndReleasesItWhenItEnds() {
        var state = State(sources: sources(["c1"]), coordinatorCapacity: nil, simulate: false)
        let wanted = state.want("c1", now: t0, open: openStub)
        #expect(wanted.server == .here && wanted.feed != nil && started(wanted.actions) == ["c1"])
        let inserted = state.insert(view("c1", delivery: .media(peer: Data([1])), id: "v1"), id: "v1")
        let twice = state.insert(view("c1", delivery: .media(peer: Data([2])), id: "v1"), id: "v1")
        #expect(inserted && !twice, "one viewer per view")
        let watched = state.tick(now: t0 + .seconds(120), open: openStub)
        #expect(watched.isEmpty, "watched, never released")
        let ended = state.end("v1", reason: "closed by the viewer", notify: false, now: t0 + .seconds(120))
        #expect(ended?.feed === wanted.feed)
        let endedAgain = state.end("v1", reason: "again", notify: false, now: t0 + .seconds(120))
        #expect(endedAgain == nil)
        let released = state.tick(now: t0 + .seconds(150), open: openStub)
        #expect(stopped(released) == ["c1"])
    }

    @Test func simulatedCamerasHaveAPictureOnlyForAViewAndOnlyWhenSimulated() {
        let simulated = sources(["c1"]) { "sim://\($0)" }
        var quiet = State(sources: simulated, coordinatorCapacity: nil, simulate: false)
        let quietSelected = quiet.prewarm(["c1"], for: 7, now: t0, open: openStub)
        let quietWatched = quiet.want("c1", now: t0, open: openStub)
        #expect(quietSelected.isEmpty && quietWatched.feed == nil, "no picture without --simulate")
        var demo = State(sources: simulated, coordinatorCapacity: nil, simulate: true)
        let demoSelected = demo.prewarm(["c1"], for: 7, now: t0, open: openStub)
        #expect(demoSelected.isEmpty, "selected, not encoded until watched")
        let demoWatched = demo.want("c1", now: t0, open: openStub)
        #expect(started(demoWatched.actions) == ["c1"])
        // A simulated camera the coordinator wants recorded opens like a watched one.
        var recording = State(sources: sources(["c2", "c3"]) { "sim://\($0)" }, coordinatorCapacity: nil, simulate: true)
        _ = recording.prewarm(["c2", "c3"], for: 7, now: t0, open: openStub)
        recording.recorded = ["c2"]
        #expect(started(recording.place(now: t0, open: openStub)) == ["c2"])
    }

    @Test func camerasSpreadOverARegisteredNodeAndComeBackWhenItFallsSilent() throws {
        let cameras = (0..<60).map { "c\($0)" }
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 1_000, maximumMbps: 10_000)
        var state = State(sources: sources(cameras), coordinatorCapacity: capacity, simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        let here = started(state.prewarm(cameras, for: 7, now: t0, open: openStub))
        #expect((10...50).contains(here.count), "a share for each relay: \(here.count) here")
        let assigned = try state.reportNode(report(), identity: relayNode, now: t0 + .seconds(1), ticketsExpire: ticketsExpire).reply.assignments.map(\.camera)
        #expect(Set(assigned).isDisjoint(with: here) && Set(assigned).union(here) == Set(cameras), "every camera on exactly one relay")
        let alive = state.tick(now: t0 + .seconds(5), open: openStub)
        #expect(alive.isEmpty, "reported 4 s ago: still alive")
        let back = started(state.tick(now: t0 + .seconds(6), open: openStub))
        #expect(back == Set(assigned), "silent for 5 s: its cameras come back here")
        #expect(throws: BusProtocol.ErrorBody.self) { try state.reportNode(report(), identity: relayNode, now: t0 + .seconds(7), ticketsExpire: ticketsExpire) }
    }

    /// A playback on a node paints the camera's masks the coordinator knows now, which its
    /// ticket carries: the node may no longer carry the camera, or not yet know a new mask.
    @Test func aPlaybackTicketCarriesTheCamerasMasksNowAndALiveOneNone() throws {
        let secret = Data(repeating: 1, count: 32)
        let masks: [Thumbnailer.Mask] = [[[0.5, 0], [1, 0], [1, 1], [0.5, 1]]]
        var cameras = sources(["c1", "c2"])
        cameras["c1"] = Relay.Source(url: "rtsp://cameras.test/c1", masks: masks)
        var state = State(sources: cameras, coordinatorCapacity: RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 0, maximumMbps: 0), simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: secret, now: t0, open: openStub)
        let allowed = AllowedView(view: "v-1", grant: "g-1", incident: 7)
        let moment = Date(timeIntervalSinceNow: -60)
        let playback = try state.redirect(
            to: "relay-a", for: allowed, camera: "c1", identity: BusIdentity(agency: "pz-5339", user: "officer"), viewerKey: "", link: true,
            expires: ticketsExpire, playbackFrom: moment)
        let live = try state.redirect(
            to: "relay-a", for: allowed, camera: "c1", identity: BusIdentity(agency: "pz-5339", user: "officer"), viewerKey: "", link: true,
            expires: ticketsExpire)

        let node = RelayNodeAuthority()
        node.registered(secret: secret, coordinatorNow: Date())
        let played = try #require(node.allowLink(playback.ticket))
        #expect(played.at != nil && played.allowed.masks == masks, "the node paints the masks the ticket carries")
        #expect(try #require(node.allowLink(live.ticket)).allowed.masks == nil, "live video is masked where the camera is pulled")
        // A camera without masks: its playback's ticket says so, nothing painted, whatever the node last knew.
        let unmasked = try state.redirect(
            to: "relay-a", for: allowed, camera: "c2", identity: BusIdentity(agency: "pz-5339", user: "officer"), viewerKey: "", link: true,
            expires: ticketsExpire, playbackFrom: moment)
        #expect(try #require(node.allowLink(unmasked.ticket)).allowed.masks == [])
    }

    /// Sticky: cameras served here when a node registers stay here (their feeds are warm, their
    /// viewers connected); the node takes the cameras that come after.
    @Test func aNodeRegisteringTakesNewCamerasNotThoseServedHere() throws {
        let cameras = (0..<60).map { "c\($0)" }
        let later = (60..<120).map { "c\($0)" }
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 1_000, maximumMbps: 10_000)
        var state = State(sources: sources(cameras + later), coordinatorCapacity: capacity, simulate: false)
        #expect(started(state.prewarm(cameras, for: 7, now: t0, open: openStub)) == Set(cameras), "no node: every camera here")
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        let here = started(state.prewarm(later, for: 8, now: t0, open: openStub))
        #expect(state.openFeeds.keys.filter(cameras.contains).count == 60, "none of those served here moved")
        #expect((10...50).contains(here.count), "the new ones are spread: \(here.count) here")
    }

    @Test func aNodeReportMarksItsViewsEndsWhatItEndedAndTellsItToEndStrangers() throws {
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 0, maximumMbps: 0)
        var state = State(sources: sources(["c1"]), coordinatorCapacity: capacity, simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        let wanted = state.want("c1", now: t0, open: openStub)
        #expect(wanted.server == .node("relay-a"), "no room here: the node serves it")
        _ = state.insert(view("c1", delivery: .node("relay-a"), id: "v1", idleSince: t0), id: "v1")

        let first = try state.reportNode(report(views: ["v1", "forged"]), identity: relayNode, now: t0 + .seconds(1), ticketsExpire: ticketsExpire)
        #expect(first.reply.end == ["forged": "the server holds no such view"])
        #expect(state.view("v1")?.idleSince == nil, "reported: the viewer opened it")

        let second = try state.reportNode(report(ended: ["v1"]), identity: relayNode, now: t0 + .seconds(2), ticketsExpire: ticketsExpire)
        #expect(second.ended.map(\.id) == ["v1"] && state.view("v1") == nil)
        let late = try state.reportNode(report(views: ["v1"]), identity: relayNode, now: t0 + .seconds(3), ticketsExpire: ticketsExpire)
        #expect(late.reply.end.isEmpty, "a view that ended here lately is on its way out")
        let later = try state.reportNode(report(views: ["v1"]), identity: relayNode, now: t0 + .seconds(40), ticketsExpire: ticketsExpire)
        #expect(later.reply.end["v1"] != nil, "once every ticket for it expired, it is a stranger")
    }

    @Test func aNewCoordinatorAdoptsTheViewsANodeStillServesAndOnlyThose() throws {
        // Room here too: without the adopted view, the camera could be placed here.
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 100, maximumMbps: 1_000)
        var state = State(sources: sources(["c1", "c2"]), coordinatorCapacity: capacity, simulate: false)
        for id in ["v1", "v2", "gone"] {
            state.adoptable[id] = .init(identity: viewer, camera: id == "v2" ? "c2" : "c1", allowed: AllowedView(view: id, grant: "g-1", incident: 7))
        }
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        let first = try state.reportNode(report(views: ["v1", "stranger"]), identity: relayNode, now: t0 + .seconds(1), ticketsExpire: ticketsExpire)
        #expect(first.reply.end == ["stranger": "the server holds no such view"], "a view nobody recorded is still ended")
        let adopted = try #require(state.view("v1"))
        #expect(adopted.delivery == .node("relay-a") && adopted.allowed.grant == "g-1" && adopted.identity == viewer)
        #expect(state.feed(of: "c1") == nil && first.reply.assignments.map(\.camera) == ["c1"], "its camera stays on the node that plays it")
        #expect(state.adoptable.keys.sorted() == ["gone", "v2"], "the others wait for their node, or for the window's end")
        // An adopted view ends like any other: the node is told, the camera is released.
        let ended = state.end("v1", reason: "grant revoked", notify: true, now: t0 + .seconds(2))
        #expect(ended?.view.camera == "c1")
        let next = try state.reportNode(report(), identity: relayNode, now: t0 + .seconds(2), ticketsExpire: ticketsExpire)
        #expect(next.reply.end == ["v1": "grant revoked"])
    }

    @Test func aViewersClaimThatANodeStoppedCountsOnlyOnceTheNodeMissedAReport() throws {
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 100, maximumMbps: 1_000)
        var state = State(sources: sources(["c1"]), coordinatorCapacity: capacity, simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        _ = try state.reportNode(report(), identity: relayNode, now: t0, ticketsExpire: ticketsExpire)
        #expect(state.viewerLostNode("relay-a", now: t0 + .seconds(1), open: openStub).isEmpty && state.nodes.node("relay-a") != nil, "it reported a second ago")
        #expect(state.viewerLostNode("no-such-node", now: t0 + .seconds(2), open: openStub).isEmpty, "a node nobody registered changes nothing")
        _ = state.viewerLostNode("relay-a", now: t0 + .seconds(1.3), open: openStub)
        #expect(state.nodes.node("relay-a") == nil, "silent for more than a report's interval too: dropped at once")
        #expect(state.nodes.fallenSilent["relay-a"] == t0, "its views end as a silent node's, once it has ended them itself")
    }

    @Test func aNodesCameraStatesArePublishedWhenTheyChangeAndOnlyForItsCameras() throws {
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 0, maximumMbps: 0)
        var state = State(sources: sources(["c1"]), coordinatorCapacity: capacity, simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        _ = state.prewarm(["c1"], for: 7, now: t0, open: openStub)
        let live = WireFeedState(.live)
        let first = try state.reportNode(report(cameras: ["c1": live, "not-assigned": live]), identity: relayNode, now: t0, ticketsExpire: ticketsExpire)
        #expect(first.states.map(\.camera) == ["c1"] && first.states.first?.incidents == [7])
        let unchanged = try state.reportNode(report(cameras: ["c1": live]), identity: relayNode, now: t0, ticketsExpire: ticketsExpire)
        #expect(unchanged.states.isEmpty, "unchanged: not published again")
        let down = try state.reportNode(report(cameras: ["c1": WireFeedState(.down(reason: "timeout"))]), identity: relayNode, now: t0, ticketsExpire: ticketsExpire)
        #expect(down.states.first?.state == .down(reason: "timeout"))
    }

    @Test func viewsEndForAVanishedViewerASilentNodeOrALinkNobodyPlays() throws {
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 1_000, maximumMbps: 10_000)
        var state = State(sources: sources(["c1"]), coordinatorCapacity: capacity, simulate: false)
        _ = try state.registerNode(registration(), identity: relayNode, publicKey: nil, secret: Data(repeating: 1, count: 32), now: t0, open: openStub)
        _ = state.insert(view("c1", delivery: .media(peer: Data([1])), id: "media"), id: "media")
        _ = state.insert(view("c1", delivery: .link(token: "t"), id: "link", idleSince: t0), id: "link")
        _ = state.insert(view("c1", delivery: .node("relay-a"), id: "node"), id: "node")
        func reasons(at instant: ContinuousClock.Instant) -> [String: String] {
            Dictionary(uniqueKeysWithValues: state.viewsToDecide(now: instant).compactMap { id, _, reason in reason.map { (id, $0) } })
        }
        let unknown = reasons(at: t0 + .seconds(4))
        #expect(unknown.isEmpty, "nothing known yet: the authority decides")
        state.unreachable([Data([1])])
        let gone = reasons(at: t0 + .seconds(4))
        #expect(gone == ["media": "the viewer is gone"])
        let once = reasons(at: t0 + .seconds(4))
        #expect(once.isEmpty, "told once")
        // Silent for 5 s, the node is dropped (its cameras go elsewhere), but its view is recorded
        // stopped only once the node has ended it (10 s without an answer, and a second).
        _ = state.place(now: t0 + .seconds(6), open: openStub)
        #expect(reasons(at: t0 + .seconds(10))["node"] == nil, "the node still plays it")
        let late = reasons(at: t0 + .seconds(30))
        #expect(late["link"] == "the link was not played for 30 s" && late["node"] == "relay node relay-a stopped reporting")
    }

    @Test func aLinkIsPlayedByOnePlayerAtATimeTheLatestTakingOverAndLingersWhenItStops() throws {
        var state = State(sources: sources(["c1"]), coordinatorCapacity: nil, simulate: false)
        _ = state.insert(view("c1", delivery: .link(token: "t"), id: "link", idleSince: t0), id: "link")
        #expect(state.view(withToken: "t")?.id == "link" && state.view(withToken: "u") == nil)
        let first = FanOut.Player(number: 1), second = FanOut.Player(number: 2)
        let started = state.startPlaying("link", player: first)
        #expect(started != nil && started?.replaced == nil)
        // The player reconnects before the relay saw its first connection close: it takes over.
        let takenOver = state.startPlaying("link", player: second)
        #expect(takenOver?.replaced == first, "the first player is handed back to be cut off")
        #expect(state.view("link")?.player == second)
        state.stopPlaying("link", player: first, now: t0 + .seconds(10))
        #expect(state.view("link")?.player == second && state.view("link")?.idleSince == nil, "the replaced player's end changes nothing")
        let whilePlayed = state.viewsToDecide(now: t0 + .seconds(60))
        #expect(whilePlayed.allSatisfy { $0.reason == nil }, "played: never idle")
        state.stopPlaying("link", player: second, now: t0 + .seconds(60))
        let afterwards = state.viewsToDecide(now: t0 + .seconds(90))
        #expect(afterwards.first?.reason == "the link was not played for 30 s")
        _ = state.end("link", reason: "ended", notify: false, now: t0 + .seconds(90))
        let afterEnd = state.startPlaying("link", player: FanOut.Player(number: 3))
        #expect(afterEnd == nil, "an ended link plays nothing")
    }

    @Test func registrationsAndReportsRefuseWhatIsNotARelayNode() throws {
        var onANode = State(sources: [:], coordinatorCapacity: nil, simulate: false)
        #expect(throws: BusProtocol.ErrorBody.self) { try onANode.reportNode(report(), identity: viewer, now: t0, ticketsExpire: ticketsExpire) }
        let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 1, maximumMbps: 1)
        var coordinator = State(sources: [:], coordinatorCapacity: capacity, simulate: false)
        func code(_ body: () throws -> Void) -> String? {
            do { try body() } catch let error as BusProtocol.ErrorBody { return error.code } catch { return "\(error)" }
            return nil
        }
        #expect(code { _ = try coordinator.registerNode(registration(), identity: BusIdentity(agency: "crisis-centre"), publicKey: nil, secret: Data(), now: t0, open: openStub) }
            == "named_user_required")
        var bad = registration()
        bad.media = "ipc:///tmp/x"
        #expect(code { _ = try coordinator.registerNode(bad, identity: relayNode, publicKey: nil, secret: Data(), now: t0, open: openStub) } == "relay_invalid")
        #expect(code { _ = try coordinator.registerNode(registration(links: "ftp://x"), identity: relayNode, publicKey: nil, secret: Data(), now: t0, open: openStub) } == "relay_invalid")
        #expect(code { _ = try coordinator.reportNode(report(), identity: relayNode, now: t0, ticketsExpire: ticketsExpire) } == "relay_unknown")
    }
}
