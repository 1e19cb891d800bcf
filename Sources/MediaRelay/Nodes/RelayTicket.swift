import Bus
import Crypto
import Foundation
import Geo
import Streams
import Synchronization
import VigilProtocol

/// A view the coordinator allowed, for a relay node to serve: signed with the node's secret
/// (HMAC-SHA256), usable for 30 seconds. A ticket for `feed.open` is bound to the viewer's
/// public key; a link's ticket (`link`) is the link's token itself, and whoever plays the link
/// holds it, as with the links the server serves. An upstream ticket (`edge`) lets the edge
/// relay node of that name pull the camera for the viewers of its site (`feed.upstream`).
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
    /// A playback's ticket: the camera's privacy masks now, which the node paints on its footage
    /// (a mask registered after the recording hides that footage too, and the node may no longer
    /// carry the camera, so the masks of its assignments may be out of date or missing).
    public var masks: TicketMasks?
    /// An upstream ticket: the edge relay node that pulls the camera (bound to its key, `viewerKey`).
    public var edge: String?

    func signed(with secret: Data) throws -> String {
        try SignedToken.sign(self, with: secret)
    }

    /// The ticket a token carries, if its signature is the secret's and it has not expired.
    static func verified(_ token: String, with secret: Data, now: Date = Date()) -> RelayTicket? {
        SignedToken.verified(token, as: RelayTicket.self, with: secret).flatMap { $0.expires > now ? $0 : nil }
    }
}

/// Privacy masks as a ticket carries them: packed, because a link's address carries the ticket
/// and FFmpeg's players open addresses of at most 4,096 characters, which the registry's largest
/// masks (``PrivacyMaskLimits``) written as JSON numbers would overrun. Each mask is its point
/// count, then each point's x and y on the registry's grid (``PrivacyMaskLimits/resolution``,
/// so admitted masks pack losslessly), all as big-endian UInt16, in base64url.
public struct TicketMasks: Codable, Equatable, Sendable {
    public let polygons: [Thumbnailer.Mask]

    public init(_ polygons: [Thumbnailer.Mask]) {
        self.polygons = polygons
    }

    public func encode(to encoder: any Encoder) throws {
        // A fraction on the grid; the registry admits only finite ones in 0...1, but a bad one
        // must not trap the coordinator (Int(.nan) would): it packs as 0.
        func word(_ fraction: Double) -> UInt16 {
            fraction.isFinite ? UInt16((min(max(fraction, 0), 1) * PrivacyMaskLimits.resolution).rounded()) : 0
        }
        var words: [UInt16] = []
        for polygon in polygons {
            let points = polygon.prefix(Int(UInt16.max))
            words.append(UInt16(points.count))
            for point in points {
                words += [word(point.first ?? 0), word(point.dropFirst().first ?? 0)]
            }
        }
        var container = encoder.singleValueContainer()
        try container.encode(SignedToken.base64URL(Data(words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] })))
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let bytes = SignedToken.data(base64URL: Substring(text)).map([UInt8].init), bytes.count % 2 == 0 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "masks are not packed UInt16s in base64url"))
        }
        var words = stride(from: 0, to: bytes.count, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }[...]
        var polygons: [Thumbnailer.Mask] = []
        while let count = words.popFirst() {
            guard words.count >= 2 * Int(count) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a mask has fewer points than its count"))
            }
            polygons.append((0..<Int(count)).map { _ in
                [Double(words.removeFirst()) / PrivacyMaskLimits.resolution, Double(words.removeFirst()) / PrivacyMaskLimits.resolution]
            })
        }
        self.polygons = polygons
    }
}

/// The coordinator's leave for itself to fetch one segment file from the relay node that holds
/// it (for an evidence export), signed with the node's secret, usable for 30 seconds.
public struct FootageFetchTicket: Codable, Equatable, Sendable {
    public var file: String
    public var expires: Date

    func signed(with secret: Data) throws -> String {
        try SignedToken.sign(self, with: secret)
    }

    static func verified(_ token: String, with secret: Data, now: Date = Date()) -> FootageFetchTicket? {
        SignedToken.verified(token, as: FootageFetchTicket.self, with: secret).flatMap { $0.expires > now ? $0 : nil }
    }
}

/// A value and its HMAC-SHA256 under a relay node's secret: `payload.signature`, both in
/// base64url without padding (RFC 4648 §5), so that a link's address can carry it as it is.
enum SignedToken {
    static func sign(_ value: some Encodable, with secret: Data) throws -> String {
        let payload = try BusProtocol.encoder.encode(value)
        let signature = HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: secret))
        return base64URL(payload) + "." + base64URL(Data(signature))
    }

    /// The value a token carries, if its signature is the secret's.
    static func verified<T: Decodable>(_ token: String, as type: T.Type, with secret: Data) -> T? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = data(base64URL: parts[0]), let signature = data(base64URL: parts[1]),
              HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: SymmetricKey(data: secret))
        else { return nil }
        return try? BusProtocol.decoder.decode(T.self, from: payload)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

