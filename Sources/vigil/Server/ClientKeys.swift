import Bus
import Incidents
import Synchronization

/// The keys the bus lets in: each agency's own certificate (for its systems) and each named
/// user's key. Users added while the server runs are let in from then on.
final class ClientKeys: Sendable {
    private let identities: Mutex<[String: BusIdentity]>

    /// - Parameter agencies: agency ids by public key.
    init(agencies: [String: String], users: [User]) {
        var identities = agencies.mapValues { BusIdentity(agency: $0) }
        for user in users {
            if let key = user.publicKey { identities[key] = BusIdentity(agency: user.agency, user: user.id) }
        }
        self.identities = Mutex(identities)
    }

    func identity(forKey key: String) -> BusIdentity? {
        identities.withLock { $0[key] }
    }

    func admit(_ user: User) {
        guard let key = user.publicKey else { return }
        identities.withLock { $0[key] = BusIdentity(agency: user.agency, user: user.id) }
    }
}
