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
    /// A playback's ticket: the moment the recorded footage is played from (the node's own footage).
    public var at: Date?

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

