import Testing
@testable import Streams

@Suite("Relay placement")
struct RelayPlacementTests {
    let cameras = Dictionary(uniqueKeysWithValues: (0..<600).map { ("camera-\($0)", 4.0) })
    let relays = ["embedded", "relay-a", "relay-b"].map { RelayPlacement.Relay(name: $0, maximumStreams: 1_000, maximumMbps: 10_000) }

    @Test func camerasSpreadEvenlyAndTheSameWayEveryTime() {
        let placement = RelayPlacement.assign(cameras, to: relays)
        #expect(placement.count == 600)
        let counts = Dictionary(grouping: placement.values, by: { $0 }).mapValues(\.count)
        for relay in relays {
            #expect((150...250).contains(counts[relay.name] ?? 0), "about a third each: \(counts)")
        }
        #expect(RelayPlacement.assign(cameras, to: relays.reversed()) == placement, "the order of the relays does not matter")
    }

    @Test func aRelayJoiningOrLeavingMovesOnlyTheCamerasItWinsOrHeld() {
        let before = RelayPlacement.assign(cameras, to: relays)
        let joined = RelayPlacement.assign(cameras, to: relays + [RelayPlacement.Relay(name: "relay-c", maximumStreams: 1_000, maximumMbps: 10_000)])
        let moved = cameras.keys.filter { before[$0] != joined[$0] }
        #expect(moved.allSatisfy { joined[$0] == "relay-c" }, "a camera moves only to the new relay")
        #expect((100...200).contains(moved.count), "about a quarter moves: \(moved.count)")
        let left = RelayPlacement.assign(cameras, to: relays.filter { $0.name != "relay-b" })
        #expect(cameras.keys.filter { before[$0] != "relay-b" }.allSatisfy { left[$0] == before[$0] }, "only relay-b's cameras move")
    }

    @Test func capsInStreamsAndMbpsAreNeverExceeded() {
        let small = [
            RelayPlacement.Relay(name: "embedded", maximumStreams: 0, maximumMbps: 0),
            RelayPlacement.Relay(name: "relay-a", maximumStreams: 100, maximumMbps: 10_000),
            RelayPlacement.Relay(name: "relay-b", maximumStreams: 1_000, maximumMbps: 200),
        ]
        let placement = RelayPlacement.assign(cameras, to: small)
        let counts = Dictionary(grouping: placement.values, by: { $0 }).mapValues(\.count)
        #expect(counts["embedded"] == nil)
        #expect(counts["relay-a"] == 100)
        #expect(counts["relay-b"] == 50, "200 Mbit/s hold 50 cameras at 4 Mbit/s")
        #expect(placement.count == 150, "the rest have no relay with room")
    }

    /// Sticky: at its caps, a relay keeps the cameras it serves; a new camera that its hash
    /// ranks there goes elsewhere instead of pushing one off (which would cut its viewers).
    @Test func aPlacedCameraStaysOnItsRelayWhileItHasRoom() {
        let full = [RelayPlacement.Relay(name: "relay-a", maximumStreams: 1, maximumMbps: 10_000),
                    RelayPlacement.Relay(name: "relay-b", maximumStreams: 10, maximumMbps: 10_000)]
        // A newcomer that sorts first and prefers relay-a: placed greedily, it would take relay-a's one stream.
        let newcomer = (0..<100).map { "a-\($0)" }.first { RelayPlacement.score($0, "relay-a") > RelayPlacement.score($0, "relay-b") }!
        let both = [newcomer: 4.0, "z-camera": 4.0]
        #expect(RelayPlacement.assign(both, to: full)[newcomer] == "relay-a", "without what is placed, the newcomer wins relay-a")
        let kept = RelayPlacement.assign(both, to: full, keeping: ["z-camera": "relay-a"])
        #expect(kept == ["z-camera": "relay-a", newcomer: "relay-b"])
        // Its relay gone, or over its caps: then it moves.
        #expect(RelayPlacement.assign(both, to: [full[1]], keeping: ["z-camera": "relay-a"]) == ["z-camera": "relay-b", newcomer: "relay-b"])
        let shrunk = [RelayPlacement.Relay(name: "relay-a", maximumStreams: 0, maximumMbps: 10_000), full[1]]
        #expect(RelayPlacement.assign(["z-camera": 4.0], to: shrunk, keeping: ["z-camera": "relay-a"]) == ["z-camera": "relay-b"])
    }

    /// A camera limited to its owner's site goes only to that site's relays, even kept
    /// elsewhere before, and stays unplaced when they are full; the others are unaffected.
    @Test func aCameraLimitedToSomeRelaysGoesToNoOther() {
        let allowed = Dictionary(uniqueKeysWithValues: cameras.keys.filter { $0.hasSuffix("7") }.map { ($0, Set(["relay-b"])) })
        let placement = RelayPlacement.assign(cameras, to: relays, keeping: ["camera-7": "relay-a"], allowed: allowed)
        #expect(placement.count == 600)
        #expect(allowed.keys.allSatisfy { placement[$0] == "relay-b" })
        #expect(Set(placement.values) == Set(relays.map(\.name)), "the others spread over every relay")
        let full = [RelayPlacement.Relay(name: "relay-a", maximumStreams: 100, maximumMbps: 10_000),
                    RelayPlacement.Relay(name: "relay-b", maximumStreams: 0, maximumMbps: 10_000)]
        #expect(RelayPlacement.assign(["camera-7": 4.0], to: full, allowed: ["camera-7": ["relay-b"]]).isEmpty)
    }
}
