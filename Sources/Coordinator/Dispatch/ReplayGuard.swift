import Foundation
import Synchronization

/// Refuses a request whose correlation id was already used on the same connection: a client
/// that sends a request twice (a retry loop gone wrong, a replayed capture) gets an error
/// instead of doing the change twice. CURVE already stops replays by a third party on the
/// network; this guards the application level.
///
/// Memory is bounded: the last `idsPerConnection` ids of at most `connections` connections.
public final class ReplayGuard: Sendable {
    private struct Seen {
        var ids: Set<String> = []
        var order: [String] = []
    }

    private let seen = Mutex<(connections: [Data: Seen], order: [Data])>(([:], []))
    private let idsPerConnection: Int
    private let connections: Int

    public init(idsPerConnection: Int = 1024, connections: Int = 10_000) {
        self.idsPerConnection = idsPerConnection
        self.connections = connections
    }

    /// Records `id` for `connection`; false when it was seen there already.
    func firstUse(of id: String, on connection: Data) -> Bool {
        seen.withLock { state in
            if state.connections[connection] == nil {
                if state.order.count >= connections {
                    state.connections[state.order.removeFirst()] = nil
                }
                state.order.append(connection)
                state.connections[connection] = Seen()
            }
            guard state.connections[connection]!.ids.insert(id).inserted else { return false }
            state.connections[connection]!.order.append(id)
            if state.connections[connection]!.order.count > idsPerConnection {
                let oldest = state.connections[connection]!.order.removeFirst()
                state.connections[connection]!.ids.remove(oldest)
            }
            return true
        }
    }
}
