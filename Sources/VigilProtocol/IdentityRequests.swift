import Foundation
import Incidents

/// The body of `user.suspend`, `user.reinstate` and `user.remove`: the user, of the agency that
/// asks, and why (audited).
public struct UserStatusBody: Sendable, Codable {
    public var user: String
    public var reason: String

    public init(user: String, reason: String) {
        self.user = user
        self.reason = reason
    }

    /// - Throws: ``IncidentError`` `reason_required` (empty or over 500 characters).
    public func validated() throws -> UserStatusBody {
        try Self.validate(reason: reason)
        return self
    }

    static func validate(reason: String) throws {
        let length = reason.trimmingCharacters(in: .whitespacesAndNewlines).count
        guard (1...500).contains(length) else {
            throw IncidentError(.reasonRequired, message: "say why, in 1 to 500 characters", field: "body.reason")
        }
    }
}

/// The body of `agency.rotate-key`: the agency's new CURVE public key (Z85, 40 characters), and why.
public struct AgencyKeyBody: Sendable, Codable {
    public var publicKey: String
    public var reason: String

    public init(publicKey: String, reason: String) {
        self.publicKey = publicKey
        self.reason = reason
    }

    /// - Throws: ``IncidentError`` `reason_required`.
    public func validated() throws -> AgencyKeyBody {
        try UserStatusBody.validate(reason: reason)
        return self
    }
}

/// The reply to `console.code`: a one-time code the console exchanges for a session.
public struct ConsoleCodeResult: Sendable, Codable {
    public var code: String
    /// How long the code may be exchanged, once.
    public var expiresInS: Int
    /// When the session it opens ends: the user's clearance or a shift, whichever is first.
    public var sessionEndsAt: Date

    public init(code: String, expiresInS: Int, sessionEndsAt: Date) {
        (self.code, self.expiresInS, self.sessionEndsAt) = (code, expiresInS, sessionEndsAt)
    }
}
