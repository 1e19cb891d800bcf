import Bus
import Incidents
import Synchronization

/// The keys the bus lets in: each agency's own certificate (for its systems) and each named
/// user's key. Users added while the server runs are let in from then on.
final class ClientKeys: Sendable {
    private let identities: Mutex<[String: BusIdentity]>
    /// Named users by id, for role checks the bus thread makes (the audit channel).
    private let users: Mutex<[String: User]>

    /// - Parameter agencies: agency ids by public key.
    init(agencies: [String: String], users: [User]) {
        var identities = agencies.mapValues { BusIdentity(agency: $0) }
        for user in users {
            if let key = user.publicKey { identities[key] = BusIdentity(agency: user.agency, user: user.id) }
        }
        self.identities = Mutex(identities)
        self.users = Mutex(Dictionary(uniqueKeysWithValues: users.map { ($0.id, $0) }))
    }

    /// Whether `identity` is a named user holding `role` with a valid clearance.
    func holds(_ role: UserRole, _ identity: BusIdentity) -> Bool {
        guard let id = identity.user else { return false }
        return users.withLock { $0[id] }.map { $0.agency == identity.agency && $0.may(role) } ?? false
    }

    func identity(forKey key: String) -> BusIdentity? {
        identities.withLock { $0[key] }
    }

    /// The public key `identity` connects with (a ticket for a relay node binds to it).
    func publicKey(of identity: BusIdentity) -> String? {
        identities.withLock { $0.first { $0.value == identity }?.key }
    }

    func admit(_ user: User) {
        users.withLock { $0[user.id] = user }
        guard let key = user.publicKey else { return }
        identities.withLock { $0[key] = BusIdentity(agency: user.agency, user: user.id) }
    }
}
