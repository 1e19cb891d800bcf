import Foundation

/// Spreads cameras over relays by rendezvous (highest random weight) hashing, within each
/// relay's caps in streams and Mbit/s.
///
/// Placement is sticky: a camera already placed stays on its relay while that relay is there
/// and has room for it (its feed is warm there, its viewers connected). Each other camera ranks
/// the relays by a hash of (camera, relay) and goes to the first that has room, so that a
/// relay joining takes only new cameras and those of a relay that left or is over its caps.
/// A camera no relay has room for is unplaced. A camera may be limited to some relays (those
/// at its owner's site): it goes to none of the others.
public enum RelayPlacement {
    public struct Relay: Sendable, Equatable {
        public let name: String
        public let maximumStreams: Int
        public let maximumMbps: Double

        public init(name: String, maximumStreams: Int, maximumMbps: Double) {
            self.name = name
            self.maximumStreams = maximumStreams
            self.maximumMbps = maximumMbps
        }
    }

    /// - Parameters:
    ///   - cameras: each camera to place with its expected bit rate in Mbit/s.
    ///   - current: where cameras are placed now (relay names); they stay there if they can.
    ///   - allowed: the only relays a camera may go to (by name); a camera absent goes to any.
    /// - Returns: the relay of each placed camera.
    public static func assign(
        _ cameras: [String: Double], to relays: [Relay], keeping current: [String: String] = [:], allowed: [String: Set<String>] = [:]
    ) -> [String: String] {
        var streams: [String: Int] = [:]
        var mbps: [String: Double] = [:]
        var placement: [String: String] = [:]
        func take(_ camera: String, _ relay: Relay) -> Bool {
            if let only = allowed[camera], !only.contains(relay.name) { return false }
            let rate = cameras[camera] ?? 0
            guard streams[relay.name, default: 0] < relay.maximumStreams, mbps[relay.name, default: 0] + rate <= relay.maximumMbps else { return false }
            placement[camera] = relay.name
            streams[relay.name, default: 0] += 1
            mbps[relay.name, default: 0] += rate
            return true
        }
        // A fixed order, so that the same inputs always give the same placement.
        let ordered = cameras.keys.sorted()
        let byName = Dictionary(relays.map { ($0.name, $0) }) { first, _ in first }
        for camera in ordered {
            if let name = current[camera], let relay = byName[name] { _ = take(camera, relay) }
        }
        for camera in ordered where placement[camera] == nil {
            for relay in relays.sorted(by: { score(camera, $0.name) > score(camera, $1.name) }) where take(camera, relay) { break }
        }
        return placement
    }

    /// The weight of a (camera, relay) pair: FNV-1a over both names, then the splitmix64
    /// finaliser so that names differing by one character score far apart. The same on every
    /// host and in every run (Swift's own hashing is seeded per process).
    public static func score(_ camera: String, _ relay: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in camera.utf8 + [0] + relay.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }
}
