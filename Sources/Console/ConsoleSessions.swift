import Bus
import Coordinator
import Crypto
import Foundation
import Synchronization

/// The console's logged-in browsers: a random token (the cookie) for each, bound to one named
/// user of the bus, with its own anti-forgery token, until the earlier of the user's clearance
/// and a shift. Held in memory: a restart logs everyone out.
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        let identity: BusIdentity
        let ends: Date
        /// Sent back by the page in `X-Vigil-CSRF` with every change (the cookie alone is not enough).
        let csrf: String
    }

    private let sessions = Mutex<[String: Session]>([:])

    /// Opens a session for what a login code stood for; its cookie token.
    func open(_ login: ConsoleCodes.Login) -> (token: String, session: Session) {
        let token = Self.randomToken(), session = Session(identity: login.identity, ends: login.sessionEnds, csrf: Self.randomToken())
        sessions.withLock { sessions in
            let now = Date()
            sessions = sessions.filter { $0.value.ends > now }
            sessions[token] = session
        }
        return (token, session)
    }

    /// The session of `token`, while it lasts.
    func session(_ token: String, now: Date = Date()) -> Session? {
        sessions.withLock { sessions in
            guard let session = sessions[token] else { return nil }
            guard session.ends > now else {
                sessions[token] = nil
                return nil
            }
            return session
        }
    }

    func end(_ token: String) {
        _ = sessions.withLock { $0.removeValue(forKey: token) }
    }

    /// 256 random bits, URL- and cookie-safe.
    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
