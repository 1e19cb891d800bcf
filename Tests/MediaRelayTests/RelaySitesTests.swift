import Bus
import Foundation
@testable import Streams
import Testing
import VigilProtocol
@testable import MediaRelay

/// Origin and edge relay nodes, as the coordinator decides them: an owner's cameras are pulled
/// at its site, and viewers of another site are served by an edge node there.
@Suite("Relay sites")
struct RelaySitesTests {
    let t0 = ContinuousClock.now
    /// The coordinator's own relay has room: a camera is pulled at its owner's site all the same.
    let capacity = RelayPlacement.Relay(name: "vigil:serve", maximumStreams: 1_000, maximumMbps: 10_000)

    /// Nodes by name: their site, the owners they pull, and their secret (its first byte differs).
    let nodes: [(name: String, site: String, origins: [String])] = [
        ("origin-a", "stib-dc", ["stib"]), ("origin-b", "stib-dc", ["stib"]),
        ("north-1", "north", []), ("north-2", "north", []), ("south-1", "south", []), ("east-1", "east", []),
    ]

    func secret(_ name: String) -> Data { Data(repeating: UInt8(nodes.firstIndex { $0.name == name }! + 1), count: 32) }
    func key(_ name: String) -> String { String((name + String(repeating: "k", count: 40)).prefix(40)) }
    /// The origins are STIB's own relay users; the others the crisis centre's.
    func identity(_ name: String) -> BusIdentity { BusIdentity(agency: name.hasPrefix("origin") ? "stib" : "crisis-centre", user: name) }

    /// A coordinator with every node registered, `stib-*` cameras owned by STIB, the others by a police zone.
    func coordinator(cameras: [String]) throws -> State {
        let sources = Dictionary(uniqueKeysWithValues: cameras.map { ($0, Relay.Source(url: "rtsp://cameras.test/\($0)", masks: [], owner: $0.hasPrefix("stib") ? "stib" : "pz-5339")) })
        var state = State(sources: sources, coordinatorCapacity: capacity, simulate: false)
        for (index, node) in nodes.enumerated() {
            let body = RelayRegisterBody(
                media: "tcp://10.0.\(index).1:7723", serverKey: key(node.name), maximumStreams: 100, maximumMbps: 1_000, site: node.site,
                origins: node.origins.isEmpty ? nil : node.origins)
            _ = try state.registerNode(body, identity: identity(node.name), publicKey: key(node.name), secret: secret(node.name), now: t0, open: openStub)
        }
        return state
    }

    @Test func anOwnersCamerasArePulledOnlyAtItsSiteTheOthersAnywhere() throws {
        let stib = (0..<40).map { "stib-\($0)" }, police = (0..<40).map { "pz-\($0)" }
        var state = try coordinator(cameras: stib + police)
        _ = state.prewarm(stib + police, for: 7, now: t0, open: openStub)
        let servers = Dictionary(uniqueKeysWithValues: (stib + police).map { ($0, state.want($0, now: t0, open: openStub).server) })
        #expect(Set(stib.map { servers[$0]! }) == [.node("origin-a"), .node("origin-b")], "both STIB nodes share STIB's cameras, no one else has any")
        let policeServers = Set(police.map { servers[$0]! })
        #expect(policeServers.count >= 4, "a police camera goes anywhere, the coordinator included: \(policeServers)")
        #expect(policeServers.isDisjoint(with: [.node("origin-a"), .node("origin-b")]), "but not to STIB's own nodes: \(policeServers)")
        #expect(state.nodes.ownerSites == ["stib": "stib-dc"], "only STIB's cameras have a site of their own")
    }

    /// Naming the owner's site does not make a node one of the owner's: a node of another agency
    /// standing (or saying it stands) at STIB's site pulls none of STIB's cameras, which would
    /// hand it their source URLs and credentials.
    @Test func anotherAgencysNodeAtTheOwnersSitePullsNoneOfItsCameras() throws {
        let stib = (0..<40).map { "stib-\($0)" }
        var state = try coordinator(cameras: stib)
        let namesSite = RelayRegisterBody(media: "tcp://10.0.9.1:7723", serverKey: key("claimant"), maximumStreams: 100, maximumMbps: 1_000, site: "stib-dc")
        _ = try state.registerNode(namesSite, identity: BusIdentity(agency: "crisis-centre", user: "claimant"), publicKey: key("claimant"),
                                   secret: Data(repeating: 99, count: 32), now: t0, open: openStub)
        _ = state.prewarm(stib, for: 7, now: t0, open: openStub)
        let servers = Set(stib.map { state.want($0, now: t0, open: openStub).server })
        #expect(servers == [.node("origin-a"), .node("origin-b")], "STIB's cameras stay on STIB's own nodes: \(servers)")
    }

    /// Nor is an owner's node another owner's edge: a viewer at STIB's site watching a police
    /// camera is served where the camera is, not through STIB's nodes.
    @Test func anOwnersNodeIsNoEdgeForAnotherOwnersCamera() throws {
        var state = try coordinator(cameras: (0..<40).map { "pz-\($0)" } + ["stib-0"])  // STIB owns a camera: its nodes are an owner's
        _ = state.prewarm((0..<40).map { "pz-\($0)" }, for: 7, now: t0, open: openStub)
        let onNode = try #require((0..<40).map { "pz-\($0)" }.first { camera in
            if case .node(let name) = state.want(camera, now: t0, open: openStub).server { name.hasPrefix("north") || name.hasPrefix("south") } else { false }
        })
        let origin = state.want(onNode, now: t0, open: openStub).server
        #expect(state.want(onNode, site: "stib-dc", now: t0, open: openStub).server == origin, "served by its own relay, not by STIB's")
        #expect(state.want(onNode, site: "east", now: t0, open: openStub).server == .node("east-1"), "a node of the platform's is an edge as before")
    }

    @Test func aViewerAtAnotherSiteIsServedByAnEdgeThereOthersByTheOrigin() throws {
        var state = try coordinator(cameras: ["stib-7"])
        let origin = try #require({ if case .node(let name) = state.want("stib-7", now: t0, open: openStub).server { name } else { nil } }())
        #expect(state.want("stib-7", site: "stib-dc", now: t0, open: openStub).server == .node(origin), "a viewer at the origin's site: the origin")
        #expect(state.want("stib-7", site: "west", now: t0, open: openStub).server == .node(origin), "a site without nodes: the origin")
        let north = state.want("stib-7", site: "north", now: t0, open: openStub).server
        #expect([.node("north-1"), .node("north-2")].contains(north))
        for _ in 0..<10 { #expect(state.want("stib-7", site: "north", now: t0, open: openStub).server == north, "one edge per site, whoever comes") }
        #expect(state.want("stib-7", site: "south", now: t0, open: openStub).server == .node("south-1"))
    }

    /// 100 viewers in three places cost three streams between sites: the origin lists three
    /// edges, each edge's assignment pulls from it with a ticket the origin accepts.
    @Test func hundredViewersInThreePlacesMakeThreeUpstreamsEachWithATicketForItsEdge() throws {
        var state = try coordinator(cameras: ["stib-7"])
        var served: [String: Set<State.Server>] = [:]
        for index in 0..<100 {
            let site = ["north", "south", "east"][index % 3]
            let server = state.want("stib-7", site: site, now: t0, open: openStub).server
            served[site, default: []].insert(server)
            guard case .node(let node) = server else { continue }
            _ = state.insert(view("stib-7", delivery: .node(node), id: "v\(index)"), id: "v\(index)")
        }
        #expect(served.values.allSatisfy { $0.count == 1 }, "each site's viewers share one edge: \(served)")
        let edges = Set(served.values.flatMap { $0 }.compactMap { if case .node(let name) = $0 { name } else { nil } })
        #expect(edges.count == 3)
        let origin = try #require({ if case .node(let name) = state.want("stib-7", now: t0, open: openStub).server { name } else { nil } }())
        let fromOrigin = try state.reportNode(report(), identity: identity(origin), now: t0 + .seconds(1), ticketsExpire: ticketsExpire).reply
        #expect(fromOrigin.assignments.map(\.camera) == ["stib-7"] && Set(fromOrigin.assignments.first?.edges ?? []) == edges)
        for edge in edges {
            let reply = try state.reportNode(report(), identity: identity(edge), now: t0 + .seconds(1), ticketsExpire: ticketsExpire).reply
            let assignment = try #require(reply.assignments.first)
            #expect(reply.assignments.count == 1 && assignment.url == "relay://\(origin)/stib-7" && assignment.edges == nil)
            let upstream = try #require(assignment.upstream)
            #expect(upstream.relay == origin && upstream.serverKey == key(origin))
            let ticket = try #require(RelayTicket.verified(upstream.ticket, with: secret(origin)), "signed with the origin's secret")
            #expect(ticket.edge == edge && ticket.viewerKey == key(edge) && ticket.camera == "stib-7")
            #expect(RelayTicket.verified(upstream.ticket, with: secret(edge)) == nil)
        }
    }

    @Test func anEdgeNobodyWatchesLingersThenGoesAndOneWhoseNodeFallsSilentIsReplaced() throws {
        var state = try coordinator(cameras: ["stib-7"])
        let south = state.want("stib-7", site: "south", now: t0, open: openStub).server
        #expect(south == .node("south-1"))
        _ = state.insert(view("stib-7", delivery: .node("south-1"), id: "v1"), id: "v1")
        let north = state.want("stib-7", site: "north", now: t0, open: openStub).server
        guard case .node(let northNode) = north else { Issue.record("no edge in the north"); return }
        _ = state.insert(view("stib-7", delivery: .node(northNode), id: "v2"), id: "v2")
        // Every node but the north edge keeps reporting.
        func keepAlive(_ at: ContinuousClock.Instant) throws {
            for node in nodes.map(\.name) where node != northNode { _ = try state.reportNode(report(), identity: identity(node), now: at, ticketsExpire: ticketsExpire) }
        }
        _ = state.end("v1", reason: "closed by the viewer", notify: false, now: t0 + .seconds(1))
        for second in 2...40 {
            try keepAlive(t0 + .seconds(second))
            _ = state.tick(now: t0 + .seconds(second), open: openStub)
        }
        let edges = state.feeds["stib-7"]?.edges ?? [:]
        #expect(edges["south"] == nil, "nobody watched in the south for 30 s: its edge is gone")
        #expect(edges["north"] == nil, "the north edge fell silent: gone with its node")
        let again = state.want("stib-7", site: "north", now: t0 + .seconds(40), open: openStub).server
        #expect(again != north && [.node("north-1"), .node("north-2")].contains(again), "the next viewer there gets the other north node")
    }

    @Test func anOriginServesAnEdgeOnlyWhileTheCoordinatorListsItAndDoesNotReportItsPulls() throws {
        var origin = State(sources: [:], coordinatorCapacity: nil, simulate: false)
        _ = origin.hold([RelayAssignment(camera: "stib-7", url: "rtsp://cameras.test/stib-7", masks: [], edges: ["north-1"])], now: t0, open: openStub)
        #expect(origin.upstreamEdges == ["stib-7": ["north-1"]])
        var pull = view("stib-7", delivery: .media(peer: Data([9])), id: "upstream-north-1")
        pull.edge = "north-1"
        _ = origin.insert(pull, id: "upstream-north-1")
        _ = origin.insert(view("stib-7", delivery: .media(peer: Data([1])), id: "v1"), id: "v1")
        #expect(origin.viewIDs == ["v1"], "an edge's pull is not a view the coordinator records")
        #expect(origin.viewsToDecide(now: t0).allSatisfy { $0.reason == nil })
        _ = origin.hold([RelayAssignment(camera: "stib-7", url: "rtsp://cameras.test/stib-7", masks: [])], now: t0 + .seconds(1), open: openStub)
        #expect(origin.viewsToDecide(now: t0 + .seconds(1)).allSatisfy { $0.reason == nil }, "unlisted a moment (a failover): the pull goes on")
        let reasons = origin.viewsToDecide(now: t0 + .seconds(6)).filter { $0.reason != nil }
        #expect(reasons.map(\.id) == ["upstream-north-1"] && reasons.first?.reason == "edge relay node north-1 no longer pulls camera stib-7 from here")
        // Listed again within the grace, a pull starts a new grace when unlisted later.
        _ = origin.hold([RelayAssignment(camera: "stib-7", url: "rtsp://cameras.test/stib-7", masks: [], edges: ["north-1"])], now: t0 + .seconds(7), open: openStub)
        #expect(origin.viewsToDecide(now: t0 + .seconds(7)).allSatisfy { $0.reason == nil })
        _ = origin.hold([RelayAssignment(camera: "stib-7", url: "rtsp://cameras.test/stib-7", masks: [])], now: t0 + .seconds(8), open: openStub)
        #expect(origin.viewsToDecide(now: t0 + .seconds(10)).allSatisfy { $0.reason == nil })
    }

    /// A camera's privacy masks changed by its owner: the node that pulls it from the camera opens
    /// it again with them at once; an edge, whose copy comes masked from its origin, does not.
    @Test func aChangeOfMasksOpensTheCameraAgainWhereItIsPulledFromTheCamera() throws {
        func reopened(_ actions: [State.Action]) -> [String] {
            actions.compactMap { if case .reopen(let feed) = $0 { feed.camera } else { nil } }
        }
        let leftHalf: [[[Double]]] = [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]
        var origin = State(sources: [:], coordinatorCapacity: nil, simulate: false)
        let assigned = RelayAssignment(camera: "stib-7", url: "rtsp://cameras.test/stib-7", masks: [])
        _ = origin.hold([assigned], now: t0, open: openStub)
        #expect(origin.feeds["stib-7"]?.feed != nil, "the node pulls the camera")
        var masked = assigned
        masked.masks = leftHalf
        #expect(reopened(origin.hold([masked], now: t0 + .seconds(1), open: openStub)) == ["stib-7"])
        #expect(reopened(origin.hold([masked], now: t0 + .seconds(2), open: openStub)).isEmpty, "the same masks: nothing to do")
        #expect(origin.sources["stib-7"]?.masks == leftHalf)

        var edge = State(sources: [:], coordinatorCapacity: nil, simulate: false)
        var pulled = RelayAssignment(camera: "stib-7", url: "relay://origin-a/stib-7", masks: [], upstream: FeedRedirect(relay: "origin-a", media: "tcp://10.0.0.1:7723", serverKey: key("origin-a"), ticket: "t"))
        _ = edge.hold([pulled], now: t0, open: openStub)
        #expect(edge.feeds["stib-7"]?.feed != nil, "the edge pulls the camera from its origin")
        pulled.masks = leftHalf
        #expect(reopened(edge.hold([pulled], now: t0 + .seconds(1), open: openStub)).isEmpty, "an edge's copy is masked at its origin")

        // On a coordinator, a registry reload.
        var coordinator = State(sources: ["pz-1": Relay.Source(url: "rtsp://cameras.test/pz-1", masks: [], owner: "pz-5339")],
                                coordinatorCapacity: capacity, simulate: false)
        _ = coordinator.prewarm(["pz-1"], for: 1, now: t0, open: openStub)
        #expect(coordinator.feeds["pz-1"]?.feed != nil)
        #expect(reopened(coordinator.replaceSources(["pz-1": Relay.Source(url: "rtsp://cameras.test/pz-1", masks: leftHalf, owner: "pz-5339")])) == ["pz-1"])
        #expect(reopened(coordinator.replaceSources(["pz-1": Relay.Source(url: "rtsp://cameras.test/pz-1", masks: leftHalf, owner: "pz-5339")])).isEmpty)
    }

    /// After a failover, an edge node may report its views before the origin has registered:
    /// it says which cameras it pulls, so it stays their edge and the origin stays at the owner's site.
    @Test func anEdgeAdoptsAViewAsAnEdgeAfterAFailoverNotAsTheOrigin() throws {
        var state = try coordinator(cameras: ["stib-7"])
        state.adoptable["v1"] = .init(identity: viewer, camera: "stib-7", allowed: AllowedView(view: "v1", grant: "g-1", incident: 7))
        var body = report(views: ["v1"])
        body.pulled = ["stib-7"]
        _ = try state.reportNode(body, identity: identity("south-1"), now: t0 + .seconds(1), ticketsExpire: ticketsExpire)
        #expect(state.view("v1")?.delivery == .node("south-1"))
        #expect(state.feeds["stib-7"]?.edges["south"]?.node == "south-1")
        _ = state.place(now: t0 + .seconds(1), open: openStub)
        #expect([State.Server.node("origin-a"), .node("origin-b")].contains(state.feeds["stib-7"]!.server), "the origin stays at STIB's site")
    }

    /// An owner decides where its cameras are pulled: a node claiming to pull them must be one of
    /// its own relay users, and must say its site.
    @Test func onlyAnOwnersOwnNodeAtAGivenSitePullsItsCameras() throws {
        var state = State(sources: [:], coordinatorCapacity: capacity, simulate: false)
        let claimed = RelayRegisterBody(media: "tcp://10.0.0.1:7723", serverKey: key("a"), maximumStreams: 1, maximumMbps: 1, site: "stib-dc", origins: ["stib"])
        do {
            _ = try state.registerNode(claimed, identity: identity("north-1"), publicKey: nil, secret: Data(), now: t0, open: openStub)
            Issue.record("the crisis centre's node registered as the origin of STIB's cameras")
        } catch {
            #expect(error.code == "not_owner", "the crisis centre's node cannot pull STIB's cameras")
        }
        #expect(throws: Never.self) { try state.registerNode(claimed, identity: identity("origin-a"), publicKey: nil, secret: Data(), now: t0, open: openStub) }
        // Another agency's relay user of the same name is not taken for that node.
        let namesake = BusIdentity(agency: "crisis-centre", user: "origin-a")
        let plain = RelayRegisterBody(media: "tcp://10.0.0.2:7723", serverKey: key("b"), maximumStreams: 1, maximumMbps: 1)
        #expect(throws: BusProtocol.ErrorBody.self) { try state.registerNode(plain, identity: namesake, publicKey: nil, secret: Data(), now: t0, open: openStub) }
        #expect(throws: BusProtocol.ErrorBody.self) { try state.reportNode(report(), identity: namesake, now: t0, ticketsExpire: ticketsExpire) }
        #expect(state.nodes.node("origin-a")?.agency == "stib")
        let body = RelayRegisterBody(media: "tcp://10.0.0.1:7723", serverKey: key("a"), maximumStreams: 1, maximumMbps: 1, origins: ["stib"])
        #expect(throws: BusProtocol.ErrorBody.self) {
            try state.registerNode(body, identity: identity("origin-a"), publicKey: nil, secret: Data(), now: t0, open: openStub)
        }
        let empty = RelayRegisterBody(media: "tcp://10.0.0.1:7723", serverKey: key("a"), maximumStreams: 1, maximumMbps: 1, site: "")
        #expect(throws: BusProtocol.ErrorBody.self) {
            try state.registerNode(empty, identity: identity("origin-a"), publicKey: nil, secret: Data(), now: t0, open: openStub)
        }
    }
}
