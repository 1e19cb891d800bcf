import Bus
import Incidents
import Synchronization

/// The keys the bus lets in: each agency's own certificate (for its systems) and each active
/// named user's key. Changes made while the server runs (a user added, suspended or removed, an
/// agency's key rotated) apply to the next message: the bus asks for every request.
public final class ClientKeys: Sendable {
    private let identities: Mutex<[String: BusIdentity]>
    /// Named users by id, for role checks the bus thread makes (the audit channel).
    private let users: Mutex<[String: User]>

    /// - Parameter agencies: agency ids by public key.
    public init(agencies: [String: String], users: [User]) {
        var identities = agencies.mapValues { BusIdentity(agency: $0) }
        for user in users where user.status == .active {
            if let key = user.publicKey { identities[key] = BusIdentity(agency: user.agency, user: user.id) }
        }
        self.identities = Mutex(identities)
        self.users = Mutex(Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0) }))
    }

    /// Whether `identity` is a named user holding `role` with a valid clearance.
    public func holds(_ role: UserRole, _ identity: BusIdentity) -> Bool {
        guard let id = identity.user else { return false }
        return users.withLock { $0[id] }.map { $0.agency == identity.agency && $0.may(role) } ?? false
    }

    public func identity(forKey key: String) -> BusIdentity? {
        identities.withLock { $0[key] }
    }

    /// The public key `identity` connects with (a ticket for a relay node binds to it).
    public func publicKey(of identity: BusIdentity) -> String? {
        identities.withLock { $0.first { $0.value == identity }?.key }
    }

    /// Records a user as added or changed: an active user's key is let in, any other's is not.
    func admit(_ user: User) {
        users.withLock { $0[user.id] = user }
        let identity = BusIdentity(agency: user.agency, user: user.id)
        identities.withLock { identities in
            for (key, holder) in identities where holder == identity { identities[key] = nil }
            if user.status == .active, let key = user.publicKey { identities[key] = identity }
        }
    }

    /// Lets `agency`'s systems in with `key` only (the previous key is refused from now on).
    func rotate(agency: String, to key: String) {
        let identity = BusIdentity(agency: agency)
        identities.withLock { identities in
            for (old, holder) in identities where holder == identity { identities[old] = nil }
            identities[key] = identity
        }
    }
}
