import Bus
import Crypto
import Foundation
import Streams
import Synchronization

/// The body of `relay.register`: where the node serves views (its media endpoint, and the
/// `http://HOST:PORT` of its links when it serves them), and how much it may carry.
public struct RelayRegisterBody: Codable, Sendable {
    public var media: String
    public var serverKey: String
    public var maximumStreams: Int
    public var maximumMbps: Double
    public var links: String?

    public init(media: String, serverKey: String, maximumStreams: Int, maximumMbps: Double, links: String? = nil) {
        self.media = media
        self.serverKey = serverKey
        self.maximumStreams = maximumStreams
        self.maximumMbps = maximumMbps
        self.links = links
    }
}

/// The reply to `relay.register`: the node's name (its user id), the secret that signs its view
/// tickets, and how often it must report.
public struct RelayRegisterResult: Codable, Sendable {
    public var relay: String
    public var secret: String
    public var reportIntervalMs: Int
}

/// The body of `relay.report`, once per interval: each open camera's state, the views being
/// served, those that ended since the last report, the load, and the thumbnails made since
/// the last report (the newest `maximumThumbnails`; thumbnails are latest-wins).
public struct RelayReportBody: Codable, Sendable {
    static let maximumThumbnails = 16

    public var cameras: [String: WireFeedState]
    public var views: [String]
    public var ended: [String]
    public var streams: Int
    public var mbps: Double
    public var thumbnails: [ThumbnailEvent]?
}

/// A feed state on the wire (`camera.state` bodies and reports): `connecting`, `live`,
/// `stalled`, `down` or `stopped`, with the reason when there is one.
public struct WireFeedState: Codable, Equatable, Sendable {
    public var state: String
    public var reason: String?

    public init(_ state: FeedState) {
        switch state {
        case .connecting: self.state = "connecting"
        case .live: self.state = "live"
        case .stalled(let reason): (self.state, self.reason) = ("stalled", reason)
        case .down(let reason): (self.state, self.reason) = ("down", reason)
        case .stopped: self.state = "stopped"
        }
    }

    public var feedState: FeedState {
        switch state {
        case "connecting": .connecting(attempt: 0)
        case "live": .live
        case "stalled": .stalled(reason: reason ?? "")
        case "stopped": .stopped
        default: .down(reason: reason ?? state)
        }
    }
}

/// The reply to `relay.report`: the cameras the node must keep open, and the views it must end.
public struct RelayReportResult: Codable, Sendable {
    public var assignments: [RelayAssignment]
    public var end: [String: String]
}

public struct RelayAssignment: Codable, Sendable {
    public var camera: String
    public var url: String
    public var masks: [[[Double]]]
}

/// Where `feed.open` sends a viewer whose camera another relay serves.
public struct FeedRedirect: Codable, Sendable {
    public var relay: String
    public var media: String
    public var serverKey: String
    public var ticket: String
}

/// A view the coordinator allowed, for a relay node to serve: signed with the node's secret
/// (HMAC-SHA256), usable for 30 seconds. A ticket for `feed.open` is bound to the viewer's
/// public key; a link's ticket (`link`) is the link's token itself, and whoever plays the link
/// holds it, as with the links the server serves.
public struct RelayTicket: Codable, Equatable, Sendable {
    static let lifetime: TimeInterval = 30

    public var view: String
    public var grant: String
    public var incident: Int64
    public var camera: String
    public var viewerKey: String
    public var agency: String
    public var user: String?
    public var expires: Date
    /// A link's ticket: it goes in the link's address, and no viewer key is checked.
    public var link: Bool?

    /// `payload.signature`, both in base64url without padding (RFC 4648 §5), so that a link's
    /// address can carry the ticket as it is.
    func signed(with secret: Data) throws -> String {
        let payload = try BusProtocol.encoder.encode(self)
        let signature = HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: secret))
        return Self.base64URL(payload) + "." + Self.base64URL(Data(signature))
    }

    /// The ticket a token carries, if its signature is the secret's and it has not expired.
    static func verified(_ token: String, with secret: Data, now: Date = Date()) -> RelayTicket? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = data(base64URL: parts[0]), let signature = data(base64URL: parts[1]),
              HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: SymmetricKey(data: secret)),
              let ticket = try? BusProtocol.decoder.decode(RelayTicket.self, from: payload), ticket.expires > now
        else { return nil }
        return ticket
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// The relay nodes registered with this server, the coordinator: their endpoints, caps, secret
/// and last report. A node that has not reported for `silenceLimit` is dropped.
public final class RelayNodes: Sendable {
    public init() {}

    static let reportInterval = Duration.seconds(1)
    static let silenceLimit = Duration.seconds(5)

    struct Node: Sendable {
        let name: String
        let media: String
        let serverKey: String
        /// `http://HOST:PORT` of the node's links, or nil when it serves none.
        let links: String?
        /// Signs the node's view tickets (32 random bytes).
        let secret: Data
        let maximumStreams: Int
        let maximumMbps: Double
        var lastReport: ContinuousClock.Instant
        var streams = 0
        var mbps = 0.0
    }

    private let nodes = Mutex<[String: Node]>([:])

    /// Registers (or registers again, after a restart of either side) the node of `identity`.
    func register(_ body: RelayRegisterBody, identity: BusIdentity) throws -> RelayRegisterResult {
        guard let name = identity.user else {
            throw BusProtocol.ErrorBody(code: "named_user_required", message: "a relay node registers with its own user key", field: nil)
        }
        guard body.maximumStreams >= 0, body.maximumMbps >= 0, body.media.hasPrefix("tcp://"), body.serverKey.count == 40 else {
            throw BusProtocol.ErrorBody(code: "relay_invalid", message: "a tcp:// media endpoint, a 40-character server key and caps ≥ 0", field: "body")
        }
        if let links = body.links, !links.hasPrefix("http://") || links.count > 200 {
            throw BusProtocol.ErrorBody(code: "relay_invalid", message: "links are served at an http://HOST:PORT address", field: "body.links")
        }
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        nodes.withLock {
            $0[name] = Node(
                name: name, media: body.media, serverKey: body.serverKey, links: body.links, secret: secret,
                maximumStreams: body.maximumStreams, maximumMbps: body.maximumMbps, lastReport: .now)
        }
        return RelayRegisterResult(
            relay: name, secret: secret.base64EncodedString(),
            reportIntervalMs: Int(Self.reportInterval / .milliseconds(1)))
    }

    /// Records a node's report; `relay_unknown` tells a node the server no longer knows (it restarted) to register again.
    func report(_ body: RelayReportBody, identity: BusIdentity) throws -> Node {
        try nodes.withLock { nodes in
            guard let name = identity.user, nodes[name] != nil else {
                throw BusProtocol.ErrorBody(code: "relay_unknown", message: "register first (relay.register)", field: nil)
            }
            nodes[name]!.lastReport = .now
            nodes[name]!.streams = body.streams
            nodes[name]!.mbps = body.mbps
            return nodes[name]!
        }
    }

    /// The nodes that reported lately; the silent ones are dropped.
    func alive() -> [Node] {
        let now = ContinuousClock.now
        return nodes.withLock { nodes in
            nodes = nodes.filter { now - $0.value.lastReport < Self.silenceLimit }
            return nodes.values.sorted { $0.name < $1.name }
        }
    }

    func node(_ name: String) -> Node? {
        nodes.withLock { $0[name] }
    }
}

/// The body of a `camera.thumbnail` event: the JPEG, base64 in the JSON like every body (also
/// how a relay node hands its thumbnails to the server).
public struct ThumbnailEvent: Codable, Sendable {
    public var camera: String
    public var width: Int
    public var height: Int
    public var takenAt: Date
    public var jpeg: Data

    public init(_ thumbnail: Thumbnail) {
        (camera, width, height, takenAt, jpeg) = (thumbnail.camera, thumbnail.width, thumbnail.height, thumbnail.takenAt, thumbnail.jpeg)
    }

    public var thumbnail: Thumbnail {
        Thumbnail(camera: camera, jpeg: jpeg, width: width, height: height, takenAt: takenAt)
    }
}
