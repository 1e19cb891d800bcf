import Bus
import Crypto
import Foundation
import Streams
import Synchronization
import VigilProtocol

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

