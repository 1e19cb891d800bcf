import Bus
import Crypto
import Foundation
import Synchronization

/// One-time codes that let a named user of the bus log in to the operator console.
///
/// The bus's identities stay the only identities: a user asks for a code over CURVE
/// (`console.code`, `vigil console login`), with their own key, and the browser exchanges it once
/// for a session bound to that user. A code is good for ``lifetime`` and one exchange; codes live
/// in memory (a restart forgets them, as it forgets console sessions).
public final class ConsoleCodes: Sendable {
    /// What a code stands for.
    public struct Login: Sendable, Equatable {
        public let identity: BusIdentity
        /// When the session it opens ends: the user's clearance or the shift, whichever is first.
        public let sessionEnds: Date
    }

    public static let lifetime: Duration = .seconds(120)
    /// How long a console session lasts at most: a crisis-room shift.
    public let shift: Duration
    private let codes = Mutex<[String: (login: Login, expires: ContinuousClock.Instant)]>([:])

    public init(shift: Duration = .seconds(12 * 3600)) {
        self.shift = shift
    }

    /// A new code for `identity` (a named user whose clearance ends at `clearance`, if ever).
    public func issue(for identity: BusIdentity, clearance: Date?, now: Date = Date()) -> (code: String, login: Login) {
        let shiftEnds = now.addingTimeInterval(TimeInterval(shift.components.seconds))
        let login = Login(identity: identity, sessionEnds: min(shiftEnds, clearance ?? shiftEnds))
        // 128 random bits, in groups a person can type from another screen.
        let raw = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        let code = stride(from: 0, to: raw.count, by: 4).map { raw[$0..<$0 + 4].map { String(format: "%02x", $0) }.joined() }.joined(separator: "-")
        codes.withLock { codes in
            let now = ContinuousClock.now
            codes = codes.filter { $0.value.expires > now }
            codes[code] = (login, now + Self.lifetime)
        }
        return (code, login)
    }

    /// What `code` stands for, once: nil when it is unknown, used or expired.
    public func redeem(_ code: String) -> Login? {
        let normalized = code.trimmingCharacters(in: .whitespaces).lowercased()
        return codes.withLock { codes in
            guard let entry = codes.removeValue(forKey: normalized), entry.expires > .now else { return nil }
            return entry.login
        }
    }
}
