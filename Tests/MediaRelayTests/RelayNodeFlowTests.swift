import Bus
import Foundation
import Logging
import Streams
import Synchronization
import Testing
import VigilProtocol
@testable import MediaRelay

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let instant = Mutex(ContinuousClock.now)

    var relayClock: RelayClock { RelayClock { [self] in instant.withLock { $0 } } }

    func advance(by duration: Duration) {
        instant.withLock { $0 += duration }
    }
}

/// A view authority the test decides for: it allows every view, ends those it is told to, and
/// records what ended.
final class ScriptedAuthority: ViewAuthority {
    private let state = Mutex((next: 1, refusals: [String: String](), ended: [String]()))

    func begin(_ body: FeedOpenBody, for identity: BusIdentity) async throws -> AllowedView {
        let number = state.withLock { state in defer { state.next += 1 }; return state.next }
        return AllowedView(view: "v-\(number)", grant: "g-1", incident: 7)
    }

    func reasonToEnd(_ view: AllowedView, camera: String, identity: BusIdentity) async -> String? {
        state.withLock { $0.refusals[view.view] }
    }

    func end(_ view: String, identity: BusIdentity) async {
        state.withLock { $0.ended.append(view) }
    }

    func allowLink(_ token: String) -> LinkAllowance? { nil }

    func refuse(_ view: String, because reason: String) {
        state.withLock { $0.refusals[view] = reason }
    }

    var ended: [String] { state.withLock { $0.ended } }
}

/// A coordinator's relay with a relay node, in the test process: placement, the viewer's
/// redirect and ticket, the node's reports, a revocation and a node falling silent, with the
/// test's own clock. No socket is bound and no feed runs (the camera is the node's, or a
/// simulated one that is not simulated here).
@Suite("Relay nodes in process")
struct RelayNodeFlowTests {
    let clock = ManualClock()
    let authority = ScriptedAuthority()
    let viewer = BusIdentity(agency: "pz-5339", user: "pz.viewer")
    let node = BusIdentity(agency: "crisis-centre", user: "relay-1")
    let viewerKey = String(repeating: "v", count: 40)

    func coordinator() throws -> Relay {
        let bus = try BusServer(
            configuration: BusServerConfiguration(commandEndpoint: "inproc://relay-test.command", eventEndpoint: "inproc://relay-test.events", serverKeys: try CurveKeyPair.generate()),
            logger: Logger(label: "test"), authorize: { _ in nil }, authorizeSubscription: { _, _ in false })
        // No room on the coordinator's own relay: every camera goes to a node while one is alive.
        return try Relay(
            bus: bus, authority: authority, sources: ["c1": Relay.Source(url: "sim://c1", masks: [])], simulate: false, thumbnailInterval: .seconds(5),
            coordination: Relay.Coordination(capacity: RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 0, maximumMbps: 0), publicKey: { [viewerKey] _ in viewerKey }),
            clock: clock.relayClock, logger: Logger(label: "test"))
    }

    func registration() -> RelayRegisterBody {
        RelayRegisterBody(media: "tcp://127.0.0.2:7713", serverKey: String(repeating: "n", count: 40), maximumStreams: 100, maximumMbps: 1_000, links: nil)
    }

    func report(views: [String] = [], ended: [String] = []) -> RelayReportBody {
        RelayReportBody(cameras: [:], views: views, ended: ended, streams: 1, mbps: 4)
    }

    /// Opens a view of c1 as the media endpoint does, and returns it with its redirect.
    func watch(_ relay: Relay) async throws -> (view: String, redirect: FeedRedirect) {
        let allowed = try await authority.begin(FeedOpenBody(camera: "c1"), for: viewer)
        let (result, feed, view) = try await relay.attach(allowed, camera: "c1", identity: viewer, delivery: .media(peer: Data([1])))
        #expect(feed == nil, "the node serves the camera, not the coordinator")
        #expect(relay.state.withLock { $0.insert(view, id: result.view) })
        return (result.view, try #require(result.redirect))
    }

    @Test func aViewerIsSentToTheNodeWithATicketAndARevocationEndsTheViewThere() async throws {
        let relay = try coordinator()
        let registered = try relay.nodeRegistered(registration(), identity: node)
        relay.prewarm(["c1"], for: 7)
        let first = try await relay.nodeReported(report(), identity: node)
        #expect(first.assignments.map(\.camera) == ["c1"] && first.assignments.first?.url == "sim://c1", "the node keeps c1 open")

        let (view, redirect) = try await watch(relay)
        #expect(redirect.relay == "relay-1" && redirect.media == "tcp://127.0.0.2:7713")
        let secret = try #require(Data(base64Encoded: registered.secret))
        let ticket = try #require(RelayTicket.verified(redirect.ticket, with: secret))
        #expect(ticket.view == view && ticket.camera == "c1" && ticket.viewerKey == viewerKey && ticket.user == "pz.viewer" && ticket.link == nil)
        #expect(RelayTicket.verified(redirect.ticket, with: Data(repeating: 0, count: 32)) == nil, "only the node's secret opens it")

        // The node reports the view within the linger: it stays.
        _ = try await relay.nodeReported(report(views: [view]), identity: node)
        clock.advance(by: .seconds(1))
        await relay.tick()
        #expect(authority.ended.isEmpty)

        // The owner revokes: the next decision ends the view, and the node is told to end it too.
        authority.refuse(view, because: "grant_revoked: grant g-1 was revoked")
        await relay.tick()
        #expect(authority.ended == [view])
        let told = try await relay.nodeReported(report(views: [view]), identity: node)
        #expect(told.end == [view: "grant_revoked: grant g-1 was revoked"])
        let again = try await relay.nodeReported(report(ended: [view]), identity: node)
        #expect(again.end.isEmpty && authority.ended == [view], "told once, recorded once")
    }

    @Test func aNodeThatFallsSilentLosesItsViewsAndItsCameras() async throws {
        let relay = try coordinator()
        _ = try relay.nodeRegistered(registration(), identity: node)
        relay.prewarm(["c1"], for: 7)
        let (view, _) = try await watch(relay)
        _ = try await relay.nodeReported(report(views: [view]), identity: node)

        clock.advance(by: .seconds(4))
        await relay.tick()
        #expect(authority.ended.isEmpty, "4 s without a report: still alive")
        clock.advance(by: .seconds(2))
        await relay.tick()
        // Dropped: the camera comes back to the coordinator (no feed: a simulated camera that is
        // not simulated here), but the view is recorded ended only once the node has ended it
        // itself (10 s without an answer, and a second): never while it still plays.
        #expect(relay.state.withLock { $0.feeds["c1"]?.server } == .here)
        #expect(authority.ended.isEmpty, "the node still plays it")
        clock.advance(by: .seconds(5))
        await relay.tick()
        #expect(authority.ended == [view])
        #expect(relay.state.withLock { $0.view(view) } == nil)
        await #expect(throws: BusProtocol.ErrorBody.self) { try await relay.nodeReported(report(), identity: node) }
    }

    @Test func aViewerWhoNeverOpensTheFeedOnTheNodeIsEndedAfterTheLinger() async throws {
        let relay = try coordinator()
        _ = try relay.nodeRegistered(registration(), identity: node)
        relay.prewarm(["c1"], for: 7)
        let (view, _) = try await watch(relay)
        for _ in 0..<29 {
            clock.advance(by: .seconds(1))
            _ = try await relay.nodeReported(report(), identity: node)  // alive, but never reports the view
            await relay.tick()
        }
        #expect(authority.ended.isEmpty)
        clock.advance(by: .seconds(1))
        _ = try await relay.nodeReported(report(), identity: node)
        await relay.tick()
        #expect(authority.ended == [view])
    }
}
