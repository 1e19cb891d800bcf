import Bus
import Foundation

/// A client of a replicated cluster's coordinators (`vigil serve --cluster`) that finds its
/// leader and follows it: a standby's `not_leader` names where the leader is (or says none is
/// known yet), and a coordinator that does not answer may be dead. With one coordinator it is a
/// plain client of that one.
///
/// - A request answered `not_leader` was not done: it is sent again, to the leader named, or to
///   the next coordinator, a few times.
/// - A request that got no answer may have been done: it is not sent again. The error goes to
///   the caller, and the next request goes to the next coordinator.
///
/// - Important: Not thread-safe, as ``BusClient`` is not: one thread uses it.
public final class LeaderFollowingClient {
    public typealias Connect = (BusProtocol.CoordinatorEndpoints) throws(BusClientError) -> BusClient

    public let coordinators: [BusProtocol.CoordinatorEndpoints]
    private let connect: Connect
    private var client: BusClient?
    /// The coordinator asked now (or next).
    public private(set) var current: BusProtocol.CoordinatorEndpoints

    public init(coordinators: [BusProtocol.CoordinatorEndpoints], connect: @escaping Connect) {
        precondition(!coordinators.isEmpty, "a client needs at least one coordinator")
        self.coordinators = coordinators
        self.connect = connect
        current = coordinators[0]
    }

    deinit {
        client?.close()
    }

    /// Sends one request to the leader, following `not_leader` answers (at most twice around the list).
    public func request<Body: Encodable, Result: Decodable>(
        _ operation: ProtocolOperation, body: Body, as type: Result.Type, timeout: Duration = .seconds(5)
    ) throws(BusClientError) -> Result {
        var redirects = 0
        while true {
            let client = try connected()
            do {
                return try client.request(operation, body: body, as: type, timeout: timeout)
            } catch .remote(let error) where error.code == ReplyCode.notLeader.rawValue && redirects < 2 * coordinators.count {
                redirects += 1
                move(to: error.leader)
                // Nobody knows a leader yet: an election runs; a moment before asking the next.
                if error.leader == nil { Thread.sleep(forTimeInterval: 0.1) }
            } catch .serverUnreachable(let endpoint, let seconds) {
                move(to: nil)
                throw .serverUnreachable(endpoint: endpoint, seconds: seconds)
            }
        }
    }

    /// The connection to the coordinator that answered last, handed to the caller (who closes
    /// it); this client opens another for its next request.
    public func detach() -> BusClient? {
        defer { client = nil }
        return client
    }

    /// Closes the connection; the next request opens one again.
    public func close() {
        client?.close()
        client = nil
    }

    private func connected() throws(BusClientError) -> BusClient {
        if let client { return client }
        let opened = try connect(current)
        client = opened
        return opened
    }

    /// The leader named, else the coordinator after the current one.
    private func move(to leader: BusProtocol.CoordinatorEndpoints?) {
        close()
        if let leader {
            current = leader
        } else {
            let index = coordinators.firstIndex(of: current) ?? -1
            current = coordinators[(index + 1) % coordinators.count]
        }
    }
}
